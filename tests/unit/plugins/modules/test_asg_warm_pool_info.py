# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_warm_pool_info against moto's in-process AWS."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_warm_pool_info


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(asg_warm_pool_info, args, **kwargs)


def test_lists_only_groups_with_a_pool_sorted_by_name(aws, run, make_group):
    for name in ("web-b", "web-a", "web-nopool"):
        make_group(name)
    asg = aws["autoscaling"]
    asg.put_warm_pool(AutoScalingGroupName="web-b", MinSize=1, PoolState="Running")
    asg.put_warm_pool(AutoScalingGroupName="web-a", MaxGroupPreparedCapacity=3)
    result = run({})
    assert result["changed"] is False
    pools = result["warm_pools"]
    assert [pool["auto_scaling_group_name"] for pool in pools] == ["web-a", "web-b"]
    assert pools[0]["max_group_prepared_capacity"] == 3
    assert (pools[1]["pool_state"], pools[1]["min_size"]) == ("running", 1)
    assert pools[1]["max_group_prepared_capacity"] is None


def test_named_group_without_pool_gives_an_empty_list(aws, run, make_group):
    make_group("web-nopool")
    assert run({"name": "web-nopool"})["warm_pools"] == []


def test_named_group(aws, run, make_group):
    make_group("web-a")
    make_group("web-b")
    aws["autoscaling"].put_warm_pool(AutoScalingGroupName="web-b", MinSize=2)
    pools = run({"name": "web-b"})["warm_pools"]
    assert [(pool["auto_scaling_group_name"], pool["min_size"]) for pool in pools] == [("web-b", 2)]


def test_missing_named_group_fails(aws, run):
    result = run({"name": "nope"})
    assert result["failed"] is True
    assert result["msg"] == "name: Auto Scaling group 'nope' does not exist in this region"


def test_empty_name_fails_before_calling_aws(run):
    result = run({"name": " "})
    assert result["failed"] is True
    assert result["msg"].startswith("name: an empty name is not allowed")
