# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import fallback, metrics, renewal

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DURATION = {"spotmax:instance_duration_hours": "1", "spotmax:gurantee_living_mins": "50"}


def tags(values):
    return [{"Key": key, "Value": value} for key, value in values.items()]


def group(members, desired=None, max_size=10, extra=None, policy=(0, 0), min_size=0):
    found = {
        "AutoScalingGroupName": "web",
        "DesiredCapacity": len(members) if desired is None else desired,
        "MaxSize": max_size,
        "MinSize": min_size,
        "Instances": [{"InstanceId": i, "LifecycleState": state} for i, state in members],
        "Tags": tags(extra or {}),
    }
    if policy is not None:
        found["MixedInstancesPolicy"] = {
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "t"}},
            "InstancesDistribution": {
                "OnDemandBaseCapacity": policy[0],
                "OnDemandPercentageAboveBaseCapacity": policy[1],
            },
        }
    return found


def instance(instance_id, minutes, spot=True, renewing=None):
    found = {"InstanceId": instance_id, "LaunchTime": NOW - timedelta(minutes=minutes), "Tags": []}
    if spot:
        found["InstanceLifecycle"] = "spot"
    if renewing is not None:
        found["Tags"] = [{"Key": renewal.RENEWING_KEY, "Value": str(renewing)}]
    return found


def by_id(*instances):
    return {i["InstanceId"]: i for i in instances}


def test_response_time_is_the_date_header():
    reply = {"ResponseMetadata": {"HTTPHeaders": {"date": "Sun, 22 Nov 2026 12:00:00 GMT"}}}
    assert renewal.response_time(reply) == NOW
    with pytest.raises(renewal.RenewalError, match="Date header"):
        renewal.response_time({"ResponseMetadata": {"HTTPHeaders": {}}})


def test_duration_selects_instances_past_the_guarantee_oldest_first():
    members = [("i-young", "InService"), ("i-old", "InService"), ("i-older", "InService"), ("i-pending", "Pending")]
    found = by_id(instance("i-young", 10), instance("i-old", 50), instance("i-older", 70), instance("i-pending", 90))
    assert renewal.due(group(members, extra=DURATION), found, NOW, "duration") == ["i-older", "i-old"]


def test_duration_reads_the_correct_spelling_and_ignores_groups_without_tags():
    members = [("i-a", "InService")]
    found = by_id(instance("i-a", 31))
    correct = {"spotmax:instance_duration_hours": "1", "spotmax:guarantee_living_mins": "30"}
    assert renewal.due(group(members, extra=correct), found, NOW, "duration") == ["i-a"]
    assert renewal.due(group(members), found, NOW, "duration") == []


def test_a_wrong_tag_is_an_error_naming_group_and_tag():
    members = [("i-a", "InService")]
    with pytest.raises(renewal.RenewalError, match=r"'web'.*spotmax:gurantee_living_mins"):
        renewal.due(group(members, extra={**DURATION, "spotmax:gurantee_living_mins": "soon"}), {}, NOW, "duration")


def test_launch_plan_takes_a_batch_within_the_maximum_size():
    members = [(f"i-{n}", "InService") for n in range(4)]
    wanted = group(members, max_size=5, extra={**DURATION, "spotmax:max_num_of_terminated_one_time": "3"})
    plan = renewal.launch_plan(wanted, {}, ["i-0", "i-1", "i-2"])
    assert (plan["renewing"], plan["mark"], plan["base"], plan["desired"]) == (["i-0"], ["i-0"], 4, 5)
    full = group(members, max_size=4, extra=DURATION)
    plan = renewal.launch_plan(full, {}, ["i-0"])
    assert plan["renewing"] == [] and "no room" in plan["skipped"]


def test_a_group_keeping_data_volumes_in_several_zones_is_skipped_with_the_reason():
    members = [("i-a", "InService"), ("i-b", "InService")]
    keeping = {**DURATION, "spotmax:persistence_dev": "/dev/sdf"}
    several = {**group(members, max_size=4, extra=keeping), "AvailabilityZones": ["us-east-1b", "us-east-1a"]}
    plan = renewal.launch_plan(several, {}, ["i-a"])
    assert plan["renewing"] == [] and plan["mark"] == [] and plan["desired"] == 2
    assert plan["skipped"].startswith("spotmax:persistence_dev in 2 zones (us-east-1a, us-east-1b)")
    one = {**several, "AvailabilityZones": ["us-east-1a"]}
    assert renewal.launch_plan(one, {}, ["i-a"])["mark"] == ["i-a"]


def test_a_round_in_progress_is_resumed_not_started_again():
    members = [("i-a", "InService"), ("i-b", "InService"), ("i-new", "Pending"), ("i-gone", "Terminating:Wait")]
    found = by_id(instance("i-a", 60, renewing=2), instance("i-b", 60), instance("i-gone", 90, renewing=1))
    wanted = group(members, desired=3, extra=DURATION)
    plan = renewal.launch_plan(wanted, found, ["i-b"])
    assert (plan["renewing"], plan["mark"], plan["base"], plan["desired"]) == (["i-a"], [], 2, 3)
    assert renewal.due(wanted, found, NOW, "duration") == ["i-b"], "the marked instance is not picked again"


def test_ready_when_unmarked_in_service_instances_reach_the_recorded_capacity():
    members = [("i-a", "InService"), ("i-b", "InService"), ("i-new", "Pending")]
    assert not renewal.ready(group(members), ["i-a"], 2)
    members[2] = ("i-new", "InService")
    assert renewal.ready(group(members), ["i-a"], 2)


def test_on_demand_reason_selects_fallback_instances_above_the_share_once_old_enough():
    members = [("i-od1", "InService"), ("i-od2", "InService"), ("i-od3", "InService"), ("i-spot", "InService")]
    found = by_id(
        instance("i-od1", 30, spot=False),
        instance("i-od2", 20, spot=False),
        instance("i-od3", 5, spot=False),
        instance("i-spot", 40),
    )
    extra = {renewal.FALLBACK_FROM_KEY: "1/0", "spotmax:od_least_live_mins": "15"}
    # base 1: one On-Demand instance stays; of the two above it, only those that lived 15 minutes go
    assert renewal.due(group(members, extra=extra), found, NOW, "on_demand") == ["i-od1", "i-od2"]
    assert renewal.due(group(members), found, NOW, "on_demand") == [], "not in fallback"
    with pytest.raises(renewal.RenewalError, match="od_fallback_from"):
        renewal.due(group(members, extra={renewal.FALLBACK_FROM_KEY: "half"}), found, NOW, "on_demand")


def test_on_demand_target_rounds_towards_on_demand():
    assert renewal.on_demand_target(5, 1, 25) == 2
    assert renewal.on_demand_target(1, 2, 0) == 1
    assert renewal.on_demand_target(4, 0, 0) == 0


def activity(status, minutes_ago, message=""):
    return {
        "Description": "Launching a new EC2 instance",
        "StatusCode": status,
        "StatusMessage": message,
        "StartTime": NOW - timedelta(minutes=minutes_ago),
    }


SPOT_FAILURE = "Could not launch Spot Instances. InsufficientInstanceCapacity - no Spot capacity."


def test_spot_failures_since_a_moment():
    found = [activity("Failed", 1, SPOT_FAILURE), activity("Failed", 10, SPOT_FAILURE), activity("Successful", 0)]
    assert renewal.spot_failures(found, NOW - timedelta(minutes=5)) == [found[0]]


def test_fallback_when_short_and_the_latest_launch_failed_for_spot():
    short = group([("i-a", "InService")], desired=3)
    decision = fallback.fallback(short, [activity("Successful", 5), activity("Failed", 1, SPOT_FAILURE)], NOW, False)
    assert decision["action"] == "fallback"
    assert decision["tags"] == {renewal.FALLBACK_AT_KEY: "2026-11-22T12:00:00Z", renewal.FALLBACK_FROM_KEY: "0/0"}
    policy = decision["policy"]
    assert policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    assert "LaunchTemplateName" not in policy["LaunchTemplate"]["LaunchTemplateSpecification"]
    assert short["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0


@pytest.mark.parametrize(
    "wanted, activities, reason",
    [
        (group([("i-a", "InService")], desired=1), [activity("Failed", 1, SPOT_FAILURE)], "not failing"),
        (group([], desired=2), [activity("Failed", 2, SPOT_FAILURE), activity("Successful", 1)], "not failing"),
        (group([], desired=2, extra={"spotmax:is_enable_od_fallback": "false"}), [], "is_enable_od_fallback"),
        (group([], desired=2, policy=(0, 100)), [], "already On-Demand"),
        (group([], desired=2, policy=None), [], "no mixed instances policy"),
    ],
)
def test_no_fallback(wanted, activities, reason):
    decision = fallback.fallback(wanted, activities, NOW, False)
    assert decision["action"] == "none" and reason in decision["reason"]


def test_a_second_fallback_keeps_the_first_record():
    wanted = group([], desired=2, extra={renewal.FALLBACK_FROM_KEY: "0/0", renewal.FALLBACK_AT_KEY: "x"})
    decision = fallback.fallback(wanted, [], NOW, True)
    assert decision["action"] == "fallback" and decision["tags"] == {}


def test_revert_waits_for_the_least_life_then_restores_then_finishes():
    members = [("i-od1", "InService"), ("i-od2", "InService")]
    extra = {renewal.FALLBACK_FROM_KEY: "0/0", "spotmax:od_least_live_mins": "15"}
    young = by_id(instance("i-od1", 5, spot=False), instance("i-od2", 5, spot=False))
    assert fallback.revert(group(members, extra=extra, policy=(0, 100)), young, NOW)["action"] == "none"
    old = by_id(instance("i-od1", 20, spot=False), instance("i-od2", 5, spot=False))
    decision = fallback.revert(group(members, extra=extra, policy=(0, 100)), old, NOW)
    assert decision["action"] == "restore" and decision["excess"] == 2
    assert decision["policy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    spot = by_id(instance("i-od1", 1), instance("i-od2", 1))
    decision = fallback.revert(group(members, extra=extra, policy=(0, 0)), spot, NOW)
    assert (decision["action"], decision["policy"]) == ("finish", None)
    assert fallback.revert(group(members), spot, NOW)["action"] == "none"


def test_standby_scales_in_once_its_group_is_whole_and_its_instances_lived_long_enough():
    served = group([("i-s1", "InService"), ("i-s2", "Pending")], desired=2)
    served["AutoScalingGroupName"] = "web"
    standby = group([("i-w1", "InService"), ("i-w2", "InService")], extra={"spotmax:standby_for": "web"})
    standby["AutoScalingGroupName"] = "web-standby"
    found = by_id(instance("i-w1", 20, spot=False), instance("i-w2", 5, spot=False))
    assert fallback.scale_in_standby(standby, served, found, NOW)["action"] == "none"
    served["Instances"][1]["LifecycleState"] = "InService"
    decision = fallback.scale_in_standby(standby, served, found, NOW)
    assert (decision["action"], decision["desired"]) == ("scale_in", 1)
    assert "does not exist" in fallback.scale_in_standby(standby, None, found, NOW)["reason"]


def test_capacity_metrics_split_in_service_instances_by_market():
    members = [("i-s", "InService"), ("i-od", "InService"), ("i-new", "Pending")]
    found = by_id(instance("i-s", 1), instance("i-od", 1, spot=False), instance("i-new", 0))
    datums = metrics.capacity([group(members)], found)
    assert [(d["metric_name"], d["value"], d["dimensions"]) for d in datums] == [
        ("InServiceSpot", 1, {"AutoScalingGroupName": "web"}),
        ("InServiceOnDemand", 1, {"AutoScalingGroupName": "web"}),
    ]
