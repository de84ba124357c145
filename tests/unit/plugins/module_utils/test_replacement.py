# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling, replacement


def standby(name, served, desired=0, max_size=4):
    return {
        "AutoScalingGroupName": name,
        "DesiredCapacity": desired,
        "MaxSize": max_size,
        "Tags": [{"Key": "spotmax:standby_for", "Value": served}],
    }


def member(instance_id, group, state="InService"):
    return {"InstanceId": instance_id, "AutoScalingGroupName": group, "LifecycleState": state}


def test_standby_groups_map_served_group_to_standby():
    groups = [standby("b-standby", "b"), {"AutoScalingGroupName": "plain", "Tags": []}, standby("a-standby", "a")]
    assert {served: group["AutoScalingGroupName"] for served, group in replacement.standby_groups(groups).items()} == {
        "a": "a-standby",
        "b": "b-standby",
    }


def test_plan_groups_detaches_and_counts_standby_per_group():
    described = [member("i-1", "a"), member("i-2", "a"), member("i-3", "b"), member("i-4", "a", "Terminating:Wait")]
    spare = {"a": standby("a-standby", "a", desired=1)}
    wanted = replacement.plan(["i-3", "i-1", "i-2", "i-4", "i-5"], described, spare)
    assert wanted["detach"] == {"a": ["i-1", "i-2"], "b": ["i-3"]}
    assert wanted["standby"] == {"a-standby": {"from": 1, "to": 3, "capped": False}}
    assert wanted["skipped"] == [
        {"instance_id": "i-4", "reason": "lifecycle state Terminating:Wait cannot be detached"},
        {"instance_id": "i-5", "reason": "not in an Auto Scaling group"},
    ]


def test_instances_of_a_renewal_round_are_detached_with_a_decrement_and_add_no_standby():
    described = [member("i-1", "a"), member("i-2", "a"), member("i-3", "a", "Terminating:Wait")]
    spare = {"a": standby("a-standby", "a", desired=0)}
    assert replacement.detachable(["i-1", "i-2", "i-3", "i-9"], described) == ["i-1", "i-2"]
    wanted = replacement.plan(["i-1", "i-2", "i-3"], described, spare, renewing={"i-2", "i-3"})
    assert wanted["detach"] == {"a": ["i-1"]}
    assert wanted["detach_renewed"] == {"a": ["i-2"]}
    assert wanted["standby"] == {"a-standby": {"from": 0, "to": 1, "capped": False}}
    only_renewing = replacement.plan(["i-2"], described, spare, renewing={"i-2"})
    assert only_renewing["detach"] == {} and only_renewing["standby"] == {}


def test_plan_without_standby_or_at_max_size_scales_nothing():
    described = [member("i-1", "a")]
    assert replacement.plan(["i-1"], described, {"a": standby("s", "a")}, use_standby=False)["standby"] == {}
    full = {"a": standby("s", "a", desired=2, max_size=2)}
    assert replacement.plan(["i-1"], described, full)["standby"] == {}


def test_detach_calls_hold_at_most_20_instances_and_one_group_each():
    ids = [f"i-{n:017x}" for n in range(45)]
    calls = autoscaling.detach_calls({"big": ids[:41], "small": ids[41:]})
    assert [(group, len(batch)) for group, batch in calls] == [("big", 20), ("big", 20), ("big", 1), ("small", 4)]
    assert [i for _group, batch in calls for i in batch] == ids
    assert autoscaling.detach_calls({}) == []
