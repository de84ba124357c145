"""The source's pure parts: messages to normalised events, arguments, batches and in-flight duplicates."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqs_interruptions as src
from conftest import sample

I1, I2 = "i-1234567890abcdef0", "i-0fedcba0987654321"


def message(body: Any, message_id: str = "m-1", sent: str | None = None) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    entry: dict[str, Any] = {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": text}
    if sent is not None:
        entry["Attributes"] = {"SentTimestamp": sent}
    return entry


def parsed(body: Any, message_id: str = "m-1", received: float = 0.0) -> src.Parsed:
    return src.parse_message(message(body, message_id), received)


def spot(instance_id: str, time: str = "2026-11-21T14:05:06Z") -> dict[str, Any]:
    body = sample("spot-interruption-warning")
    body["detail"]["instance-id"] = instance_id
    body["time"] = time
    return body


def direct_hook(transition: str = "autoscaling:EC2_INSTANCE_TERMINATING") -> dict[str, str]:
    """A lifecycle hook's own notification to SQS (what the world's lifecycle.hook_message sends)."""
    return {
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
        "LifecycleHookName": "maxgroup-drain",
        "AccountId": "123456789012",
        "RequestId": "9f1c-activity",
        "LifecycleTransition": transition,
        "AutoScalingGroupName": "web-spot",
        "Service": "AWS Auto Scaling",
        "Time": "2026-11-21T14:02:37.214Z",
        "EC2InstanceId": I1,
        "LifecycleActionToken": "tok-1",
        "NotificationMetadata": "cluster=prod",
    }


LIFECYCLE = {
    "hook_name": "maxgroup-drain",
    "token": "tok-1",
    "group": "web-spot",
    "transition": "autoscaling:EC2_INSTANCE_TERMINATING",
}


def normalised(kind: str, **fields: Any) -> dict[str, Any]:
    event = {"kind": kind, "instance_id": I1, "group": None, "deadline": None, "state": None, "lifecycle": None}
    event.update(fields)
    event.update(message_id="m-1", receipt_handle="rh-m-1")
    return event


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "spot-interruption-warning",
            normalised("spot_interruption", time="2026-11-21T14:05:06Z", deadline="2026-11-21T14:07:06Z"),
        ),
        ("rebalance-recommendation", normalised("rebalance", time="2026-11-21T14:01:00Z")),
        (
            "asg-terminate-lifecycle-action",
            normalised(
                "lifecycle_terminate",
                time="2026-11-21T14:02:37Z",
                group="web-spot",
                lifecycle={**LIFECYCLE, "token": "0befc9ed-7f0a-4c1b-9d3e-11aa22bb33cc"},
            ),
        ),
        ("instance-state-change", normalised("state_change", time="2026-11-21T14:03:48Z", state="stopping")),
        (
            "health-scheduled-change",
            normalised("scheduled_change", time="2026-11-21T01:43:21Z", deadline="2026-11-28T15:10:09Z"),
        ),
    ],
)
def test_every_sample_kind_normalises(name: str, expected: dict[str, Any]) -> None:
    result = parsed(sample(name))
    assert (result.error, result.ignored) == (None, None)
    assert list(result.events) == [expected]


def test_direct_lifecycle_notification_names_group_and_token() -> None:
    result = parsed(direct_hook())
    assert list(result.events) == [
        normalised("lifecycle_terminate", time="2026-11-21T14:02:37Z", group="web-spot", lifecycle=LIFECYCLE)
    ]


def test_launch_lifecycle_actions_and_test_notifications_are_ignored() -> None:
    assert parsed(direct_hook("autoscaling:EC2_INSTANCE_LAUNCHING")).ignored == (
        "launch lifecycle action: not an interruption"
    )
    test = {
        "AccountId": "123456789012",
        "RequestId": "r",
        "AutoScalingGroupARN": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x:autoScalingGroupName/web",
        "AutoScalingGroupName": "web",
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION",
        "Time": "2026-11-21T14:00:00.000Z",
    }
    result = parsed(test)
    assert (result.events, result.error) == ((), None)
    assert result.ignored == "autoscaling:TEST_NOTIFICATION for web"


def test_health_event_names_every_affected_instance_once() -> None:
    body = sample("health-scheduled-change")
    body["detail"]["affectedEntities"] = [{"entityValue": I1}, {"entityValue": I2}, {"entityValue": "vol-1"}]
    body["resources"] = [I1, I2]
    result = parsed(body)
    assert [(e["instance_id"], e["deadline"]) for e in result.events] == [
        (I1, "2026-11-28T15:10:09Z"),
        (I2, "2026-11-28T15:10:09Z"),
    ]
    assert {e["receipt_handle"] for e in result.events} == {"rh-m-1"}


def test_health_events_that_are_not_ec2_scheduled_changes_are_ignored() -> None:
    body = sample("health-scheduled-change")
    body["detail"]["eventTypeCategory"] = "issue"
    assert parsed(body).ignored == "AWS Health event EC2/issue: not an EC2 scheduled change"
    body = sample("health-scheduled-change")
    body["detail"]["affectedEntities"], body["resources"] = [{"entityValue": "vol-1"}], []
    assert "names no EC2 instance" in str(parsed(body).ignored)


@pytest.mark.parametrize(
    ("state", "emitted"), [("pending", False), ("running", False), ("shutting-down", True), ("terminated", True)]
)
def test_state_changes_that_are_not_interruptions_are_ignored(state: str, emitted: bool) -> None:
    body = sample("instance-state-change")
    body["detail"]["state"] = state
    result = parsed(body)
    assert bool(result.events) is emitted
    assert (result.ignored is None) is emitted


def test_sns_envelope_is_unwrapped() -> None:
    envelope = {"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(sample("rebalance-recommendation"))}
    assert [e["kind"] for e in parsed(envelope).events] == ["rebalance"]


def test_missing_event_time_falls_back_to_the_sent_timestamp() -> None:
    body = sample("spot-interruption-warning")
    del body["time"]
    result = src.parse_message(message(body, sent="1795269906000"), 0.0)  # 2026-11-21T14:05:06Z
    assert (result.events[0]["time"], result.events[0]["deadline"]) == ("2026-11-21T14:05:06Z", "2026-11-21T14:07:06Z")
    assert "time" in str(parsed(body).error)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json {", "body is not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ({"hello": "world"}, "neither an EventBridge event nor an Auto Scaling lifecycle notification"),
        (
            {**sample("rebalance-recommendation"), "detail-type": "EC2 Fleet Error"},
            "'EC2 Fleet Error' from 'aws.ec2' is not a known kind",
        ),
        (
            {**sample("spot-interruption-warning"), "detail": {"instance-action": "terminate"}},
            "detail.instance-id: None",
        ),
        ({**sample("instance-state-change"), "detail": {"instance-id": I1}}, "detail.state"),
        (
            {**direct_hook(), "LifecycleTransition": "autoscaling:EC2_INSTANCE_EXPLODING"},
            "not a known lifecycle transition",
        ),
        ({k: v for k, v in direct_hook().items() if k != "LifecycleActionToken"}, "LifecycleActionToken: missing"),
        ({**sample("rebalance-recommendation"), "detail": "x"}, "detail: missing"),
    ],
)
def test_malformed_and_unknown_messages_are_errors_never_exceptions(body: Any, reason: str) -> None:
    result = parsed(body)
    assert (result.events, result.ignored) == ((), None)
    assert reason in str(result.error)


def test_message_without_body_is_an_error() -> None:
    assert src.parse_message({"MessageId": "m", "ReceiptHandle": "r"}, 0.0).error == "no body"


# --- arguments ---------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = src.validate_args({"queue_name": "q"})
    assert (
        settings.batch_window,
        settings.batch_size,
        settings.visibility_timeout,
        settings.wait_time,
        settings.receivers,
    ) == (
        1.0,
        500,
        300,
        20,
        4,
    )
    assert "secret" not in repr(src.validate_args({"queue_name": "q", "access_key": "a", "secret_key": "secret"}))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "queue_name, queue_url: neither was given; use exactly one of them"),
        ({"queue_name": "q", "queue_url": "https://x/q"}, "queue_name, queue_url: both were given"),
        ({"queue_url": "ftp://x/q"}, "queue_url: 'ftp://x/q' is not allowed; use the queue's http(s) URL"),
        ({"queue_name": "q", "wait_time": 21}, "wait_time: 21 is not allowed; use an integer from 0 to 20"),
        ({"queue_name": "q", "batch_size": 0}, "batch_size: 0 is not allowed; use an integer from 1 to 10000"),
        ({"queue_name": "q", "batch_size": 2.5}, "batch_size: 2.5 is not allowed"),
        ({"queue_name": "q", "receivers": True}, "receivers: True is not allowed; use an integer from 1 to 50"),
        ({"queue_name": "q", "batch_window": "soon"}, "batch_window: 'soon' is not allowed; use a number from 0 to 60"),
        (
            {"queue_name": "q", "visibility_timeout": 0},
            "visibility_timeout: 0 is not allowed; use an integer from 1 to 43200",
        ),
        ({"queue_name": "q", "access_key": "a"}, "access_key, secret_key: only one was given"),
        ({"queue_name": "q", "region": 5}, "region: 5 is not allowed; use a string"),
        ({"queue_name": "q", "delay_seconds": 5}, "delay_seconds: is not an argument of this source"),
        (
            {"queue_name": "q", "cordon_concurrency": 0},
            "cordon_concurrency: 0 is not allowed; use an integer from 1 to 100",
        ),
        ({"queue_name": "q", "cordon_kubeconfig": 7}, "cordon_kubeconfig: 7 is not allowed; use a string"),
    ],
)
def test_invalid_arguments_are_named(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        src.validate_args(args)


def test_numbers_from_templated_strings_and_rulebook_keys_are_accepted() -> None:
    settings = src.validate_args(
        {"queue_name": "q", "batch_size": "50", "batch_window": "0.5", "eda_feedback_queue": object()}
    )
    assert (settings.batch_size, settings.batch_window) == (50, 0.5)


def test_early_cordon_is_off_unless_a_kubeconfig_is_given() -> None:
    assert src.validate_args({"queue_name": "q", "cordon_kubeconfig": ""}).cordon_kubeconfig is None
    settings = src.validate_args({"queue_name": "q", "cordon_kubeconfig": "/k", "cordon_context": "c"})
    assert (settings.cordon_kubeconfig, settings.cordon_context, settings.cordon_concurrency) == ("/k", "c", 20)


def test_region_from_queue_url() -> None:
    assert src.region_from_url("https://sqs.eu-west-1.amazonaws.com/123456789012/q") == "eu-west-1"
    assert src.region_from_url("http://127.0.0.1:5000/123456789012/q") is None


# --- batches and duplicates ------------------------------------------------------------------------


def batcher(batch_size: int = 500, visibility_timeout: float = 300) -> src.Batcher:
    return src.Batcher("https://sqs.example/q", "us-east-1", batch_size, visibility_timeout)


def test_batch_shape_and_stable_uuid() -> None:
    items = [parsed(spot(f"i-{n:017x}"), f"m-{n}") for n in range(3)] + [
        parsed({"Event": "autoscaling:TEST_NOTIFICATION"}, "m-t")
    ]
    [event] = batcher().build(items, now=0)
    assert event["spotmax"]["queue_url"] == "https://sqs.example/q"
    assert event["spotmax"]["region"] == "us-east-1"
    assert [e["message_id"] for e in event["spotmax"]["events"]] == ["m-0", "m-1", "m-2"]
    assert event["spotmax"]["ignored"] == [
        {"message_id": "m-t", "receipt_handle": "rh-m-t", "reason": "autoscaling:TEST_NOTIFICATION for None"}
    ]
    # the same messages, in another order and with new receipt handles, give the same id; others do not
    again = [
        src.parse_message({**message(spot(f"i-{n:017x}"), f"m-{n}"), "ReceiptHandle": "new"}, 0) for n in (2, 1, 0)
    ]
    [redelivered] = batcher().build([*again, items[3]], now=0)
    assert redelivered["meta"]["uuid"] == event["meta"]["uuid"] == src.batch_uuid(["m-t", "m-2", "m-1", "m-0"])
    [other] = batcher().build(items[:2], now=0)
    assert other["meta"]["uuid"] != event["meta"]["uuid"]


def test_batches_respect_batch_size_and_never_split_a_message() -> None:
    health = sample("health-scheduled-change")
    health["detail"]["affectedEntities"] = [{"entityValue": f"i-h{n:016x}"} for n in range(3)]
    health["resources"] = []
    items = [parsed(spot(f"i-{n:017x}"), f"m-{n}") for n in range(4)]
    items.insert(2, parsed(health, "m-health"))
    batches = batcher(batch_size=3).build(items, now=0)
    sizes = [[e["message_id"] for e in b["spotmax"]["events"]] for b in batches]
    assert sizes == [["m-0", "m-1"], ["m-health"] * 3, ["m-2", "m-3"]]
    # a single message larger than the batch size still goes out whole
    [alone] = batcher(batch_size=2).build([items[2]], now=0)
    assert len(alone["spotmax"]["events"]) == 3


def test_in_flight_notice_is_not_emitted_again_until_its_visibility_timeout_ends() -> None:
    keeper = batcher(visibility_timeout=300)
    [first] = keeper.build([parsed(spot(I1), "m-1", received=10)], now=10)
    assert [e["instance_id"] for e in first["spotmax"]["events"]] == [I1]
    # another message with the same notice: acknowledged as a duplicate, not emitted
    [second] = keeper.build([parsed(spot(I1, "2026-11-21T14:05:07Z"), "m-2", received=20)], now=20)
    assert second["spotmax"]["events"] == []
    assert second["spotmax"]["ignored"] == [
        {
            "message_id": "m-2",
            "receipt_handle": "rh-m-2",
            "reason": f"duplicate of in-flight message m-1 (spot_interruption {I1})",
        }
    ]
    # the same message again while in flight: neither emitted nor acknowledged (it must survive until handled)
    assert keeper.build([parsed(spot(I1), "m-1", received=30)], now=30) == []
    # new information about the same instance is emitted: another kind, another lifecycle token
    hook = parsed(direct_hook(), "m-3", received=40)
    [third] = keeper.build([parsed(sample("rebalance-recommendation"), "m-4", received=40), hook], now=40)
    assert [e["kind"] for e in third["spotmax"]["events"]] == ["rebalance", "lifecycle_terminate"]
    # once the first receive's visibility timeout has run out, the redelivery is emitted again
    [later] = keeper.build([parsed(spot(I1), "m-1", received=311)], now=311)
    assert [e["message_id"] for e in later["spotmax"]["events"]] == ["m-1"]


def test_duplicates_within_one_batch_are_acknowledged_with_it() -> None:
    both = [parsed(spot(I1), "m-1"), parsed(spot(I1), "m-2"), parsed(spot(I2), "m-3")]
    [event] = batcher().build(both, now=0)
    assert [e["message_id"] for e in event["spotmax"]["events"]] == ["m-1", "m-3"]
    assert [i["message_id"] for i in event["spotmax"]["ignored"]] == ["m-2"]


def test_a_message_naming_an_in_flight_and_a_new_instance_emits_the_new_one() -> None:
    keeper = batcher()
    keeper.build([parsed(sample("health-scheduled-change"), "m-1")], now=0)
    health = sample("health-scheduled-change")
    health["detail"]["affectedEntities"] = [{"entityValue": I1}, {"entityValue": I2}]
    [event] = keeper.build([parsed(health, "m-2")], now=1)
    assert [(e["instance_id"], e["message_id"]) for e in event["spotmax"]["events"]] == [(I2, "m-2")]


def test_errors_never_reach_a_batch() -> None:
    assert batcher().build([parsed("not json", "m-1")], now=0) == []


# --- early cordon ----------------------------------------------------------------------------------


def test_spot_warned_lists_spot_warnings_only_once_each() -> None:
    items = [
        parsed(sample("spot-interruption-warning")),
        parsed(sample("rebalance-recommendation"), message_id="m2"),
        parsed(sample("spot-interruption-warning"), message_id="m3"),
        parsed("not json", message_id="m4"),
    ]
    assert src.spot_warned(items) == [sample("spot-interruption-warning")["detail"]["instance-id"]]


def test_managed_instances_carry_the_membership_tag() -> None:
    reservations = [
        {"Instances": [{"InstanceId": "i-1", "Tags": [{"Key": "spotmax:group", "Value": "web"}]}]},
        {"Instances": [{"InstanceId": "i-2", "Tags": [{"Key": "Name", "Value": "web"}]}, {"InstanceId": "i-3"}]},
    ]
    assert src.managed_instances(reservations) == {"i-1"}


def test_nodes_are_found_by_provider_id_and_cordoned_only_when_schedulable() -> None:
    nodes = [
        {"metadata": {"name": "a"}, "spec": {"providerID": "aws:///us-east-1a/i-1"}},
        {"metadata": {"name": "b"}, "spec": {"providerID": "aws:///us-east-1b/i-2", "unschedulable": True}},
        {"metadata": {"name": "c"}, "spec": {"providerID": "gce://project/zone/i-3"}},
        {"metadata": {"name": "d"}, "spec": {}},
    ]
    found = src.nodes_by_instance(nodes)
    assert found == {"i-1": ("a", False), "i-2": ("b", True)}
    assert src.to_cordon(["i-2", "i-1", "i-9"], found) == ["a"]
    assert src.provider_instance("aws:///us-east-1a/i-1/") == "i-1"
    assert src.provider_instance("aws:///us-east-1a/node-7") is None
