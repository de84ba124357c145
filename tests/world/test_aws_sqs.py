"""SQS in the AWS emulator: moto's semantics, kept by the storm-size patch (``moto_ext.sqs``).

Unpatched, receiving the 500 messages of the storm test takes moto about 40 s (each receive rescans
the queue several times per message); patched it takes well under one. The tests assert behaviour
only: what is received, when, how often, and where it goes.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from spotmax_world.aws import AwsEmulator

pytestmark = pytest.mark.usefixtures("fresh_aws")

COUNTS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]


def counts(sqs: Any, url: str) -> tuple[int, int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=COUNTS)["Attributes"]
    visible, hidden, delayed = (int(attributes[name]) for name in COUNTS)
    return visible, hidden, delayed


def receive(sqs: Any, url: str, visibility: int, most: int = 10, **extra: Any) -> list[dict[str, Any]]:
    reply = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=most, VisibilityTimeout=visibility, WaitTimeSeconds=0, **extra
    )
    return list(reply.get("Messages", []))


def receive_within(sqs: Any, url: str, seconds: float, **extra: Any) -> list[dict[str, Any]]:
    """Poll (bounded) until a receive returns something."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = receive(sqs, url, **extra)
        if got:
            return got
        time.sleep(0.1)
    return []


def test_a_storm_of_messages_is_received_exactly_once_and_counted(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="storm")["QueueUrl"]
    for first in range(0, 500, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{first + i}"} for i in range(10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert counts(sqs, url) == (500, 0, 0)

    received: list[dict[str, Any]] = []
    for _round in range(60):  # bounded: 50 full receives are needed
        got = receive(sqs, url, visibility=300)
        if not got:
            break
        received += got
    bodies = Counter(m["Body"] for m in received)
    assert set(bodies) == {f"m{i}" for i in range(500)}
    assert set(bodies.values()) == {1}, "no message is handed out twice while in flight"
    assert counts(sqs, url) == (0, 500, 0)

    handles = [m["ReceiptHandle"] for m in received]
    for first in range(0, 250, 10):
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[first : first + 10])]
        reply = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        assert len(reply["Successful"]) == 10
    assert counts(sqs, url) == (0, 250, 0)
    assert receive(sqs, url, visibility=300) == []


def test_visibility_timeout_hides_then_returns_the_message(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="visibility")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="once")
    [first] = receive(sqs, url, visibility=1, AttributeNames=["ApproximateReceiveCount"])
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert receive(sqs, url, visibility=1) == []
    assert counts(sqs, url) == (0, 1, 0)

    [again] = receive_within(sqs, url, 5, visibility=30, AttributeNames=["ApproximateReceiveCount"])
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert counts(sqs, url) == (0, 0, 0)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")


def test_a_delayed_message_waits_out_its_delay(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="delay")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert counts(sqs, url) == (0, 0, 1)
    assert receive(sqs, url, visibility=30) == []
    [message] = receive_within(sqs, url, 5, visibility=30)
    assert message["Body"] == "later"
    assert counts(sqs, url) == (0, 1, 0)


def test_redrive_moves_a_message_received_too_often_to_the_dead_letter_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName="source", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    # VisibilityTimeout 0: visible again at once, so each receive counts without waiting.
    assert [m["Body"] for m in receive(sqs, url, visibility=0)] == ["poison"]
    assert [m["Body"] for m in receive(sqs, url, visibility=0)] == ["poison"]
    assert receive(sqs, url, visibility=0) == [], "the third receive finds it over maxReceiveCount"
    assert counts(sqs, url) == (0, 0, 0)
    assert [m["Body"] for m in receive(sqs, dlq, visibility=30)] == ["poison"]


def test_fifo_group_waits_while_its_message_is_in_flight(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="orders.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for body in ("a1", "a2"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="a")
    sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")  # content-based duplicate: dropped
    sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="b")
    assert counts(sqs, url) == (3, 0, 0)
    [first] = receive(sqs, url, visibility=30, most=1)
    assert first["Body"] == "a1"
    # group a is in flight: only group b is served
    assert [m["Body"] for m in receive(sqs, url, visibility=30)] == ["b1"]
    assert receive(sqs, url, visibility=30) == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, url, visibility=30)] == ["a2"]


def test_a_message_past_its_retention_period_is_not_delivered(aws: AwsEmulator, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="retention", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    sqs.send_message(QueueUrl=url, MessageBody="new")
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][aws.region].get_queue("retention")
    old = next(m for m in queue._messages if m.body == "old")  # age one message in place
    old.sent_timestamp -= 61_000
    bodies = [m["Body"] for m in receive_within(sqs, url, 2, visibility=30)]
    assert bodies == ["new"]
