# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_warm_pool against moto's in-process AWS: outcomes in the (mocked) account, not calls."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_warm_pool


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(asg_warm_pool, args, **kwargs)


def pool_of(aws, name="web-standby"):
    return aws["autoscaling"].describe_warm_pool(AutoScalingGroupName=name).get("WarmPoolConfiguration")


def test_creates_pool_then_is_idempotent(aws, run, make_group):
    make_group()
    args = {"name": "web-standby", "min_size": 1, "max_group_prepared_capacity": 3, "reuse_on_scale_in": True}
    first = run(args)
    assert first["changed"] is True
    assert first["warm_pool"]["min_size"] == 1
    assert first["warm_pool"]["instance_reuse_policy"] == {"reuse_on_scale_in": True}
    pool = pool_of(aws)
    assert (pool["PoolState"], pool["MinSize"], pool["MaxGroupPreparedCapacity"]) == ("Stopped", 1, 3)
    assert pool["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    assert run(args)["changed"] is False


def test_check_mode_reports_change_without_writing(aws, run, make_group):
    make_group()
    result = run({"name": "web-standby", "min_size": 2}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["min_size"] == 2
    assert pool_of(aws) is None


def test_update_shows_diff_and_resets_capacity_to_default(aws, run, make_group):
    make_group()
    run({"name": "web-standby", "max_group_prepared_capacity": 3})
    result = run({"name": "web-standby", "pool_state": "running"}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["pool_state"] == "stopped"
    assert result["diff"]["after"]["pool_state"] == "running"
    assert result["diff"]["after"]["max_group_prepared_capacity"] is None
    assert pool_of(aws)["PoolState"] == "Running"


def test_absent_deletes_and_is_idempotent(aws, run, make_group):
    make_group()
    run({"name": "web-standby"})
    assert run({"name": "web-standby", "state": "absent"})["changed"] is True
    assert pool_of(aws) is None
    assert run({"name": "web-standby", "state": "absent"})["changed"] is False


def test_missing_group_fails_naming_the_field(aws, run):
    result = run({"name": "nope"})
    assert result["failed"] is True
    assert result["msg"] == "name: Auto Scaling group 'nope' does not exist in this region"


def test_spot_launch_template_is_refused_before_any_write(aws, run, make_group):
    make_group(template_data={"InstanceMarketOptions": {"MarketType": "spot"}})
    result = run({"name": "web-standby", "min_size": 1})
    assert result["failed"] is True
    assert "launches Spot instances" in result["msg"]
    assert pool_of(aws) is None


def test_spot_share_of_mixed_instances_policy_is_refused(aws, run, make_group):
    policy = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": "web-standby"},
            "Overrides": [{"InstanceType": "m5.large"}],
        },
        "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0},
    }
    make_group(MixedInstancesPolicy=policy)
    result = run({"name": "web-standby"})
    assert result["failed"] is True
    assert "100% of the capacity above the On-Demand base as Spot" in result["msg"]
    assert pool_of(aws) is None


def test_hibernated_needs_hibernation_in_the_template(aws, run, make_group):
    make_group()
    result = run({"name": "web-standby", "pool_state": "hibernated"})
    assert result["failed"] is True
    assert result["msg"].startswith("pool_state: 'hibernated' needs instances that can hibernate")
    assert pool_of(aws) is None


def test_hibernated_pool_on_hibernating_template(aws, run, make_group):
    make_group(template_data={"HibernationOptions": {"Configured": True}})
    assert run({"name": "web-standby", "pool_state": "hibernated"})["changed"] is True
    assert pool_of(aws)["PoolState"] == "Hibernated"


def test_min_size_above_prepared_capacity_fails_before_calling_aws(run):
    # No AWS mock here: any API call would fail differently.
    result = run({"name": "web-standby", "min_size": 5, "max_group_prepared_capacity": 2})
    assert result["failed"] is True
    assert result["msg"].startswith("min_size: 5 exceeds max_group_prepared_capacity (2)")
