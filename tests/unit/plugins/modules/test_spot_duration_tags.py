# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""spot_duration_tags against moto's in-process AWS: the tags in the (mocked) account after each run."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import botocore.client
import pytest
from ansible.module_utils.testing import patch_module_args
from moto import mock_aws

from ansible_collections.spotmax.maxgroup.plugins.modules import spot_duration_tags

REGION = "us-east-1"
CONNECTION = {"region": REGION, "access_key": "testing", "secret_key": "testing"}
HOURS = "spotmax:instance_duration_hours"
MINS = "spotmax:gurantee_living_mins"
MINS_CORRECT = "spotmax:guarantee_living_mins"
WRITES = ("CreateOrUpdateTags", "DeleteTags")


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        # Groups of size 0 launch nothing: the template's image is never looked up.
        ec2 = boto3.client("ec2", region_name=REGION)
        ec2.create_launch_template(LaunchTemplateName="duration-lt", LaunchTemplateData={"ImageId": "ami-12c6146b"})
        yield boto3.client("autoscaling", region_name=REGION)


@pytest.fixture(name="api_calls")
def api_calls_fixture(monkeypatch):
    """The AWS API requests the module sends, by operation name (what the local world's counter reports)."""
    calls = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        calls[operation_name] += 1
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def make_group(client, name, tags=None):
    client.create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
        LaunchTemplate={"LaunchTemplateName": "duration-lt", "Version": "$Latest"},
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": False}
            for k, v in (tags or {}).items()
        ],
    )


def tags_of(client, name):
    group = client.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {tag["Key"]: (tag["Value"], bool(tag.get("PropagateAtLaunch"))) for tag in group.get("Tags", [])}


def values_of(client, name):
    return {key: value for key, (value, _propagate) in tags_of(client, name).items()}


def run(args, capsys, check_mode=False, diff=False):
    module_args = {**CONNECTION, **args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
    with patch_module_args(module_args), pytest.raises(SystemExit):
        spot_duration_tags.main()
    return json.loads(capsys.readouterr().out)


def writes(calls):
    return sum(calls[operation] for operation in WRITES)


def test_creates_the_published_tags_then_is_idempotent(aws, api_calls, capsys):
    make_group(aws, "web", {"team": "search", "Name": "web"})
    args = {"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 50}
    first = run(args, capsys)
    assert first["changed"] is True
    assert values_of(aws, "web") == {"team": "search", "Name": "web", HOURS: "1", MINS: "50"}
    assert first["groups"] == [
        {
            "name": "web",
            "changed": True,
            "before": {"instance_duration_hours": None, "guarantee_living_mins": None, "tags": []},
            "after": {
                "instance_duration_hours": 1,
                "guarantee_living_mins": 50,
                "tags": [
                    {"key": MINS, "value": "50", "propagate_at_launch": False},
                    {"key": HOURS, "value": "1", "propagate_at_launch": False},
                ],
            },
        }
    ]
    api_calls.clear()
    second = run(args, capsys)
    assert second["changed"] is False
    assert second["groups"][0]["changed"] is False
    assert writes(api_calls) == 0
    assert values_of(aws, "web") == {"team": "search", "Name": "web", HOURS: "1", MINS: "50"}


def test_check_mode_reports_the_change_and_writes_nothing(aws, api_calls, capsys):
    make_group(aws, "web", {"team": "search"})
    result = run(
        {"name": "web", "instance_duration_hours": 2, "guarantee_living_mins": 90}, capsys, check_mode=True, diff=True
    )
    assert result["changed"] is True
    assert result["groups"][0]["after"]["guarantee_living_mins"] == 90
    assert result["diff"]["before"]["web"]["tags"] == []
    assert result["diff"]["after"]["web"]["instance_duration_hours"] == 2
    assert writes(api_calls) == 0
    assert values_of(aws, "web") == {"team": "search"}


def test_update_shows_diff_and_touches_no_other_tag(aws, capsys):
    make_group(aws, "web", {HOURS: "1", MINS: "50", "team": "search"})
    result = run({"name": "web", "instance_duration_hours": 3, "guarantee_living_mins": 170}, capsys, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["web"]["instance_duration_hours"] == 1
    assert result["diff"]["after"]["web"]["instance_duration_hours"] == 3
    assert result["diff"]["after"]["web"]["guarantee_living_mins"] == 170
    assert values_of(aws, "web") == {HOURS: "3", MINS: "170", "team": "search"}


def test_propagate_at_launch_difference_is_a_change(aws, capsys):
    make_group(aws, "web", {HOURS: "1", MINS: "50"})
    args = {"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 50, "propagate_at_launch": True}
    assert run(args, capsys)["changed"] is True
    assert tags_of(aws, "web") == {HOURS: ("1", True), MINS: ("50", True)}
    assert run(args, capsys)["changed"] is False


def test_correct_spelling_is_updated_in_place(aws, capsys):
    make_group(aws, "web", {HOURS: "1", MINS_CORRECT: "50"})
    result = run({"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 40}, capsys)
    assert result["changed"] is True
    assert values_of(aws, "web") == {HOURS: "1", MINS_CORRECT: "40"}
    assert result["groups"][0]["before"]["guarantee_living_mins"] == 50


def test_both_spellings_get_the_same_value(aws, capsys):
    make_group(aws, "web", {HOURS: "1", MINS: "50", MINS_CORRECT: "30"})
    assert run({"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 45}, capsys)["changed"] is True
    assert values_of(aws, "web") == {HOURS: "1", MINS: "45", MINS_CORRECT: "45"}


def test_malformed_values_are_reported_and_overwritten(aws, capsys):
    make_group(aws, "web", {HOURS: "soon", MINS: "fifty"})
    result = run({"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 50}, capsys)
    assert result["changed"] is True
    assert result["groups"][0]["before"]["instance_duration_hours"] == "soon"
    assert result["groups"][0]["before"]["guarantee_living_mins"] == "fifty"
    assert values_of(aws, "web") == {HOURS: "1", MINS: "50"}


def test_absent_removes_every_spelling_and_nothing_else(aws, api_calls, capsys):
    make_group(aws, "web", {HOURS: "1", MINS: "50", MINS_CORRECT: "50", "team": "search"})
    make_group(aws, "db", {"team": "data"})
    result = run({"names": ["web", "db"], "state": "absent"}, capsys, diff=True)
    assert result["changed"] is True
    assert [(group["name"], group["changed"]) for group in result["groups"]] == [("web", True), ("db", False)]
    assert result["diff"]["before"]["web"]["instance_duration_hours"] == 1
    assert result["diff"]["after"]["web"]["tags"] == []
    assert values_of(aws, "web") == {"team": "search"}
    assert values_of(aws, "db") == {"team": "data"}
    api_calls.clear()
    assert run({"names": ["web", "db"], "state": "absent"}, capsys)["changed"] is False
    assert writes(api_calls) == 0


def test_hundreds_of_groups_in_one_run_with_batched_calls(aws, api_calls, capsys):
    names = [f"fleet-{index:03d}" for index in range(250)]
    for name in names:
        make_group(aws, name, {"team": "batch"})
    names_done = names[:7]
    for name in names_done:
        aws.create_or_update_tags(
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": False,
                }
                for k, v in ((HOURS, "6"), (MINS, "350"))
            ]
        )
    api_calls.clear()
    args = {"names": names, "instance_duration_hours": 6, "guarantee_living_mins": 350}
    result = run(args, capsys)
    calls = dict(api_calls)
    assert result["changed"] is True
    assert [group["name"] for group in result["groups"]] == names
    assert [group["changed"] for group in result["groups"]] == [name not in names_done for name in names]
    assert all(values_of(aws, name) == {"team": "batch", HOURS: "6", MINS: "350"} for name in names)
    # 250 names: 3 describe calls; 243 groups x 2 tags at 20 tags per call: 25 write calls.
    assert calls == {"DescribeAutoScalingGroups": 3, "CreateOrUpdateTags": 25}
    api_calls.clear()
    assert run(args, capsys)["changed"] is False
    assert writes(api_calls) == 0


def test_missing_groups_fail_before_any_write_naming_all(aws, capsys):
    make_group(aws, "web", {"team": "search"})
    result = run(
        {"names": ["web", "ghost-1", "ghost-2"], "instance_duration_hours": 1, "guarantee_living_mins": 50}, capsys
    )
    assert result["failed"] is True
    assert result["msg"] == "names: 2 of the 3 Auto Scaling groups do not exist in this region: 'ghost-1', 'ghost-2'"
    assert values_of(aws, "web") == {"team": "search"}


def test_missing_single_group_fails(aws, capsys):
    result = run({"name": "ghost", "state": "absent"}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "name: Auto Scaling group 'ghost' does not exist in this region"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"name": "web", "instance_duration_hours": 7, "guarantee_living_mins": 50},
            "instance_duration_hours: 7 is not allowed; use an integer from 1 to 6",
        ),
        (
            {"name": "web", "instance_duration_hours": 0, "guarantee_living_mins": 50},
            "instance_duration_hours: 0 is not allowed; use an integer from 1 to 6",
        ),
        (
            {"name": "web", "instance_duration_hours": 1, "guarantee_living_mins": 0},
            "guarantee_living_mins: 0 is not allowed; use an integer from 1 to 59 "
            "(below instance_duration_hours * 60 = 60)",
        ),
        (
            {"name": "web", "instance_duration_hours": 2, "guarantee_living_mins": 120},
            "guarantee_living_mins: 120 is not allowed; use an integer from 1 to 119 "
            "(below instance_duration_hours * 60 = 120)",
        ),
        (
            {"name": "web", "guarantee_living_mins": 50},
            "instance_duration_hours: a value is required with state=present; use an integer from 1 to 6",
        ),
        (
            {"name": "web", "instance_duration_hours": 1},
            "guarantee_living_mins: a value is required with state=present; use an integer from 1 to 59",
        ),
        (
            {"names": [], "state": "absent"},
            "names: [] is not allowed; use a list of one or more Auto Scaling group names",
        ),
        ({"name": "", "state": "absent"}, "name: '' is not allowed; use the name of an Auto Scaling group"),
        ({"name": "web", "names": ["db"], "state": "absent"}, "parameters are mutually exclusive: name|names"),
        ({"state": "absent"}, "one of the following is required: name, names"),
    ],
)
def test_invalid_input_fails_before_any_write(aws, api_calls, capsys, args, message):
    make_group(aws, "web", {"team": "search"})
    api_calls.clear()
    result = run(args, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
    assert sum(api_calls.values()) == 0
    assert values_of(aws, "web") == {"team": "search"}
