"""The source against the test world's SQS: what reaches the rulebook, what stays on the queue."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import sqs_interruptions
from conftest import ROOT, SOURCE_DIR, ack, instances, queue_counts, run_source, sample, source_args

from spotmax_world.aws import AwsEmulator

AMI = "ami-12c6146b"


def make_queue(sqs: Any, name: str, dlq_after: int | None = None) -> str:
    attributes = {}
    if dlq_after is not None:
        dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(dlq_after)})
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def send_all(sqs: Any, url: str, bodies: list[Any]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(n), "MessageBody": b if isinstance(b, str) else json.dumps(b)}
            for n, b in enumerate(bodies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def spot(instance_id: str) -> dict[str, Any]:
    body = sample("spot-interruption-warning")
    body["detail"]["instance-id"] = instance_id
    return body


def bodies_of(sqs: Any, url: str) -> list[str]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return sorted(m["Body"] for m in messages)


def test_every_kind_reaches_the_rulebook_and_bad_messages_go_to_the_dead_letter_queue(
    fresh_aws: AwsEmulator, sqs: Any
) -> None:
    url = make_queue(sqs, "interruptions", dlq_after=2)
    names = [
        "spot-interruption-warning",
        "rebalance-recommendation",
        "asg-terminate-lifecycle-action",
        "instance-state-change",
        "health-scheduled-change",
    ]
    direct = {
        "LifecycleHookName": "drain",
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "AutoScalingGroupName": "web",
        "Service": "AWS Auto Scaling",
        "Time": "2026-11-21T14:02:37.214Z",
        "EC2InstanceId": "i-0000000000000d1ec",
        "LifecycleActionToken": "direct-token",
    }
    test_notification = {
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION",
        "AutoScalingGroupName": "web",
    }
    bad = ["not json at all", json.dumps({"detail-type": "Something Else", "source": "aws.s3", "detail": {}})]
    send_all(sqs, url, [sample(n) for n in names] + [direct, test_notification, *bad])

    def done(events: list[dict[str, Any]]) -> bool:
        return sum(len(e["spotmax"]["events"]) + len(e["spotmax"]["ignored"]) for e in events) >= 7

    batches = run_source(
        source_args(fresh_aws, url, visibility_timeout=1, batch_window=1),
        until=done,
        on_event=lambda event: ack(sqs, url, event),
    )
    events = [e for b in batches for e in b["spotmax"]["events"]]
    assert sorted(e["kind"] for e in events) == sorted(
        [
            "spot_interruption",
            "rebalance",
            "lifecycle_terminate",
            "lifecycle_terminate",
            "state_change",
            "scheduled_change",
        ]
    )
    assert {e["lifecycle"]["token"] for e in events if e["lifecycle"]} == {
        "0befc9ed-7f0a-4c1b-9d3e-11aa22bb33cc",
        "direct-token",
    }
    [ignored] = [i for b in batches for i in b["spotmax"]["ignored"]]
    assert ignored["reason"] == "autoscaling:TEST_NOTIFICATION for web"
    assert {b["spotmax"]["queue_url"] for b in batches} == {url}
    # the bad messages were received but neither emitted nor deleted: redrive moves them to the DLQ
    dlq = make_queue(sqs, "interruptions-dlq")
    deadline = time.monotonic() + 20
    while queue_counts(sqs, dlq)[0] < len(bad) and time.monotonic() < deadline:
        run_source(source_args(fresh_aws, url, visibility_timeout=1, wait_time=0), until=lambda _e: False, timeout=1.5)
    assert queue_counts(sqs, url) == (0, 0)
    assert bodies_of(sqs, dlq) == sorted(bad)


def test_spot_interruption_from_the_world_through_eventbridge(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client = fresh_aws.client("events")
    pattern = {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}
    events_client.put_rule(Name="spot", EventPattern=json.dumps(pattern))
    events_client.put_targets(Rule="spot", Targets=[{"Id": "q", "Arn": arn}])
    ec2 = fresh_aws.client("ec2")
    reservation = ec2.run_instances(
        ImageId=AMI, InstanceType="m5.large", MinCount=3, MaxCount=3, InstanceMarketOptions={"MarketType": "spot"}
    )
    ids = sorted(i["InstanceId"] for i in reservation["Instances"])
    assert sorted(fresh_aws.interrupt(ids)["interrupted"]) == ids

    [batch] = run_source(source_args(fresh_aws, url), until=lambda e: len(instances(e)) >= 3)
    got = batch["spotmax"]["events"]
    assert sorted(e["instance_id"] for e in got) == ids
    assert {e["kind"] for e in got} == {"spot_interruption"}
    for event in got:
        assert event["deadline"] > event["time"]
    assert queue_counts(sqs, url) == (0, 3), "emitted, not acknowledged: hidden, not deleted"


def test_lifecycle_hook_notifying_the_queue_directly(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "hooks")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    asg = fresh_aws.client("autoscaling")
    fresh_aws.client("ec2").create_launch_template(
        LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": AMI, "InstanceType": "t3.micro"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateName": "web-lt", "Version": "$Latest"},
    )
    asg.put_lifecycle_hook(
        AutoScalingGroupName="web",
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        NotificationTargetARN=arn,
        RoleARN="arn:aws:iam::123456789012:role/hooks",
        HeartbeatTimeout=300,
    )
    [instance_id] = [i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]
    asg.set_desired_capacity(AutoScalingGroupName="web", DesiredCapacity=0)

    def done(events: list[dict[str, Any]]) -> bool:
        return bool(instances(events)) and any(b["spotmax"]["ignored"] for b in events)

    batches = run_source(source_args(fresh_aws, url), until=done, on_event=lambda event: ack(sqs, url, event))
    [event] = [e for b in batches for e in b["spotmax"]["events"]]
    assert (event["kind"], event["instance_id"], event["group"]) == ("lifecycle_terminate", instance_id, "web")
    assert [i["reason"] for b in batches for i in b["spotmax"]["ignored"]] == ["autoscaling:TEST_NOTIFICATION for web"]
    # the token the source passed on is the one Auto Scaling waits for
    asg.complete_lifecycle_action(
        AutoScalingGroupName="web",
        LifecycleHookName=event["lifecycle"]["hook_name"],
        LifecycleActionToken=event["lifecycle"]["token"],
        LifecycleActionResult="CONTINUE",
    )
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"] == []
    assert queue_counts(sqs, url) == (0, 0)


def test_batching_200_messages_gives_few_events_with_every_instance_once(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    ids = [f"i-{n:017x}" for n in range(200)]
    send_all(sqs, url, [spot(i) for i in ids])
    batches = run_source(source_args(fresh_aws, url, batch_window=5), until=lambda e: len(instances(e)) >= 200)
    assert sorted(instances(batches)) == ids
    # 20 receives of 10 at least; the emulator's receives are slow (about 2 s with hundreds of messages
    # queued), so the bound leaves room, yet one rulebook event per receive would break it
    assert len(batches) <= 10
    # a smaller batch size splits them
    fresh_aws.reset()
    url = make_queue(sqs, "interruptions")
    send_all(sqs, url, [spot(i) for i in ids])
    batches = run_source(source_args(fresh_aws, url, batch_size=50), until=lambda e: len(instances(e)) >= 200)
    assert sorted(instances(batches)) == ids
    assert len(batches) >= 4
    assert max(len(b["spotmax"]["events"]) for b in batches) <= 50


def test_redelivery_of_an_in_flight_instance_is_not_emitted_twice(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    send_all(sqs, url, [spot("i-00000000000000001")])
    seen: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) == 1:  # EventBridge delivers the same notice again, as another message
            send_all(sqs, url, [spot("i-00000000000000001")])

    batches = run_source(
        source_args(fresh_aws, url), until=lambda e: len(e) >= 2 or len(instances(e)) > 1, timeout=8, on_event=on_event
    )
    assert instances(batches) == ["i-00000000000000001"]
    assert len(batches) == 2
    [duplicate] = batches[1]["spotmax"]["ignored"]
    assert duplicate["reason"].startswith("duplicate of in-flight message")
    ack(sqs, url, batches[1])
    # the duplicate is gone; the first message stays hidden until the playbook acknowledges it
    assert queue_counts(sqs, url) == (0, 1)


def test_unacknowledged_message_comes_back_with_the_same_batch_id(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    send_all(sqs, url, [spot("i-00000000000000001"), spot("i-00000000000000002")])
    args = source_args(fresh_aws, url, visibility_timeout=2, batch_window=1)
    # one run sees the first receive and, once the in-flight entry expired, the redelivery
    batches = run_source(args, until=lambda e: len(instances(e)) >= 4, timeout=15)
    assert sorted(instances(batches)) == ["i-00000000000000001"] * 2 + ["i-00000000000000002"] * 2
    assert len({b["meta"]["uuid"] for b in batches}) == 1
    handles = {e["receipt_handle"] for b in batches for e in b["spotmax"]["events"]}
    assert len(handles) == 4, "each receive has its own receipt handle"
    # a restarted source (empty memory) gives the same batch the same id again
    time.sleep(2.2)
    [restarted] = run_source(args, until=lambda e: len(instances(e)) >= 2)
    assert restarted["meta"]["uuid"] == batches[0]["meta"]["uuid"]


def test_storm_of_500_messages_is_drained_completely(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    ids = [f"i-{n:017x}" for n in range(500)]
    send_all(sqs, url, [spot(i) for i in ids])
    started = time.monotonic()
    batches = run_source(
        source_args(fresh_aws, url, batch_window=1, wait_time=2), until=lambda e: len(instances(e)) >= 500, timeout=240
    )
    assert sorted(instances(batches)) == ids, f"drained in {time.monotonic() - started:.1f} s"
    assert queue_counts(sqs, url) == (0, 500)


def test_source_stops_with_a_clear_error_when_the_queue_does_not_exist(fresh_aws: AwsEmulator) -> None:
    args = {**source_args(fresh_aws, ""), "queue_url": None, "queue_name": "missing"}
    with pytest.raises(Exception, match=r"NonExistentQueue|QueueDoesNotExist"):
        run_source(args, until=lambda _e: False, timeout=5)


def test_invalid_arguments_stop_the_source_naming_the_argument(fresh_aws: AwsEmulator) -> None:
    with pytest.raises(ValueError, match=r"^wait_time: 60 is not allowed"):
        run_source(source_args(fresh_aws, "http://127.0.0.1:1/q", wait_time=60), until=lambda _e: False, timeout=5)


def test_main_harness_prints_the_rulebook_events(fresh_aws: AwsEmulator, sqs: Any, tmp_path: Any) -> None:
    url = make_queue(sqs, "interruptions")
    send_all(sqs, url, [spot("i-0000000000000abcd")])
    out = tmp_path / "out.json"
    args = json.dumps(source_args(fresh_aws, url))
    env = {**os.environ, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    with out.open("w") as stdout:
        harness = subprocess.Popen(
            [sys.executable, str(SOURCE_DIR / "sqs_interruptions.py"), args], stdout=stdout, cwd=ROOT, env=env
        )
        try:
            deadline = time.monotonic() + 20
            while "i-0000000000000abcd" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            harness.terminate()
            harness.wait(timeout=30)
    printed = json.loads(out.read_text())
    assert instances([printed]) == ["i-0000000000000abcd"]


def test_an_unexpected_failure_stops_the_source_instead_of_hanging(fresh_aws: AwsEmulator, sqs: Any) -> None:
    url = make_queue(sqs, "interruptions")
    send_all(sqs, url, [spot("i-00000000000000001")])

    class BrokenQueue:
        async def put(self, item: Any) -> None:
            raise RuntimeError("rulebook queue is gone")

    async def scenario() -> None:
        await asyncio.wait_for(sqs_interruptions.main(BrokenQueue(), source_args(fresh_aws, url)), timeout=20)

    with pytest.raises(RuntimeError, match="rulebook queue is gone"):
        asyncio.run(scenario())
