"""Spot in the AWS emulator: mixed instances policies, capacity faults, interruptions, filters."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotmax_world.aws import AwsEmulator, control

AMI = "ami-12c6146b"
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
TYPES = ["m5.large", "c5.large", "r5.large"]
SPOT_FAILURE = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that "
    "matches your request. Launching EC2 instance failed."
)


pytestmark = pytest.mark.usefixtures("fresh_aws")


def mixed_group(aws: AwsEmulator, desired: int, base: int = 1, percentage: int = 25, **distribution: Any) -> None:
    aws.client("ec2").create_launch_template(
        LaunchTemplateName="spot-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web-spot",
        MinSize=0,
        MaxSize=8,
        DesiredCapacity=desired,
        AvailabilityZones=ZONES,
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "spot-lt", "Version": "$Latest"},
                "Overrides": [{"InstanceType": t} for t in TYPES],
            },
            "InstancesDistribution": {
                "OnDemandBaseCapacity": base,
                "OnDemandPercentageAboveBaseCapacity": percentage,
                "SpotAllocationStrategy": "price-capacity-optimized",
                **distribution,
            },
        },
    )


def members(asg: Any) -> list[dict[str, Any]]:
    return list(
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-spot"])["AutoScalingGroups"][0]["Instances"]
    )


def described(ec2: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i for r in reservations for i in r["Instances"]}


def spot_ids(ec2: Any) -> set[str]:
    reply = ec2.describe_instances(Filters=[{"Name": "instance-lifecycle", "Values": ["spot"]}])
    return {i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]}


def test_mixed_policy_splits_and_spreads_spot(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    mixed_group(aws, desired=5)
    group = members(asg)
    assert len(group) == 5
    details = described(ec2, [i["InstanceId"] for i in group])
    spot = [i for i in group if details[i["InstanceId"]].get("InstanceLifecycle") == "spot"]
    on_demand = [i for i in group if "InstanceLifecycle" not in details[i["InstanceId"]]]
    # base 1 + 25 % of the 4 above it (rounded towards On-Demand) = 2 On-Demand, 3 Spot
    assert (len(on_demand), len(spot)) == (2, 3)
    assert {i["InstanceType"] for i in on_demand} == {"m5.large"}, "prioritized On-Demand uses the first override"
    assert sorted(i["InstanceType"] for i in spot) == sorted(TYPES), "Spot spreads over the override types"
    for instance in group:
        assert details[instance["InstanceId"]]["InstanceType"] == instance["InstanceType"]
        assert details[instance["InstanceId"]]["Placement"]["AvailabilityZone"] == instance["AvailabilityZone"]
    assert all(details[i["InstanceId"]]["SpotInstanceRequestId"].startswith("sir-") for i in spot)
    assert sorted(Counter(i["AvailabilityZone"] for i in group).values()) == [1, 2, 2]
    requests = ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    assert {r["InstanceId"] for r in requests} == {i["InstanceId"] for i in spot}
    assert spot_ids(ec2) == {i["InstanceId"] for i in spot}


def test_lowest_price_uses_the_first_spot_pools(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    mixed_group(aws, desired=4, base=0, percentage=0, SpotAllocationStrategy="lowest-price", SpotInstancePools=2)
    group = members(asg)
    assert len(spot_ids(ec2)) == 4
    assert {i["InstanceType"] for i in group} == {"m5.large", "c5.large"}


def test_spot_launch_template_makes_every_instance_spot(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    ec2.create_launch_template(
        LaunchTemplateName="all-spot",
        LaunchTemplateData={
            "ImageId": AMI,
            "InstanceType": "m5.large",
            "InstanceMarketOptions": {"MarketType": "spot"},
        },
    )
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")  # On-Demand, outside the group
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-spot", MinSize=0, MaxSize=4, DesiredCapacity=3, AvailabilityZones=ZONES,
        LaunchTemplate={"LaunchTemplateName": "all-spot"},
    )  # fmt: skip
    ids = {i["InstanceId"] for i in members(asg)}
    assert len(ids) == 3
    assert spot_ids(ec2) == ids
    every = ec2.describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in every) == 4


def _capacity_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_run_instances_fails_for_a_faulted_spot_pool(aws: AwsEmulator, ec2: Any) -> None:
    status, faults = control(
        aws.url, "PUT", "faults/spot-capacity", {"instance_types": ["m5.large"], "zones": ["us-east-1a"]}
    )
    assert status == 200
    assert faults["spot_capacity"] == {"instance_types": ["m5.large"], "zones": ["us-east-1a"]}
    spot = {"MarketType": "spot"}
    with pytest.raises(ClientError) as exc:
        ec2.run_instances(
            ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", InstanceMarketOptions=spot,
            Placement={"AvailabilityZone": "us-east-1a"},
        )  # fmt: skip
    assert _capacity_error(exc) == (
        500, "InsufficientInstanceCapacity", "There is no Spot capacity available that matches your request."
    )  # fmt: skip
    other_zone = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", InstanceMarketOptions=spot,
        Placement={"AvailabilityZone": "us-east-1b"},
    )  # fmt: skip
    assert other_zone["Instances"][0]["InstanceLifecycle"] == "spot"
    on_demand = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", Placement={"AvailabilityZone": "us-east-1a"}
    )
    assert "InstanceLifecycle" not in on_demand["Instances"][0]
    ec2.create_launch_template(
        LaunchTemplateName="lt-spot",
        LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.large", "InstanceMarketOptions": spot},
    )
    with pytest.raises(ClientError) as exc:
        ec2.run_instances(
            MinCount=1,
            MaxCount=1,
            LaunchTemplate={"LaunchTemplateName": "lt-spot"},
            Placement={"AvailabilityZone": "us-east-1a"},
        )
    assert _capacity_error(exc)[1] == "InsufficientInstanceCapacity"
    assert control(aws.url, "DELETE", "faults/spot-capacity")[1]["spot_capacity"] is None


def test_group_launches_spot_in_the_pools_that_have_capacity(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    aws.set_spot_capacity_fault(["m5.large"])
    mixed_group(aws, desired=5, base=0, percentage=0)
    group = members(asg)
    assert len(group) == 5
    assert "m5.large" not in {i["InstanceType"] for i in group}
    assert len(spot_ids(ec2)) == 5


def test_group_without_spot_capacity_records_a_failed_activity_and_recovers(aws: AwsEmulator, asg: Any) -> None:
    url = _queue_for(aws, "EC2 Instance Launch Unsuccessful", source="aws.autoscaling")
    aws.set_spot_capacity_fault()  # every Spot pool
    mixed_group(aws, desired=4, base=1, percentage=0)
    group = members(asg)
    assert len(group) == 1, "only the On-Demand base launched"
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 4

    def failures() -> list[dict[str, Any]]:
        found = asg.describe_scaling_activities(AutoScalingGroupName="web-spot")["Activities"]
        return [a for a in found if a["StatusCode"] == "Failed"]

    [failed] = failures()
    assert failed["StatusMessage"] == SPOT_FAILURE
    assert failed["Description"] == f"Launching a new EC2 instance.  Status Reason: {SPOT_FAILURE}"
    assert failed["Progress"] == 100
    [event] = _events(aws, url)
    assert event["detail"]["StatusCode"] == "Failed"
    assert (event["detail"]["StatusMessage"], event["detail"]["ActivityId"]) == (SPOT_FAILURE, failed["ActivityId"])
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "AutoScalingGroup")
    aws.tick()
    assert len(failures()) == 1, "retries are paced on the virtual clock"
    aws.advance_clock(61)
    assert len(failures()) == 2
    assert len(members(asg)) == 1

    assert control(aws.url, "DELETE", "faults/spot-capacity")[0] == 200
    deadline = time.monotonic() + 5
    while len(members(asg)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)  # the background ticker retries once the fault is gone
    assert len(members(asg)) == 4


def test_update_keeps_the_mixed_policy_and_scale_in_rebalances(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    mixed_group(aws, desired=5)
    asg.update_auto_scaling_group(AutoScalingGroupName="web-spot", DesiredCapacity=2)
    described_group = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert described_group["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandBaseCapacity"] == 1
    remaining = [i["InstanceId"] for i in described_group["Instances"]]
    # at 2: base 1 + 25 % of 1 rounded up = 2 On-Demand, so the Spot instances go first
    assert len(remaining) == 2
    assert not (set(remaining) & spot_ids(ec2))
    asg.update_auto_scaling_group(AutoScalingGroupName="web-spot", DesiredCapacity=6)
    assert len(members(asg)) == 6
    assert len(spot_ids(ec2) & {i["InstanceId"] for i in members(asg)}) == 3


def test_capacity_validation(aws: AwsEmulator, asg: Any) -> None:
    mixed_group(aws, desired=1)
    with pytest.raises(ClientError) as exc:
        asg.set_desired_capacity(AutoScalingGroupName="web-spot", DesiredCapacity=9)
    assert (
        exc.value.response["Error"]["Message"]
        == "New SetDesiredCapacity value 9 is above max value 8 for the AutoScalingGroup."
    )
    with pytest.raises(ClientError) as exc:
        asg.update_auto_scaling_group(AutoScalingGroupName="web-spot", MinSize=3, MaxSize=2)
    assert exc.value.response["Error"]["Code"] == "ValidationError"


def _queue_for(aws: AwsEmulator, detail_type: str, source: str = "aws.ec2") -> str:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="ec2-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = aws.client("events")
    events.put_rule(Name="ec2", EventPattern=json.dumps({"source": [source], "detail-type": [detail_type]}))
    events.put_targets(Rule="ec2", Targets=[{"Id": "q", "Arn": arn}])
    return str(url)


def _events(aws: AwsEmulator, url: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_interruption_warning_then_termination_and_replacement(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    url = _queue_for(aws, "EC2 Spot Instance Interruption Warning")
    mixed_group(aws, desired=2, base=1, percentage=0)
    ids = {i["InstanceId"] for i in members(asg)}
    [spot] = spot_ids(ec2) & ids
    [on_demand] = ids - {spot}
    status, reply = control(aws.url, "POST", "interrupt", {"instance_ids": [spot, on_demand], "notice_seconds": 120})
    assert status == 200
    assert (reply["interrupted"], reply["skipped"]) == ([spot], [on_demand])
    [event] = _events(aws, url)
    zone = described(ec2, [spot])[spot]["Placement"]["AvailabilityZone"]
    assert {k: event[k] for k in ("source", "detail-type", "account", "region", "resources", "detail")} == {
        "source": "aws.ec2",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "account": "123456789012",
        "region": "us-east-1",
        "resources": [f"arn:aws:ec2:{zone}:instance/{spot}"],
        "detail": {"instance-id": spot, "instance-action": "terminate"},
    }
    aws.advance_clock(100)
    assert described(ec2, [spot])[spot]["State"]["Name"] == "running"
    aws.advance_clock(21)
    gone = described(ec2, [spot])[spot]
    assert gone["State"]["Name"] == "terminated"
    assert gone["StateReason"]["Code"] == "Server.SpotInstanceTermination"
    now = {i["InstanceId"]: i for i in members(asg)}
    assert spot not in now
    assert len(now) == 2
    assert len(spot_ids(ec2) & set(now)) == 1, "the group launched a Spot replacement"


def test_rebalance_recommendation_event(aws: AwsEmulator, ec2: Any) -> None:
    url = _queue_for(aws, "EC2 Instance Rebalance Recommendation")
    instance = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", InstanceMarketOptions={"MarketType": "spot"}
    )["Instances"][0]
    reply = aws.rebalance([instance["InstanceId"]])
    assert reply["recommended"] == [instance["InstanceId"]]
    [event] = _events(aws, url)
    assert event["detail"] == {"instance-id": instance["InstanceId"]}
    assert described(ec2, [instance["InstanceId"]])[instance["InstanceId"]]["State"]["Name"] == "running"


def test_subnets_and_weighted_capacity(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for n, zone in enumerate(ZONES[:2])
    }
    ec2.create_launch_template(LaunchTemplateName="weighted", LaunchTemplateData={"ImageId": AMI})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-spot",
        MinSize=0,
        MaxSize=8,
        DesiredCapacity=4,
        VPCZoneIdentifier=",".join(subnets.values()),
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": "weighted"},
                "Overrides": [{"InstanceType": "m5.xlarge", "WeightedCapacity": "2"}],
            },
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 0},
        },
    )
    group = members(asg)
    assert [(i["InstanceType"], i["WeightedCapacity"]) for i in group] == [("m5.xlarge", "2"), ("m5.xlarge", "2")]
    details = described(ec2, [i["InstanceId"] for i in group])
    assert {details[i["InstanceId"]]["SubnetId"] for i in group} == set(subnets.values())
    assert {i["AvailabilityZone"] for i in group} == set(subnets)


def test_request_spot_instances_keeps_one_request_per_instance(aws: AwsEmulator, ec2: Any) -> None:
    ec2.request_spot_instances(
        InstanceCount=2, LaunchSpecification={"ImageId": AMI, "InstanceType": "m5.large"}, SpotPrice="0.1"
    )
    requests = ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
    assert len(requests) == 2
    assert len(spot_ids(ec2)) == 2


def test_a_larger_on_demand_share_launches_at_once_without_spot_capacity(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    aws.set_spot_capacity_fault()
    mixed_group(aws, desired=3, base=0, percentage=0)
    assert members(asg) == []
    policy = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["MixedInstancesPolicy"]
    policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] = 100
    policy["LaunchTemplate"]["LaunchTemplateSpecification"].pop("LaunchTemplateName")  # the id or the name
    asg.update_auto_scaling_group(AutoScalingGroupName="web-spot", MixedInstancesPolicy=policy)
    group = members(asg)
    assert len(group) == 3
    assert not ({i["InstanceId"] for i in group} & spot_ids(ec2))
