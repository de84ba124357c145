"""Warm pools in the AWS emulator: sizing, pool states, scale-out from the pool, reuse, deletion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotmax_world.aws import AwsEmulator

AMI = "ami-12c6146b"
ZONES = ["us-east-1a", "us-east-1b"]


pytestmark = pytest.mark.usefixtures("fresh_aws")


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsEmulator]:
    # No background ticks: PendingDelete and other in-between states stay until the test ticks.
    with AwsEmulator(tick_interval=0) as emulator:
        yield emulator


def make_group(aws: AwsEmulator, desired: int = 1, template: dict[str, Any] | None = None, **group: Any) -> None:
    data = {"ImageId": AMI, "InstanceType": "t3.micro", **(template or {})}
    aws.client("ec2").create_launch_template(LaunchTemplateName="app-lt", LaunchTemplateData=data)
    params: dict[str, Any] = {
        "AutoScalingGroupName": "app",
        "MinSize": 0,
        "MaxSize": 5,
        "DesiredCapacity": desired,
        "AvailabilityZones": ZONES,
        "LaunchTemplate": {"LaunchTemplateName": "app-lt"},
        **group,
    }
    if "MixedInstancesPolicy" in group or "LaunchConfigurationName" in group:
        del params["LaunchTemplate"]
    aws.client("autoscaling").create_auto_scaling_group(**params)


def pool(asg: Any) -> dict[str, Any]:
    reply = asg.describe_warm_pool(AutoScalingGroupName="app")
    reply.pop("ResponseMetadata")
    return dict(reply)


def group(asg: Any) -> dict[str, Any]:
    return dict(asg.describe_auto_scaling_groups(AutoScalingGroupNames=["app"])["AutoScalingGroups"][0])


def ec2_states(ec2: Any, ids: list[str]) -> set[str]:
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["State"]["Name"] for r in reservations for i in r["Instances"]}


def test_default_size_is_max_size_minus_desired(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=1)
    asg.put_warm_pool(AutoScalingGroupName="app")
    reply = pool(asg)
    assert reply["WarmPoolConfiguration"] == {"MinSize": 0, "PoolState": "Stopped"}
    instances = reply["Instances"]
    assert len(instances) == 4
    for instance in instances:
        assert set(instance) >= {
            "InstanceId",
            "InstanceType",
            "AvailabilityZone",
            "LifecycleState",
            "HealthStatus",
            "LaunchTemplate",
        }
        assert (instance["LifecycleState"], instance["HealthStatus"]) == ("Warmed:Stopped", "Healthy")
        assert instance["InstanceType"] == "t3.micro"
        assert instance["LaunchTemplate"]["LaunchTemplateName"] == "app-lt"
    assert {i["AvailabilityZone"] for i in instances} == set(ZONES)
    assert ec2_states(ec2, [i["InstanceId"] for i in instances]) == {"stopped"}
    described = group(asg)
    assert described["WarmPoolConfiguration"] == {"MinSize": 0, "PoolState": "Stopped"}
    assert described["WarmPoolSize"] == 4
    assert len(described["Instances"]) == 1


def test_max_group_prepared_capacity_and_min_size(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=1)
    asg.put_warm_pool(AutoScalingGroupName="app", MaxGroupPreparedCapacity=3)
    assert len(pool(asg)["Instances"]) == 2
    asg.put_warm_pool(AutoScalingGroupName="app", MaxGroupPreparedCapacity=3, MinSize=3)
    assert len(pool(asg)["Instances"]) == 3
    assert pool(asg)["WarmPoolConfiguration"]["MaxGroupPreparedCapacity"] == 3
    asg.put_warm_pool(AutoScalingGroupName="app", MaxGroupPreparedCapacity=2)
    assert len(pool(asg)["Instances"]) == 1, "a larger pool than its target shrinks"


@pytest.mark.parametrize(
    ("pool_state", "template", "lifecycle_state", "ec2_state"),
    [
        ("Running", {}, "Warmed:Running", "running"),
        ("Hibernated", {"HibernationOptions": {"Configured": True}}, "Warmed:Hibernated", "stopped"),
        ("Hibernated", {}, "Warmed:Stopped", "stopped"),
    ],
)
def test_pool_states(
    aws: AwsEmulator,
    asg: Any,
    ec2: Any,
    pool_state: str,
    template: dict[str, Any],
    lifecycle_state: str,
    ec2_state: str,
) -> None:
    make_group(aws, desired=3, template=template)
    asg.put_warm_pool(AutoScalingGroupName="app", PoolState=pool_state)
    instances = pool(asg)["Instances"]
    assert [i["LifecycleState"] for i in instances] == [lifecycle_state, lifecycle_state]
    assert ec2_states(ec2, [i["InstanceId"] for i in instances]) == {ec2_state}


def test_scale_out_takes_warm_instances_first_then_refills(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=1)
    asg.put_warm_pool(AutoScalingGroupName="app", MinSize=3)
    warm = {i["InstanceId"] for i in pool(asg)["Instances"]}
    assert len(warm) == 4
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=3)
    members = {i["InstanceId"]: i["LifecycleState"] for i in group(asg)["Instances"]}
    from_pool = set(members) & warm
    assert len(from_pool) == 2
    assert set(members.values()) == {"InService"}
    assert ec2_states(ec2, sorted(from_pool)) == {"running"}
    refilled = {i["InstanceId"] for i in pool(asg)["Instances"]}
    assert len(refilled) == 3, "MinSize keeps three warm instances"
    assert len(refilled - warm) == 1, "one new instance refills the pool"
    descriptions = [a["Description"] for a in asg.describe_scaling_activities(AutoScalingGroupName="app")["Activities"]]
    assert sum(d.startswith("Launching a new EC2 instance from warm pool: ") for d in descriptions) == 2


def test_reuse_on_scale_in_returns_instances_to_the_pool(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=3)
    asg.put_warm_pool(AutoScalingGroupName="app", InstanceReusePolicy={"ReuseOnScaleIn": True})
    assert pool(asg)["WarmPoolConfiguration"]["InstanceReusePolicy"] == {"ReuseOnScaleIn": True}
    members = {i["InstanceId"] for i in group(asg)["Instances"]}
    asg.set_desired_capacity(AutoScalingGroupName="app", DesiredCapacity=1)
    returned = members - {i["InstanceId"] for i in group(asg)["Instances"]}
    assert len(returned) == 2
    warm = {i["InstanceId"]: i["LifecycleState"] for i in pool(asg)["Instances"]}
    assert returned <= set(warm)
    assert {warm[i] for i in returned} == {"Warmed:Stopped"}
    assert ec2_states(ec2, sorted(returned)) == {"stopped"}
    assert len(warm) == 4


def test_delete_warm_pool_is_pending_until_the_pool_is_empty(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=3)
    asg.put_warm_pool(AutoScalingGroupName="app")
    warm = [i["InstanceId"] for i in pool(asg)["Instances"]]
    asg.delete_warm_pool(AutoScalingGroupName="app")
    pending = pool(asg)
    assert pending["WarmPoolConfiguration"]["Status"] == "PendingDelete"
    assert {i["LifecycleState"] for i in pending["Instances"]} == {"Warmed:Terminating"}
    assert group(asg)["WarmPoolConfiguration"]["Status"] == "PendingDelete"
    aws.tick()
    assert pool(asg) == {"Instances": []}
    assert "WarmPoolConfiguration" not in group(asg)
    assert ec2_states(ec2, warm) == {"terminated"}


def test_force_delete_and_errors(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=3)
    asg.put_warm_pool(AutoScalingGroupName="app")
    warm = [i["InstanceId"] for i in pool(asg)["Instances"]]
    asg.delete_warm_pool(AutoScalingGroupName="app", ForceDelete=True)
    assert pool(asg) == {"Instances": []}
    assert ec2_states(ec2, warm) == {"terminated"}
    with pytest.raises(ClientError) as exc:
        asg.describe_warm_pool(AutoScalingGroupName="nope")
    assert exc.value.response["Error"]["Code"] == "ValidationError"


def test_ec2_terminated_pool_instance_is_replaced(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=3)
    asg.put_warm_pool(AutoScalingGroupName="app")
    victim = pool(asg)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[victim])
    remaining = {i["InstanceId"] for i in pool(asg)["Instances"]}
    assert victim not in remaining
    assert len(remaining) == 2


def _refusal(asg: Any) -> str:
    with pytest.raises(ClientError) as exc:
        asg.put_warm_pool(AutoScalingGroupName="app")
    assert exc.value.response["Error"]["Code"] == "ValidationError"
    return str(exc.value.response["Error"]["Message"])


def test_refused_for_a_spot_launch_template(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, template={"InstanceMarketOptions": {"MarketType": "spot"}})
    assert "launch template that requests Spot Instances" in _refusal(asg)


def test_refused_for_a_spot_launch_configuration(aws: AwsEmulator, asg: Any) -> None:
    asg.create_launch_configuration(
        LaunchConfigurationName="lc", ImageId=AMI, InstanceType="t3.micro", SpotPrice="0.05"
    )
    make_group(aws, LaunchConfigurationName="lc")
    assert "launch configuration that requests Spot Instances" in _refusal(asg)


def _mixed(percentage: int) -> dict[str, Any]:
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateName": "app-lt"},
            "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "c5.large"}],
        },
        "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": percentage},
    }


def test_refused_for_a_mixed_policy_with_spot(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, MixedInstancesPolicy=_mixed(50))
    assert "mixed instances policy that requests Spot Instances" in _refusal(asg)


def test_allowed_for_an_on_demand_only_mixed_policy(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=1, MixedInstancesPolicy=_mixed(100))
    asg.put_warm_pool(AutoScalingGroupName="app", MaxGroupPreparedCapacity=3)
    instances = pool(asg)["Instances"]
    assert [i["InstanceType"] for i in instances] == ["m5.large", "m5.large"]
