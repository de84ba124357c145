"""Capacity rebalance in the AWS emulator: UpdateAutoScalingGroup stores it, DescribeAutoScalingGroups returns it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotmax_world.aws import AwsEmulator

AMI = "ami-12c6146b"

pytestmark = pytest.mark.usefixtures("fresh_aws")


def make_groups(aws: AwsEmulator, asg: Any, **names: bool | None) -> None:
    aws.client("ec2").create_launch_template(
        LaunchTemplateName="app-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    for name, rebalance in names.items():
        extra = {} if rebalance is None else {"CapacityRebalance": rebalance}
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=2,
            AvailabilityZones=["us-east-1a"],
            LaunchTemplate={"LaunchTemplateName": "app-lt"},
            **extra,
        )


def rebalance(asg: Any) -> dict[str, Any]:
    groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    return {group["AutoScalingGroupName"]: group.get("CapacityRebalance") for group in groups}


def test_describe_returns_false_by_default_and_the_create_value(aws: AwsEmulator, asg: Any) -> None:
    make_groups(aws, asg, plain=None, off=False, on=True)
    assert rebalance(asg) == {"plain": False, "off": False, "on": True}


def test_update_turns_capacity_rebalance_on_and_off(aws: AwsEmulator, asg: Any) -> None:
    make_groups(aws, asg, app=None, other=True)
    asg.update_auto_scaling_group(AutoScalingGroupName="app", CapacityRebalance=True)
    assert rebalance(asg) == {"app": True, "other": True}
    asg.update_auto_scaling_group(AutoScalingGroupName="other", CapacityRebalance=False)
    assert rebalance(asg) == {"app": True, "other": False}


def test_update_without_the_parameter_keeps_it(aws: AwsEmulator, asg: Any) -> None:
    make_groups(aws, asg, app=True)
    asg.update_auto_scaling_group(AutoScalingGroupName="app", MaxSize=3)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app"])["AutoScalingGroups"][0]
    assert (group["MaxSize"], group["CapacityRebalance"]) == (3, True)


def test_update_of_a_missing_group_fails_and_creates_nothing(asg: Any) -> None:
    with pytest.raises(ClientError) as raised:
        asg.update_auto_scaling_group(AutoScalingGroupName="ghost", CapacityRebalance=True)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert rebalance(asg) == {}
