"""Lifecycle hooks in the AWS emulator: waits, completion, heartbeats, timeouts, notifications."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from spotmax_world.aws import AwsEmulator, control

AMI = "ami-12c6146b"
ZONES = ["us-east-1a", "us-east-1b"]
ROLE = "arn:aws:iam::123456789012:role/asg-notify"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
# The keys of /work/shared/reference/events/asg-terminate-lifecycle-action.json
EVENT_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
DETAIL_KEYS = {
    "LifecycleActionToken",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "EC2InstanceId",
    "LifecycleTransition",
    "Origin",
    "Destination",
}


pytestmark = pytest.mark.usefixtures("fresh_aws")


def make_group(aws: AwsEmulator, desired: int = 2, hooks: list[dict[str, Any]] | None = None) -> None:
    aws.client("ec2").create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web",
        MinSize=0,
        MaxSize=5,
        DesiredCapacity=desired,
        AvailabilityZones=ZONES,
        LaunchTemplate={"LaunchTemplateName": "web-lt"},
        LifecycleHookSpecificationList=hooks or [],
    )


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Everything waiting in the queue (bounded: a few polls without long-polling)."""
    bodies: list[dict[str, Any]] = []
    for _poll in range(5):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            break
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def states(asg: Any) -> dict[str, str]:
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}


def ec2_state(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def put_terminate_hook(asg: Any, target: str | None = None, **extra: Any) -> None:
    params: dict[str, Any] = {
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": "web",
        "LifecycleTransition": TERMINATING,
        "HeartbeatTimeout": 300,
        "DefaultResult": "CONTINUE",
        **extra,
    }
    if target:
        params.update(NotificationTargetARN=target, RoleARN=ROLE)
    asg.put_lifecycle_hook(**params)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_scale_in_waits_for_complete_lifecycle_action(aws: AwsEmulator, asg: Any, ec2: Any, sqs: Any) -> None:
    make_group(aws)
    hook_url, hook_arn = queue(sqs, "hooks")
    events_url, events_arn = queue(sqs, "events")
    rules = aws.client("events")
    rules.put_rule(
        Name="lifecycle",
        EventPattern=json.dumps(
            {"source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"]}
        ),
    )
    rules.put_targets(Rule="lifecycle", Targets=[{"Id": "q", "Arn": events_arn}])
    put_terminate_hook(asg, hook_arn, NotificationMetadata="drain-me")

    [test] = receive(sqs, hook_url)
    assert test["Event"] == "autoscaling:TEST_NOTIFICATION"
    assert set(test) == {
        "AccountId",
        "RequestId",
        "AutoScalingGroupARN",
        "AutoScalingGroupName",
        "Service",
        "Event",
        "Time",
    }
    assert (test["AutoScalingGroupName"], test["Service"]) == ("web", "AWS Auto Scaling")

    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=1)
    waiting = [i for i, s in states(asg).items() if s == "Terminating:Wait"]
    assert len(waiting) == 1
    assert sorted(states(asg).values()) == ["InService", "Terminating:Wait"]
    assert ec2_state(ec2, waiting[0]) == "running"

    [message] = receive(sqs, hook_url)
    assert set(message) == {
        "Origin", "Destination", "LifecycleHookName", "AccountId", "RequestId", "LifecycleTransition",
        "AutoScalingGroupName", "Service", "Time", "EC2InstanceId", "LifecycleActionToken", "NotificationMetadata",
    }  # fmt: skip
    assert message["EC2InstanceId"] == waiting[0]
    assert (message["Origin"], message["Destination"]) == ("AutoScalingGroup", "EC2")
    assert (message["LifecycleTransition"], message["NotificationMetadata"]) == (TERMINATING, "drain-me")
    assert message["Time"].endswith("Z")

    [event] = receive(sqs, events_url)
    assert EVENT_KEYS <= set(event)
    assert (event["source"], event["detail-type"]) == ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action")
    assert event["resources"][0].endswith(":autoScalingGroupName/web")
    assert set(event["detail"]) == DETAIL_KEYS | {"NotificationMetadata"}
    assert event["detail"]["LifecycleActionToken"] == message["LifecycleActionToken"]

    asg.complete_lifecycle_action(
        LifecycleHookName="drain",
        AutoScalingGroupName="web",
        LifecycleActionToken=message["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert list(states(asg).values()) == ["InService"]
    assert waiting[0] not in states(asg)
    assert ec2_state(ec2, waiting[0]) == "terminated"
    rules.put_rule(Name="done", EventPattern=json.dumps({"detail-type": ["EC2 Instance Terminate Successful"]}))
    rules.put_targets(Rule="done", Targets=[{"Id": "q", "Arn": events_arn}])
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    [second] = receive(sqs, hook_url)
    asg.complete_lifecycle_action(
        LifecycleHookName="drain",
        AutoScalingGroupName="web",
        LifecycleActionToken=second["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    done = [e for e in receive(sqs, events_url) if e["detail-type"] == "EC2 Instance Terminate Successful"]
    assert [e["detail"]["EC2InstanceId"] for e in done] == [second["EC2InstanceId"]]
    assert (done[0]["detail"]["Origin"], done[0]["detail"]["Destination"]) == ("AutoScalingGroup", "EC2")
    activity = asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"][1]
    assert activity["Description"] == f"Terminating EC2 instance: {waiting[0]}"
    assert activity["StatusCode"] == "Successful"
    assert activity["ActivityId"] == message["RequestId"]


def test_complete_by_instance_id_with_abandon_still_terminates(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws)
    put_terminate_hook(asg)
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    waiting = sorted(states(asg))
    assert set(states(asg).values()) == {"Terminating:Wait"}
    for instance_id in waiting:
        asg.complete_lifecycle_action(
            LifecycleHookName="drain",
            AutoScalingGroupName="web",
            InstanceId=instance_id,
            LifecycleActionResult="ABANDON",
        )
    assert states(asg) == {}
    assert {ec2_state(ec2, i) for i in waiting} == {"terminated"}


def test_lifecycle_action_errors(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=1)
    put_terminate_hook(asg)
    token = "0b1c2d3e-0000-4000-8000-000000000000"
    with pytest.raises(ClientError) as exc:
        asg.complete_lifecycle_action(
            LifecycleHookName="drain",
            AutoScalingGroupName="web",
            LifecycleActionToken=token,
            LifecycleActionResult="CONTINUE",
        )
    assert error_of(exc) == ("ValidationError", f"No active Lifecycle Action found with token {token}")
    [instance_id] = states(asg)
    with pytest.raises(ClientError) as exc:
        asg.record_lifecycle_action_heartbeat(
            LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=instance_id
        )
    assert error_of(exc) == ("ValidationError", f"No active Lifecycle Action found with instance ID {instance_id}")
    asg.terminate_instance_in_auto_scaling_group(InstanceId=instance_id, ShouldDecrementDesiredCapacity=True)
    asg.complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=instance_id, LifecycleActionResult="CONTINUE"
    )
    with pytest.raises(ClientError) as exc:
        asg.complete_lifecycle_action(
            LifecycleHookName="drain",
            AutoScalingGroupName="web",
            InstanceId=instance_id,
            LifecycleActionResult="CONTINUE",
        )
    assert error_of(exc)[0] == "ValidationError"


def test_heartbeat_timeout_applies_default_result_on_virtual_clock(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws, desired=1)
    put_terminate_hook(asg, HeartbeatTimeout=300, DefaultResult="ABANDON")
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    [instance_id] = states(asg)
    aws.advance_clock(200)
    assert states(asg) == {instance_id: "Terminating:Wait"}
    asg.record_lifecycle_action_heartbeat(LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=instance_id)
    control(aws.url, "POST", "clock", {"advance_seconds": 200})
    assert states(asg) == {instance_id: "Terminating:Wait"}, "a heartbeat restarts the timeout"
    control(aws.url, "POST", "clock", {"advance_seconds": 101})
    assert states(asg) == {}
    assert ec2_state(ec2, instance_id) == "terminated"


def test_global_timeout_caps_heartbeats(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=1)
    put_terminate_hook(asg, HeartbeatTimeout=7200)
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"][0]["GlobalTimeout"] == 172800
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    [instance_id] = states(asg)
    for _step in range(24):  # 24 x 7000 s = 168000 s, heartbeating all along
        aws.advance_clock(7000)
        asg.record_lifecycle_action_heartbeat(
            LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=instance_id
        )
    assert states(asg) == {instance_id: "Terminating:Wait"}
    aws.advance_clock(4801)  # past 48 h although the last heartbeat was 4801 s ago
    assert states(asg) == {}


def test_terminate_instance_in_group_waits_and_replaces(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws)
    put_terminate_hook(asg)
    victim = sorted(states(asg))[0]
    reply = asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    assert reply["Activity"]["Description"] == f"Terminating EC2 instance: {victim}"
    assert reply["Activity"]["StatusCode"] == "InProgress"
    assert reply["Activity"]["Cause"].endswith(
        f"instance {victim} was taken out of service in response to a user request."
    )
    current = states(asg)
    assert current[victim] == "Terminating:Wait"
    assert sorted(current.values()) == ["InService", "InService", "Terminating:Wait"]
    assert ec2_state(ec2, victim) == "running"
    with pytest.raises(ClientError) as exc:
        asg.terminate_instance_in_auto_scaling_group(
            InstanceId="i-0000000000000000f", ShouldDecrementDesiredCapacity=True
        )
    assert error_of(exc)[0] == "ValidationError"


def test_ec2_terminated_member_is_replaced_through_the_hook(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws)
    put_terminate_hook(asg)
    victim = sorted(states(asg))[0]
    ec2.terminate_instances(InstanceIds=[victim])
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    by_id = {i["InstanceId"]: i for i in group["Instances"]}
    assert (by_id[victim]["LifecycleState"], by_id[victim]["HealthStatus"]) == ("Terminating:Wait", "Unhealthy")
    assert sum(i["LifecycleState"] == "InService" for i in group["Instances"]) == 2
    assert group["DesiredCapacity"] == 2


def test_launch_hook_holds_pending_wait(aws: AwsEmulator, asg: Any, ec2: Any, sqs: Any) -> None:
    events_url, events_arn = queue(sqs, "launch-events")
    rules = aws.client("events")
    rules.put_rule(Name="launch", EventPattern=json.dumps({"detail-type": ["EC2 Instance-launch Lifecycle Action"]}))
    rules.put_targets(Rule="launch", Targets=[{"Id": "q", "Arn": events_arn}])
    make_group(
        aws,
        hooks=[{"LifecycleHookName": "boot", "LifecycleTransition": LAUNCHING, "HeartbeatTimeout": 600}],
    )
    assert set(states(asg).values()) == {"Pending:Wait"}
    first, second = sorted(states(asg))
    launch_events = receive(sqs, events_url)
    assert {e["detail"]["EC2InstanceId"] for e in launch_events} == {first, second}
    assert {(e["detail"]["Origin"], e["detail"]["Destination"]) for e in launch_events} == {("EC2", "AutoScalingGroup")}
    asg.complete_lifecycle_action(
        LifecycleHookName="boot", AutoScalingGroupName="web", InstanceId=first, LifecycleActionResult="CONTINUE"
    )
    asg.complete_lifecycle_action(
        LifecycleHookName="boot", AutoScalingGroupName="web", InstanceId=second, LifecycleActionResult="ABANDON"
    )
    current = states(asg)
    assert current[first] == "InService"
    assert second not in current
    assert sorted(current.values()) == ["InService", "Pending:Wait"], "the abandoned launch is replaced"
    assert ec2_state(ec2, second) == "terminated"
    cancelled = [
        a
        for a in asg.describe_scaling_activities(AutoScalingGroupName="web")["Activities"]
        if second in a["Description"]
    ]
    assert cancelled[0]["StatusCode"] == "Cancelled"
    assert "Lifecycle Action Completed with ABANDON Result" in cancelled[0]["StatusMessage"]


def test_put_lifecycle_hook_tests_the_notification_target(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=0)
    missing = "arn:aws:sqs:us-east-1:123456789012:no-such-queue"
    with pytest.raises(ClientError) as exc:
        put_terminate_hook(asg, missing)
    assert error_of(exc) == (
        "ValidationError",
        f"Unable to publish test message to notification target {missing} using IAM role {ROLE}. "
        "Please check your target and role configuration and try to put lifecycle hook again.",
    )


def test_describe_lifecycle_hooks_and_partial_update(aws: AwsEmulator, asg: Any, sqs: Any) -> None:
    make_group(aws, desired=0)
    arn = queue(sqs, "hooks")[1]
    put_terminate_hook(asg, arn, NotificationMetadata="meta", HeartbeatTimeout=120)
    asg.put_lifecycle_hook(LifecycleHookName="drain", AutoScalingGroupName="web", HeartbeatTimeout=900)
    [hook] = asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"]
    assert hook == {
        "LifecycleHookName": "drain",
        "AutoScalingGroupName": "web",
        "LifecycleTransition": TERMINATING,
        "NotificationTargetARN": arn,
        "RoleARN": ROLE,
        "NotificationMetadata": "meta",
        "HeartbeatTimeout": 900,
        "GlobalTimeout": 90000,
        "DefaultResult": "CONTINUE",
    }


def test_deleting_the_hook_releases_waiting_instances(aws: AwsEmulator, asg: Any) -> None:
    make_group(aws, desired=1)
    put_terminate_hook(asg)
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    assert set(states(asg).values()) == {"Terminating:Wait"}
    asg.delete_lifecycle_hook(LifecycleHookName="drain", AutoScalingGroupName="web")
    assert states(asg) == {}


def test_delete_group_needs_force_while_instances_remain(aws: AwsEmulator, asg: Any, ec2: Any) -> None:
    make_group(aws)
    put_terminate_hook(asg)
    with pytest.raises(ClientError) as exc:
        asg.delete_auto_scaling_group(AutoScalingGroupName="web")
    assert error_of(exc)[0] == "ResourceInUse"
    members = sorted(states(asg))
    asg.delete_auto_scaling_group(AutoScalingGroupName="web", ForceDelete=True)
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="web")["LifecycleHooks"] == []
    assert {ec2_state(ec2, i) for i in members} == {"terminated"}


def test_instance_scaled_in_while_launching_drops_its_launch_action(aws: AwsEmulator, asg: Any) -> None:
    make_group(
        aws,
        desired=1,
        hooks=[
            {"LifecycleHookName": "boot", "LifecycleTransition": LAUNCHING},
            {"LifecycleHookName": "drain", "LifecycleTransition": TERMINATING},
        ],
    )
    [(instance_id, state)] = states(asg).items()
    assert state == "Pending:Wait"
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    assert states(asg) == {instance_id: "Terminating:Wait"}
    with pytest.raises(ClientError) as exc:
        asg.complete_lifecycle_action(
            LifecycleHookName="boot",
            AutoScalingGroupName="web",
            InstanceId=instance_id,
            LifecycleActionResult="CONTINUE",
        )
    assert error_of(exc)[0] == "ValidationError"
    asg.complete_lifecycle_action(
        LifecycleHookName="drain", AutoScalingGroupName="web", InstanceId=instance_id, LifecycleActionResult="CONTINUE"
    )
    assert states(asg) == {}


def test_long_poll_receives_a_notification_sent_while_it_waits(aws: AwsEmulator, asg: Any, sqs: Any) -> None:
    make_group(aws, desired=1)
    url, arn = queue(sqs, "hooks")
    put_terminate_hook(asg, arn)
    receive(sqs, url)  # the test notification
    got: list[dict[str, Any]] = []
    poller_sqs = aws.client("sqs", attempts=1)

    def poll() -> None:
        reply = poller_sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)
        got.extend(json.loads(m["Body"]) for m in reply.get("Messages", []))

    poller = threading.Thread(target=poll)
    started = time.monotonic()
    poller.start()
    time.sleep(0.3)  # let the long poll begin; the scale-in must not wait for it to end
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)
    poller.join(timeout=10)
    assert not poller.is_alive()
    assert [m["LifecycleTransition"] for m in got] == [TERMINATING]
    assert time.monotonic() - started < 4.5
