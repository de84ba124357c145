# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling
from ansible_collections.spotmax.maxgroup.plugins.module_utils import capacity_rebalance as cr


def group(name, rebalance=None):
    described = {"AutoScalingGroupName": name, "MinSize": 0, "MaxSize": 2}
    if rebalance is not None:
        described["CapacityRebalance"] = rebalance
    return described


@pytest.mark.parametrize(
    "names, message",
    [
        (None, "names: None is not allowed; use a list of one or more Auto Scaling group names"),
        ([], "names: [] is not allowed; use a list of one or more Auto Scaling group names"),
        (["web", ""], "names: ['web', ''] is not allowed; entry 1 is empty, every entry must be a group name"),
        (["web", "  "], "names: ['web', '  '] is not allowed; entry 1 is empty, every entry must be a group name"),
        (
            ["web", "batch", "web", "batch", "api"],
            "names: ['web', 'batch', 'web', 'batch', 'api'] is not allowed; 'web', 'batch' listed more than once, "
            "list each group once",
        ),
    ],
)
def test_check_names_refuses_empty_and_repeated_names(names, message):
    with pytest.raises(cr.RebalanceError) as raised:
        cr.check_names(names)
    assert str(raised.value) == message


def test_check_names_keeps_the_given_order():
    assert cr.check_names(["web", "api", "batch"]) == ["web", "api", "batch"]


@pytest.mark.parametrize("concurrency", [0, -1, 21])
def test_check_concurrency_refuses_values_outside_1_to_20(concurrency):
    with pytest.raises(cr.RebalanceError) as raised:
        cr.check_concurrency(concurrency)
    assert str(raised.value) == f"concurrency: {concurrency} is not allowed; use an integer from 1 to 20"


@pytest.mark.parametrize("concurrency", [1, 4, 20])
def test_check_concurrency_accepts_1_to_20(concurrency):
    assert cr.check_concurrency(concurrency) == concurrency


def test_missing_setting_reads_as_off():
    assert cr.capacity_rebalance(group("web")) is False
    assert cr.capacity_rebalance(group("web", False)) is False
    assert cr.capacity_rebalance(group("web", True)) is True


def test_plan_updates_only_the_groups_that_differ():
    described = [group("batch", True), group("web"), group("api", False)]
    wanted = cr.plan(["web", "api", "batch"], described, True)
    assert wanted.changed is True
    assert wanted.changed_groups == ["web", "api"]
    assert wanted.update_requests() == [
        {"AutoScalingGroupName": "web", "CapacityRebalance": True},
        {"AutoScalingGroupName": "api", "CapacityRebalance": True},
    ]
    assert wanted.groups() == [
        {"name": "web", "capacity_rebalance": True},
        {"name": "api", "capacity_rebalance": True},
        {"name": "batch", "capacity_rebalance": True},
    ]
    assert wanted.diff() == {
        "before": {
            "web": {"capacity_rebalance": False},
            "api": {"capacity_rebalance": False},
            "batch": {"capacity_rebalance": True},
        },
        "after": {
            "web": {"capacity_rebalance": True},
            "api": {"capacity_rebalance": True},
            "batch": {"capacity_rebalance": True},
        },
    }


def test_plan_turning_off_changes_only_the_enabled_groups():
    wanted = cr.plan(["web", "api"], [group("web", True), group("api")], False)
    assert wanted.changed_groups == ["web"]
    assert wanted.update_requests() == [{"AutoScalingGroupName": "web", "CapacityRebalance": False}]


def test_plan_with_nothing_to_change_has_no_request():
    wanted = cr.plan(["web", "api"], [group("web", True), group("api", True)], True)
    assert wanted.changed is False
    assert wanted.changed_groups == []
    assert wanted.update_requests() == []
    assert wanted.diff()["before"] == wanted.diff()["after"]


def test_plan_names_every_missing_group():
    with pytest.raises(cr.RebalanceError) as raised:
        cr.plan(["web", "ghost-a", "api", "ghost-b"], [group("web"), group("api")], True)
    assert str(raised.value) == (
        "names: 2 of the 4 Auto Scaling groups do not exist in this region: 'ghost-a', 'ghost-b'"
    )


def test_plan_names_a_single_missing_group():
    with pytest.raises(cr.RebalanceError) as raised:
        cr.plan(["ghost"], [], True)
    assert str(raised.value) == "names: Auto Scaling group 'ghost' does not exist in this region"


class FakeAutoScaling:
    """Groups in memory; remembers how many updates ran at once."""

    def __init__(self, names, fail=None):
        self.rebalance = dict.fromkeys(names, False)
        self.fail = fail
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def update_auto_scaling_group(self, aws_retry, **request):
        assert aws_retry is True
        name = request["AutoScalingGroupName"]
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.02)
            if name == self.fail:
                raise RuntimeError(f"update of {name} refused")
            with self.lock:
                self.rebalance[name] = request["CapacityRebalance"]
        finally:
            with self.lock:
                self.running -= 1


def test_update_groups_updates_every_group_at_most_concurrency_at_once():
    names = [f"group-{index}" for index in range(12)]
    client = FakeAutoScaling(names)
    requests = [{"AutoScalingGroupName": name, "CapacityRebalance": True} for name in names]
    autoscaling.update_groups(client, requests, concurrency=3)
    assert client.rebalance == dict.fromkeys(names, True)
    assert 1 < client.most_at_once <= 3


def test_update_groups_with_concurrency_1_runs_one_at_a_time():
    names = ["web", "api", "batch"]
    client = FakeAutoScaling(names)
    autoscaling.update_groups(client, [{"AutoScalingGroupName": n, "CapacityRebalance": True} for n in names], 1)
    assert client.rebalance == dict.fromkeys(names, True)
    assert client.most_at_once == 1


def test_update_groups_raises_the_error_of_a_refused_update():
    client = FakeAutoScaling(["web", "api"], fail="api")
    requests = [{"AutoScalingGroupName": name, "CapacityRebalance": True} for name in ("web", "api")]
    with pytest.raises(RuntimeError, match="update of api refused"):
        autoscaling.update_groups(client, requests, concurrency=2)
    assert client.rebalance["api"] is False
