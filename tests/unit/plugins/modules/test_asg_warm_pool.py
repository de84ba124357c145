# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""asg_warm_pool against moto's in-process AWS: outcomes in the (mocked) account, not calls."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args
from moto import mock_aws

from ansible_collections.spotmax.maxgroup.plugins.modules import asg_warm_pool

REGION = "us-east-1"
CONNECTION = {"region": REGION, "access_key": "testing", "secret_key": "testing"}


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        yield {
            "autoscaling": boto3.client("autoscaling", region_name=REGION),
            "ec2": boto3.client("ec2", region_name=REGION),
        }


def make_group(aws, name="web-standby", template_data=None, **extra):
    image = aws["ec2"].describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    data = {"ImageId": image, "InstanceType": "m5.large", **(template_data or {})}
    aws["ec2"].create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    spec = {"LaunchTemplateName": name, "Version": "$Latest"}
    group_args = {"LaunchTemplate": spec} if "MixedInstancesPolicy" not in extra else {}
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
        **group_args,
        **extra,
    )


def run(args, capsys, check_mode=False, diff=False):
    module_args = {**CONNECTION, **args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
    with patch_module_args(module_args), pytest.raises(SystemExit):
        asg_warm_pool.main()
    return json.loads(capsys.readouterr().out)


def pool_of(aws, name="web-standby"):
    return aws["autoscaling"].describe_warm_pool(AutoScalingGroupName=name).get("WarmPoolConfiguration")


def test_creates_pool_then_is_idempotent(aws, capsys):
    make_group(aws)
    args = {"name": "web-standby", "min_size": 1, "max_group_prepared_capacity": 3, "reuse_on_scale_in": True}
    first = run(args, capsys)
    assert first["changed"] is True
    assert first["warm_pool"]["min_size"] == 1
    assert first["warm_pool"]["instance_reuse_policy"] == {"reuse_on_scale_in": True}
    pool = pool_of(aws)
    assert (pool["PoolState"], pool["MinSize"], pool["MaxGroupPreparedCapacity"]) == ("Stopped", 1, 3)
    assert pool["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    assert run(args, capsys)["changed"] is False


def test_check_mode_reports_change_without_writing(aws, capsys):
    make_group(aws)
    result = run({"name": "web-standby", "min_size": 2}, capsys, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["min_size"] == 2
    assert pool_of(aws) is None


def test_update_shows_diff_and_resets_capacity_to_default(aws, capsys):
    make_group(aws)
    run({"name": "web-standby", "max_group_prepared_capacity": 3}, capsys)
    result = run({"name": "web-standby", "pool_state": "running"}, capsys, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["pool_state"] == "stopped"
    assert result["diff"]["after"]["pool_state"] == "running"
    assert result["diff"]["after"]["max_group_prepared_capacity"] is None
    assert pool_of(aws)["PoolState"] == "Running"


def test_absent_deletes_and_is_idempotent(aws, capsys):
    make_group(aws)
    run({"name": "web-standby"}, capsys)
    assert run({"name": "web-standby", "state": "absent"}, capsys)["changed"] is True
    assert pool_of(aws) is None
    assert run({"name": "web-standby", "state": "absent"}, capsys)["changed"] is False


def test_missing_group_fails_naming_the_field(aws, capsys):
    result = run({"name": "nope"}, capsys)
    assert result["failed"] is True
    assert result["msg"] == "name: Auto Scaling group 'nope' does not exist in this region"


def test_spot_launch_template_is_refused_before_any_write(aws, capsys):
    make_group(aws, template_data={"InstanceMarketOptions": {"MarketType": "spot"}})
    result = run({"name": "web-standby", "min_size": 1}, capsys)
    assert result["failed"] is True
    assert "launches Spot instances" in result["msg"]
    assert pool_of(aws) is None


def test_spot_share_of_mixed_instances_policy_is_refused(aws, capsys):
    policy = {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": "web-standby"},
            "Overrides": [{"InstanceType": "m5.large"}],
        },
        "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 0},
    }
    make_group(aws, MixedInstancesPolicy=policy)
    result = run({"name": "web-standby"}, capsys)
    assert result["failed"] is True
    assert "100% of the capacity above the On-Demand base as Spot" in result["msg"]
    assert pool_of(aws) is None


def test_hibernated_needs_hibernation_in_the_template(aws, capsys):
    make_group(aws)
    result = run({"name": "web-standby", "pool_state": "hibernated"}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("pool_state: 'hibernated' needs instances that can hibernate")
    assert pool_of(aws) is None


def test_hibernated_pool_on_hibernating_template(aws, capsys):
    make_group(aws, template_data={"HibernationOptions": {"Configured": True}})
    assert run({"name": "web-standby", "pool_state": "hibernated"}, capsys)["changed"] is True
    assert pool_of(aws)["PoolState"] == "Hibernated"


def test_min_size_above_prepared_capacity_fails_before_calling_aws(capsys):
    # No AWS mock here: any API call would fail differently.
    result = run({"name": "web-standby", "min_size": 5, "max_group_prepared_capacity": 2}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("min_size: 5 exceeds max_group_prepared_capacity (2)")
