# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""interruption_ack against moto's in-process AWS: the queue and the instance tags after the run."""

from __future__ import annotations

import boto3
import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import interruption_ack

HANDLED = "spotmax:interruption_handled"


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(interruption_ack, args, **kwargs)


@pytest.fixture(name="queue")
def queue_fixture(aws):
    """A queue with 12 received (in-flight) messages: (sqs client, url, receipt handles)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="interruptions")["QueueUrl"]
    for number in range(12):
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"n": {number}}}')
    handles = []
    for _attempt in range(5):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get("Messages", [])
        handles.extend(message["ReceiptHandle"] for message in messages)
        if len(handles) == 12:
            break
    assert len(handles) == 12
    return sqs, url, handles


@pytest.fixture(name="instances")
def instances_fixture(aws):
    # A known moto image: describe_images would load every default image (slow).
    found = aws["ec2"].run_instances(ImageId="ami-12c6146b", MinCount=3, MaxCount=3)["Instances"]
    return sorted(instance["InstanceId"] for instance in found)


def messages_left(sqs, url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def handled_tags(aws, ids):
    found = {}
    for reservation in aws["ec2"].describe_instances(InstanceIds=ids)["Reservations"]:
        for instance in reservation["Instances"]:
            found[instance["InstanceId"]] = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}.get(HANDLED)
    return found


def test_tags_then_deletes_and_is_idempotent_for_tags(aws, run, queue, instances):
    sqs, url, handles = queue
    aws["ec2"].create_tags(Resources=[instances[2]], Tags=[{"Key": HANDLED, "Value": "rebalance"}])
    wanted = {instances[0]: "spot_interruption", instances[1]: "spot_interruption", instances[2]: "rebalance"}
    result = run({"queue_url": url, "receipt_handles": handles, "handled_tags": wanted}, diff=True)
    assert result["changed"] is True
    assert messages_left(sqs, url) == 0
    assert handled_tags(aws, instances) == wanted
    ack = result["acknowledgement"]
    assert sorted(ack["deleted"]) == sorted(handles)
    assert ack["tagged"] == {instances[0]: "spot_interruption", instances[1]: "spot_interruption"}
    assert ack["unchanged"] == [instances[2]]
    assert result["diff"]["before"]["handled_tags"] == {instances[0]: None, instances[1]: None}
    again = run({"handled_tags": wanted})
    assert again["changed"] is False
    assert again["acknowledgement"]["tagged"] == {}


def test_refused_handle_fails_naming_it_after_deleting_the_rest(run, queue):
    sqs, url, handles = queue
    result = run({"queue_url": url, "receipt_handles": [*handles, "bogus-handle"]})
    assert result["failed"] is True
    assert "'bogus-handle': ReceiptHandleIsInvalid" in result["msg"]
    assert result["msg"].startswith("receipt_handles: SQS did not delete 1 message(s)")
    assert [f["receipt_handle"] for f in result["acknowledgement"]["failed"]] == ["bogus-handle"]
    assert messages_left(sqs, url) == 0


def test_check_mode_leaves_queue_and_tags(aws, run, queue, instances):
    sqs, url, handles = queue
    wanted = {instances[0]: "spot_interruption"}
    result = run({"queue_url": url, "receipt_handles": handles, "handled_tags": wanted}, check_mode=True)
    assert result["changed"] is True
    assert result["acknowledgement"]["tagged"] == wanted
    assert messages_left(sqs, url) == 12
    assert handled_tags(aws, instances) == dict.fromkeys(instances)


def test_missing_instance_is_reported_not_fatal(aws, run, instances):
    gone = "i-0123456789abcdef0"
    result = run({"handled_tags": {instances[0]: "state_change", gone: "spot_interruption"}})
    assert result["changed"] is True
    assert result["acknowledgement"]["missing"] == [gone]
    assert handled_tags(aws, instances)[instances[0]] == "state_change"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"receipt_handles": ["rh"]}, "queue_url: a queue URL is required when receipt_handles is not empty"),
        ({"handled_tags": {"web-1": "spot_interruption"}}, "handled_tags: key 'web-1' is not allowed"),
        (
            {"handled_tags": {"i-0123456789abcdef0": "spot_interruption reboot"}},
            "handled_tags: value 'spot_interruption reboot' of i-0123456789abcdef0 is not allowed; use space-separated",
        ),
        ({"handled_tags": {"i-0123456789abcdef0": ""}}, "handled_tags: value '' of i-0123456789abcdef0"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed"),
    ],
)
def test_bad_options_fail_before_any_call(run, args, message):
    result = run(args)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
