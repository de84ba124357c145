# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import warm_pool as wp

ON_DEMAND_GROUP = {
    "AutoScalingGroupName": "web-standby",
    "LaunchTemplate": {"LaunchTemplateName": "web", "Version": "$Default"},
}
HIBERNATING = {"HibernationOptions": {"Configured": True}}


def test_wanted_config_maps_options_to_api_shape():
    assert wp.wanted_config("hibernated", 2, 10, True) == {
        "PoolState": "Hibernated",
        "MinSize": 2,
        "MaxGroupPreparedCapacity": 10,
        "InstanceReusePolicy": {"ReuseOnScaleIn": True},
    }


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("stopped", -1, None, False), "min_size: -1"),
        (("stopped", 0, -2, False), "max_group_prepared_capacity: -2"),
        (("stopped", 5, 3, False), "min_size: 5 exceeds max_group_prepared_capacity (3)"),
        (("frozen", 0, None, False), "pool_state: 'frozen'"),
    ],
)
def test_wanted_config_names_the_bad_field(args, field):
    with pytest.raises(wp.WarmPoolError, match=field.replace("(", r"\(").replace(")", r"\)")):
        wp.wanted_config(*args)


def test_current_config_reads_minus_one_as_default_capacity():
    current = wp.current_config({"PoolState": "Stopped", "MinSize": 1, "MaxGroupPreparedCapacity": -1})
    assert current == wp.wanted_config("stopped", 1, None, False)


def test_no_pool_reads_as_none():
    assert wp.current_config(None) is None
    assert wp.current_config({}) is None


def test_put_request_resets_capacity_with_minus_one_only_when_it_was_set():
    wanted = wp.wanted_config("stopped", 0, None, False)
    was_set = wp.current_config({"PoolState": "Stopped", "MinSize": 0, "MaxGroupPreparedCapacity": 4})
    assert wp.put_request("g", was_set, wanted)["MaxGroupPreparedCapacity"] == -1
    assert "MaxGroupPreparedCapacity" not in wp.put_request("g", None, wanted)


def test_launch_template_found_through_mixed_instances_policy():
    group = {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "Version": "3"}}
        }
    }
    assert wp.launch_template_spec(group) == {"LaunchTemplateId": "lt-1", "Version": "3"}
    assert wp.launch_template_spec({"LaunchConfigurationName": "lc"}) is None


@pytest.mark.parametrize(
    ("group", "template", "launch_configuration", "reason"),
    [
        (ON_DEMAND_GROUP, {"InstanceMarketOptions": {"MarketType": "spot"}}, None, "launch template requests Spot"),
        (
            {
                **ON_DEMAND_GROUP,
                "MixedInstancesPolicy": {"InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 20}},
            },
            {},
            None,
            "80%",
        ),
        (ON_DEMAND_GROUP, None, {"SpotPrice": "0.05"}, "SpotPrice"),
    ],
)
def test_spot_groups_are_refused_with_the_standby_hint(group, template, launch_configuration, reason):
    with pytest.raises(wp.WarmPoolError) as caught:
        wp.check_group(group, template, "stopped", launch_configuration)
    assert reason in str(caught.value)
    assert str(caught.value).startswith("name: group 'web-standby' launches Spot")
    assert "companion On-Demand group" in str(caught.value)


def test_on_demand_only_mixed_policy_is_allowed():
    group = {
        **ON_DEMAND_GROUP,
        "MixedInstancesPolicy": {"InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 100}},
    }
    wp.check_group(group, {}, "stopped")


def test_hibernated_pool_needs_a_hibernating_template():
    with pytest.raises(wp.WarmPoolError, match="pool_state: 'hibernated' needs instances that can hibernate"):
        wp.check_group(ON_DEMAND_GROUP, {}, "hibernated")
    wp.check_group(ON_DEMAND_GROUP, HIBERNATING, "hibernated")


def test_warmed_count_counts_only_the_final_state():
    instances = [
        {"LifecycleState": "Warmed:Stopped"},
        {"LifecycleState": "Warmed:Pending"},
        {"LifecycleState": "Warmed:Stopped"},
    ]
    assert wp.warmed_count(instances, "Stopped") == 2
    assert wp.warmed_count(instances, "Running") == 0


def test_describe_returns_snake_case():
    config = wp.wanted_config("running", 1, None, True)
    result = wp.describe(
        config,
        [
            {
                "InstanceId": "i-1",
                "LifecycleState": "Warmed:Running",
                "InstanceType": "m5.large",
                "AvailabilityZone": "us-east-1a",
            }
        ],
    )
    assert result == {
        "pool_state": "running",
        "min_size": 1,
        "max_group_prepared_capacity": None,
        "instance_reuse_policy": {"reuse_on_scale_in": True},
        "status": None,
        "instances": [
            {
                "instance_id": "i-1",
                "lifecycle_state": "Warmed:Running",
                "instance_type": "m5.large",
                "availability_zone": "us-east-1a",
            }
        ],
    }
    assert wp.describe(None, []) == {}


def test_groups_with_pool_keeps_pool_holders_sorted():
    groups = [
        {"AutoScalingGroupName": "b", "WarmPoolConfiguration": {"MinSize": 0}},
        {"AutoScalingGroupName": "c"},
        {"AutoScalingGroupName": "a", "WarmPoolConfiguration": {"MinSize": 1}},
    ]
    assert [group["AutoScalingGroupName"] for group in wp.groups_with_pool(groups)] == ["a", "b"]


def test_describe_group_pool_names_the_group_and_keeps_status():
    group = {
        "AutoScalingGroupName": "web",
        "WarmPoolConfiguration": {
            "MinSize": 1,
            "PoolState": "Stopped",
            "MaxGroupPreparedCapacity": -1,
            "Status": "PendingDelete",
        },
    }
    instances = [
        {
            "InstanceId": "i-1",
            "LifecycleState": "Warmed:Stopped",
            "InstanceType": "m5.large",
            "AvailabilityZone": "us-east-1a",
        }
    ]
    described = wp.describe_group_pool(group, instances)
    assert described["auto_scaling_group_name"] == "web"
    assert described["status"] == "PendingDelete"
    assert described["max_group_prepared_capacity"] is None
    assert described["instances"][0]["lifecycle_state"] == "Warmed:Stopped"
