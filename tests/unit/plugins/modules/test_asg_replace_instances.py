# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_replace_instances against moto's in-process AWS: group membership and capacity after the run."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_replace_instances


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(asg_replace_instances, args, **kwargs)


def members(aws, name):
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return group["DesiredCapacity"], {instance["InstanceId"] for instance in group["Instances"]}


@pytest.fixture(name="fleet")
def fleet_fixture(aws, make_group):
    """web-spot with 3 instances and its standby group (desired 0, max 2)."""
    make_group("web-spot", DesiredCapacity=3)
    make_group("web-spot-standby", MaxSize=2, Tags=[{"Key": "spotmax:standby_for", "Value": "web-spot"}])
    return members(aws, "web-spot")[1]


def test_detaches_without_decrement_and_scales_the_standby_group(aws, run, fleet):
    chosen = sorted(fleet)[:2]
    result = run({"instance_ids": chosen}, diff=True)
    assert result["changed"] is True
    desired, now = members(aws, "web-spot")
    assert desired == 3
    assert not now & set(chosen)
    assert len(now) == 3  # replacements launched at once
    assert members(aws, "web-spot-standby")[0] == 2
    assert result["replacement"]["detached"] == {"web-spot": chosen}
    assert result["replacement"]["standby"] == {"web-spot-standby": {"from": 0, "to": 2, "capped": False}}
    assert result["diff"]["after"]["standby"] == {"web-spot-standby": 2}


def test_an_instance_of_a_renewal_round_is_detached_with_a_decrement(aws, run, fleet):
    """Its replacement is launched already: the round ends at the capacity the group had before it."""
    renewing, interrupted = sorted(fleet)[:2]
    aws["autoscaling"].set_desired_capacity(AutoScalingGroupName="web-spot", DesiredCapacity=4)  # the round's raise
    aws["ec2"].create_tags(Resources=[renewing], Tags=[{"Key": "spotmax:renewing", "Value": "3"}])
    result = run({"instance_ids": [renewing, interrupted]}, diff=True)
    assert result["changed"] is True
    assert result["replacement"]["detached"] == {"web-spot": [interrupted]}
    assert result["replacement"]["detached_renewed"] == {"web-spot": [renewing]}
    assert result["diff"]["after"]["detached_renewed"] == {"web-spot": [renewing]}
    desired, now = members(aws, "web-spot")
    assert desired == 3 and not now & {renewing, interrupted}
    assert members(aws, "web-spot-standby")[0] == 1, "standby capacity for the interrupted instance only"


def test_second_run_changes_nothing(aws, run, fleet):
    chosen = sorted(fleet)[:1]
    run({"instance_ids": chosen})
    again = run({"instance_ids": chosen})
    assert again["changed"] is False
    assert again["replacement"]["skipped"] == [{"instance_id": chosen[0], "reason": "not in an Auto Scaling group"}]
    assert members(aws, "web-spot-standby")[0] == 1


def test_standby_scale_out_is_capped_at_max_size(aws, run, fleet):
    result = run({"instance_ids": sorted(fleet)})
    assert result["replacement"]["standby"]["web-spot-standby"] == {"from": 0, "to": 2, "capped": True}
    assert members(aws, "web-spot-standby")[0] == 2


def test_check_mode_changes_nothing(aws, run, fleet):
    result = run({"instance_ids": sorted(fleet)[:1]}, check_mode=True)
    assert result["changed"] is True
    assert members(aws, "web-spot")[1] == fleet
    assert members(aws, "web-spot-standby")[0] == 0


def test_without_standby_only_detaches(aws, run, fleet):
    run({"instance_ids": sorted(fleet)[:1], "use_standby": False})
    assert members(aws, "web-spot-standby")[0] == 0
    assert len(members(aws, "web-spot")[1] - fleet) == 1


def test_wrong_ids_fail_before_any_call(run):
    result = run({"instance_ids": ["i-0123", "web-1"]})
    assert result["failed"] is True
    assert result["msg"] == "instance_ids: 'web-1' not allowed; use EC2 instance ids (i-...)"


def test_more_instances_than_one_call_holds_are_all_detached(aws, run, make_group):
    # 45 instances over two groups: three calls for one, one for the other (run one at a time here:
    # moto's in-process backend is not safe for concurrent writes to one group; the world's is).
    make_group("big", DesiredCapacity=40, MaxSize=40)
    make_group("small", DesiredCapacity=5)
    chosen = sorted(members(aws, "big")[1]) + sorted(members(aws, "small")[1])
    result = run({"instance_ids": chosen, "use_standby": False, "concurrency": 1})
    assert {group: len(ids) for group, ids in result["replacement"]["detached"].items()} == {"big": 40, "small": 5}
    for group, size in (("big", 40), ("small", 5)):
        desired, now = members(aws, group)
        assert desired == size
        assert not now & set(chosen)


@pytest.mark.parametrize("concurrency", [0, 21])
def test_concurrency_out_of_range_fails_before_any_call(aws, run, fleet, concurrency):
    result = run({"instance_ids": sorted(fleet)[:1], "concurrency": concurrency})
    assert result["failed"] is True
    assert result["msg"] == f"concurrency: {concurrency} is not allowed; use an integer from 1 to 20"
    assert members(aws, "web-spot")[1] == fleet
