"""The AWS emulator's server and test controls: clock, reset, throttling (driven through boto3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from botocore.exceptions import ClientError

from spotmax_world.aws import AwsEmulator, control

pytestmark = pytest.mark.usefixtures("fresh_aws")


def test_serves_moto_on_loopback(aws: AwsEmulator) -> None:
    assert aws.url == f"http://127.0.0.1:{aws.port}"
    identity = aws.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"
    zones = aws.client("ec2").describe_availability_zones()["AvailabilityZones"]
    assert "us-east-1a" in {z["ZoneName"] for z in zones}


def test_clock_control_moves_virtual_time(aws: AwsEmulator) -> None:
    status, before = control(aws.url, "GET", "clock")
    assert status == 200
    assert before["offset_seconds"] == 0
    status, after = control(aws.url, "POST", "clock", {"advance_seconds": 7200})
    assert status == 200
    assert after["offset_seconds"] == 7200
    moved = datetime.fromisoformat(after["now"]) - datetime.fromisoformat(before["now"])
    assert timedelta(hours=2) <= moved < timedelta(hours=2, minutes=1)


def test_launch_time_follows_virtual_clock(aws: AwsEmulator) -> None:
    aws.advance_clock(86400)
    ec2 = aws.client("ec2")
    reservation = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    launched = reservation["Instances"][0]["LaunchTime"].replace(tzinfo=UTC)
    assert launched - datetime.now(UTC) > timedelta(hours=23)


def test_control_errors(aws: AwsEmulator) -> None:
    assert control(aws.url, "POST", "clock", {"advance_seconds": -1})[0] == 400
    assert control(aws.url, "POST", "clock", {"advance_seconds": "soon"})[0] == 400
    assert control(aws.url, "GET", "nowhere")[0] == 404
    assert control(aws.url, "DELETE", "clock")[0] == 405
    assert control(aws.url, "PUT", "faults/throttle", {"actions": ["X"]})[0] == 400
    assert control(aws.url, "PUT", "faults/spot-capacity", {"zones": "us-east-1a"})[0] == 400


def test_reset_clears_resources_faults_and_clock(aws: AwsEmulator) -> None:
    aws.client("sqs").create_queue(QueueName="leftover")
    control(aws.url, "POST", "clock", {"advance_seconds": 60})
    control(aws.url, "PUT", "faults/spot-capacity", {"instance_types": ["m5.large"], "zones": []})
    control(aws.url, "PUT", "faults/throttle", {"service": "ec2", "count": 5})
    assert control(aws.url, "POST", "reset")[0] == 200
    assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
    assert control(aws.url, "GET", "clock")[1]["offset_seconds"] == 0
    assert control(aws.url, "GET", "faults")[1] == {"spot_capacity": None, "throttle": []}


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_throttles_autoscaling_actions_n_times(aws: AwsEmulator) -> None:
    status, faults = control(
        aws.url,
        "PUT",
        "faults/throttle",
        {"service": "autoscaling", "actions": ["DescribeAutoScalingGroups"], "count": 2},
    )
    assert status == 200
    assert faults["throttle"] == [{"service": "autoscaling", "actions": ["DescribeAutoScalingGroups"], "count": 2}]
    autoscaling = aws.client("autoscaling", attempts=1)
    assert autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="none")["LifecycleHooks"] == []
    for _attempt in range(2):
        with pytest.raises(ClientError) as exc:
            autoscaling.describe_auto_scaling_groups()
        assert _error(exc) == (400, "Throttling", "Rate exceeded")
    assert autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_throttles_ec2_with_request_limit_exceeded(aws: AwsEmulator) -> None:
    aws.set_throttle("ec2", count=1)
    ec2 = aws.client("ec2", attempts=1)
    with pytest.raises(ClientError) as exc:
        ec2.describe_instances()
    assert _error(exc) == (503, "RequestLimitExceeded", "Request limit exceeded.")
    assert ec2.describe_instances()["Reservations"] == []


def test_throttles_json_protocol_services(aws: AwsEmulator) -> None:
    sqs = aws.client("sqs", attempts=1)
    sqs.create_queue(QueueName="q")
    aws.set_throttle("sqs", ["ListQueues"], 1)
    with pytest.raises(ClientError) as exc:
        sqs.list_queues()
    assert _error(exc)[:2] == (400, "ThrottlingException")
    assert len(sqs.list_queues()["QueueUrls"]) == 1


def test_botocore_retries_through_a_short_throttle(aws: AwsEmulator) -> None:
    aws.set_throttle("autoscaling", ["DescribeAutoScalingGroups"], 1)
    reply = aws.client("autoscaling", attempts=3).describe_auto_scaling_groups()
    assert reply["ResponseMetadata"]["RetryAttempts"] == 1
    assert control(aws.url, "DELETE", "faults/throttle")[1]["throttle"] == []


def test_disable_metrics_collection(aws: AwsEmulator) -> None:
    autoscaling = aws.client("autoscaling")
    ec2 = aws.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="metrics", LaunchTemplateData={"ImageId": "ami-12345678"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="metrics",
        LaunchTemplate={"LaunchTemplateName": "metrics"},
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=["us-east-1a"],
    )
    autoscaling.enable_metrics_collection(
        AutoScalingGroupName="metrics", Metrics=["GroupInServiceInstances", "GroupMaxSize"], Granularity="1Minute"
    )
    autoscaling.disable_metrics_collection(AutoScalingGroupName="metrics", Metrics=["GroupMaxSize"])
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["metrics"])["AutoScalingGroups"][0]
    assert [m["Metric"] for m in group["EnabledMetrics"]] == ["GroupInServiceInstances"]
    autoscaling.disable_metrics_collection(AutoScalingGroupName="metrics")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["metrics"])["AutoScalingGroups"][0]
    assert group["EnabledMetrics"] == []


def test_launch_template_tags_stay_off_its_data(aws: AwsEmulator) -> None:
    ec2 = aws.client("ec2")
    ec2.create_launch_template(
        LaunchTemplateName="tagged",
        LaunchTemplateData={
            "ImageId": "ami-12345678",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "platform"}]}],
    )
    template = ec2.describe_launch_templates(LaunchTemplateNames=["tagged"])["LaunchTemplates"][0]
    assert template["Tags"] == [{"Key": "team", "Value": "platform"}]
    data = ec2.describe_launch_template_versions(LaunchTemplateName="tagged")["LaunchTemplateVersions"][0]
    assert data["LaunchTemplateData"]["TagSpecifications"] == [
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}
    ]


def test_group_tags_are_listed_sorted_by_key(aws: AwsEmulator) -> None:
    autoscaling = aws.client("autoscaling")
    aws.client("ec2").create_launch_template(LaunchTemplateName="tags", LaunchTemplateData={"ImageId": "ami-12345678"})
    tag = {"ResourceId": "tags", "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="tags",
        LaunchTemplate={"LaunchTemplateName": "tags"},
        MinSize=0,
        MaxSize=1,
        AvailabilityZones=["us-east-1a"],
        Tags=[{**tag, "Key": "zone", "Value": "1"}, {**tag, "Key": "app", "Value": "2"}],
    )
    autoscaling.create_or_update_tags(Tags=[{**tag, "Key": "middle", "Value": "3"}])
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["tags"])["AutoScalingGroups"][0]
    assert [t["Key"] for t in group["Tags"]] == ["app", "middle", "zone"]


def test_counts_api_calls_by_service_and_action(aws: AwsEmulator) -> None:
    asg = aws.client("autoscaling")
    asg.describe_auto_scaling_groups()
    asg.describe_auto_scaling_groups()
    aws.client("sqs").list_queues()
    status, counts = control(aws.url, "GET", "requests")
    assert status == 200
    assert counts["autoscaling:DescribeAutoScalingGroups"] == 2
    assert counts["sqs:ListQueues"] == 1
    assert "requests" not in "".join(counts)  # controls are not API calls
    status, cleared = control(aws.url, "DELETE", "requests")
    assert (status, cleared) == (200, {})
    assert aws.requests() == {}


def test_date_header_follows_virtual_clock(aws: AwsEmulator) -> None:
    asg = aws.client("autoscaling", attempts=1)
    aws.advance_clock(7200)
    reply = asg.describe_auto_scaling_groups()
    served = parsedate_to_datetime(reply["ResponseMetadata"]["HTTPHeaders"]["date"])
    assert abs((served - datetime.now(UTC)).total_seconds() - 7200) < 5
