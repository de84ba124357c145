# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_renew_instances and asg_spot_fallback against moto's in-process AWS: input checks, group state after a run.

The launch-first rounds over time (aged instances, Spot faults) run against the world in
tests/e2e/test_duration_fallback.py; moto alone has neither a clock to advance nor Spot faults.
"""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_renew_instances, asg_spot_fallback

DURATION = [
    {"Key": "spotmax:instance_duration_hours", "Value": "1"},
    {"Key": "spotmax:gurantee_living_mins", "Value": "50"},
]


def mixed(name, percentage=0):
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": name, "Version": "$Latest"},
            "Overrides": [{"InstanceType": "m5.large"}],
        },
        "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": percentage},
    }


def group(aws, name):
    return aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"wait_timeout": 4000}, "wait_timeout: 4000 is not allowed; use an integer from 0 to 3600"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed; use an integer from 1 to 20"),
        ({"names": [" "]}, "names: empty group names are not allowed"),
        ({"names": ["missing"]}, "names: no Auto Scaling group named missing"),
    ],
)
def test_renew_rejects_wrong_input_before_any_write(aws, run_module, args, message):
    result = run_module(asg_renew_instances, args)
    assert result["failed"] is True and message in result["msg"]


def test_renew_fails_on_a_wrong_duration_tag_naming_group_and_tag(aws, run_module, make_group):
    make_group("web", DesiredCapacity=1, Tags=[{"Key": "spotmax:gurantee_living_mins", "Value": "soon"}])
    result = run_module(asg_renew_instances, {"names": ["web"]})
    assert result["failed"] is True
    assert "'web'" in result["msg"] and "spotmax:gurantee_living_mins" in result["msg"]
    assert group(aws, "web")["DesiredCapacity"] == 1


def test_renew_leaves_young_instances_alone(aws, run_module, make_group):
    make_group("web", DesiredCapacity=2, Tags=DURATION)
    result = run_module(asg_renew_instances, {"wait_timeout": 0}, diff=True)
    assert (result["changed"], result["rounds"], result["ready_instance_ids"]) == (False, [], [])
    assert group(aws, "web")["DesiredCapacity"] == 2
    retired = run_module(asg_renew_instances, {"step": "retire"})
    assert (retired["changed"], retired["retired"]) == (False, [])


def test_fallback_force_sets_on_demand_and_records_the_distribution(aws, run_module, make_group):
    make_group("web", DesiredCapacity=1, MaxSize=4, MixedInstancesPolicy=mixed("web"))
    checked = run_module(asg_spot_fallback, {"names": ["web"], "force": True}, check_mode=True, diff=True)
    assert checked["changed"] is True and checked["changed_groups"] == ["web"]
    assert checked["diff"]["after"]["web"]["on_demand_percentage_above_base_capacity"] == 100
    assert (
        group(aws, "web")["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    )

    result = run_module(asg_spot_fallback, {"names": ["web"], "force": True})
    assert result["groups"] == [{"group": "web", "action": "fallback", "reason": ""}]
    after = group(aws, "web")
    assert after["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    tags = {tag["Key"]: tag["Value"] for tag in after["Tags"]}
    assert tags["spotmax:od_fallback_from"] == "0/0" and tags["spotmax:od_fallback_at"].endswith("Z")
    again = run_module(asg_spot_fallback, {"names": ["web"], "force": True})
    assert again["changed"] is False and again["groups"][0]["reason"].startswith("already On-Demand")


def test_fallback_without_failures_or_when_disabled_changes_nothing(aws, run_module, make_group):
    make_group("web", DesiredCapacity=1, MixedInstancesPolicy=mixed("web"))
    disabled = [{"Key": "spotmax:is_enable_od_fallback", "Value": "false"}]
    make_group("off", DesiredCapacity=1, MixedInstancesPolicy=mixed("off"), Tags=disabled)
    result = run_module(asg_spot_fallback, {"names": ["web", "off"]})
    assert result["changed"] is False
    reasons = {entry["group"]: entry["reason"] for entry in result["groups"]}
    assert "not failing" in reasons["web"] and "is_enable_od_fallback" in reasons["off"]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"state": "spot", "force": True}, "force: true is allowed with state=on_demand only"),
        ({"metrics_namespace": "AWS/Mine"}, "metrics_namespace: 'AWS/Mine' is not allowed"),
        ({"names": [""]}, "names: empty group names are not allowed"),
        ({"names": ["missing"]}, "names: no Auto Scaling group named missing"),
    ],
)
def test_fallback_rejects_wrong_input(aws, run_module, args, message):
    result = run_module(asg_spot_fallback, args)
    assert result["failed"] is True and message in result["msg"]


def test_revert_of_a_group_not_in_fallback_changes_nothing(aws, run_module, make_group):
    make_group("web", DesiredCapacity=1, MixedInstancesPolicy=mixed("web"))
    result = run_module(asg_spot_fallback, {"names": ["web"], "state": "spot"})
    assert result["changed"] is False and result["groups"][0]["reason"] == "not in On-Demand fallback"
