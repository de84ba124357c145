# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_capacity_rebalance against moto's in-process AWS: the groups' settings after the run, not calls."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_capacity_rebalance

REGION = "us-east-1"


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(asg_capacity_rebalance, args, **kwargs)


@pytest.fixture(name="groups")
def groups_fixture(capacity_rebalance_aws):
    """``groups(*names, **enabled)``: groups sharing one launch template, capacity rebalance off unless named."""
    aws = capacity_rebalance_aws
    # The groups launch nothing (desired capacity 0), so any image id does.
    aws["ec2"].create_launch_template(
        LaunchTemplateName="rebalance", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"}
    )

    def make(*names, **enabled):
        for name in (*names, *enabled):
            aws["autoscaling"].create_auto_scaling_group(
                AutoScalingGroupName=name,
                AvailabilityZones=[f"{REGION}a"],
                LaunchTemplate={"LaunchTemplateName": "rebalance"},
                MinSize=0,
                MaxSize=2,
                CapacityRebalance=enabled.get(name, False),
            )

    return make


def settings(aws):
    """CapacityRebalance of every group in the account, read back from AWS."""
    found = {}
    request = {"MaxRecords": 100}
    while True:
        page = aws["autoscaling"].describe_auto_scaling_groups(**request)
        found.update({g["AutoScalingGroupName"]: g.get("CapacityRebalance", False) for g in page["AutoScalingGroups"]})
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def test_enables_the_groups_then_a_rerun_changes_nothing(capacity_rebalance_aws, run, groups):
    groups("web", "batch", api=True)
    first = run({"names": ["web", "api", "batch"], "enabled": True}, diff=True)
    assert first["changed"] is True
    assert first["changed_groups"] == ["web", "batch"]
    assert first["groups"] == [
        {"name": "web", "capacity_rebalance": True},
        {"name": "api", "capacity_rebalance": True},
        {"name": "batch", "capacity_rebalance": True},
    ]
    assert first["diff"]["before"]["web"] == {"capacity_rebalance": False}
    assert first["diff"]["before"]["api"] == {"capacity_rebalance": True}
    assert first["diff"]["after"]["batch"] == {"capacity_rebalance": True}
    assert settings(capacity_rebalance_aws) == {"web": True, "api": True, "batch": True}

    again = run({"names": ["web", "api", "batch"], "enabled": True})
    assert again["changed"] is False
    assert again["changed_groups"] == []
    assert settings(capacity_rebalance_aws) == {"web": True, "api": True, "batch": True}


def test_disables_only_the_named_groups(capacity_rebalance_aws, run, groups):
    groups(web=True, api=True, batch=True)
    result = run({"names": ["api"], "enabled": False})
    assert result["changed"] is True
    assert result["changed_groups"] == ["api"]
    assert result["groups"] == [{"name": "api", "capacity_rebalance": False}]
    assert settings(capacity_rebalance_aws) == {"web": True, "api": False, "batch": True}


def test_check_mode_predicts_the_change_without_writing(capacity_rebalance_aws, run, groups):
    groups("web", api=True)
    result = run({"names": ["web", "api"], "enabled": True}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["changed_groups"] == ["web"]
    assert result["groups"] == [
        {"name": "web", "capacity_rebalance": True},
        {"name": "api", "capacity_rebalance": True},
    ]
    assert result["diff"]["before"]["web"] == {"capacity_rebalance": False}
    assert result["diff"]["after"]["web"] == {"capacity_rebalance": True}
    assert settings(capacity_rebalance_aws) == {"web": False, "api": True}


def test_check_mode_without_a_difference_reports_no_change(capacity_rebalance_aws, run, groups):
    groups("web")
    result = run({"names": ["web"], "enabled": False}, check_mode=True)
    assert (result["changed"], result["changed_groups"]) == (False, [])


def test_more_groups_than_one_describe_call_holds(capacity_rebalance_aws, run, groups):
    names = [f"fleet-{index:03d}" for index in range(130)]
    groups(*names)
    result = run({"names": names, "enabled": True, "concurrency": 20})
    assert result["changed_groups"] == names
    assert settings(capacity_rebalance_aws) == dict.fromkeys(names, True)


def test_missing_groups_fail_before_any_write(capacity_rebalance_aws, run, groups):
    groups("web", "api")
    result = run({"names": ["web", "ghost-a", "api", "ghost-b"], "enabled": True})
    assert result["failed"] is True
    assert result["msg"] == "names: 2 of the 4 Auto Scaling groups do not exist in this region: 'ghost-a', 'ghost-b'"
    assert settings(capacity_rebalance_aws) == {"web": False, "api": False}


@pytest.mark.parametrize(
    "args, message",
    [
        ({"names": []}, "names: [] is not allowed; use a list of one or more Auto Scaling group names"),
        (
            {"names": ["web", ""]},
            "names: ['web', ''] is not allowed; entry 1 is empty, every entry must be a group name",
        ),
        (
            {"names": ["web", "web"]},
            "names: ['web', 'web'] is not allowed; 'web' listed more than once, list each group once",
        ),
        ({"names": ["web"], "concurrency": 0}, "concurrency: 0 is not allowed; use an integer from 1 to 20"),
        ({"names": ["web"], "concurrency": 21}, "concurrency: 21 is not allowed; use an integer from 1 to 20"),
    ],
)
def test_invalid_input_fails_naming_the_field_and_writes_nothing(capacity_rebalance_aws, run, groups, args, message):
    groups("web")
    result = run({"enabled": True, **args})
    assert result["failed"] is True
    assert result["msg"] == message
    assert settings(capacity_rebalance_aws) == {"web": False}


def test_enabled_is_required(capacity_rebalance_aws, run, groups):
    groups("web")
    result = run({"names": ["web"]})
    assert result["failed"] is True
    assert "enabled" in result["msg"]
    assert settings(capacity_rebalance_aws) == {"web": False}
