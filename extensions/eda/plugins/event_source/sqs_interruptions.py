# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Event source: interruption notices from an SQS queue, normalised, de-duplicated and batched.

ansible-rulebook loads this file by path (``runpy.run_path``), outside any package: it imports
nothing from the collection. The parsing and batching are pure functions and a small class over
plain data; only :func:`main` and the receive loop do I/O.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlparse

DOCUMENTATION = r"""
---
short_description: Receive EC2 interruption notices from an SQS queue, normalised and batched.
description:
  - An ansible-rulebook event source that long-polls an SQS queue fed by EventBridge rules
    (EC2 Spot Instance Interruption Warning, EC2 Instance Rebalance Recommendation,
    EC2 Instance-terminate Lifecycle Action, EC2 Instance State-change Notification,
    AWS Health scheduled changes) and by Auto Scaling lifecycle hooks that notify the queue directly.
  - Every message it understands becomes one normalised event per instance (C(kind), C(instance_id),
    C(group), C(time), C(deadline), C(state), C(lifecycle), C(message_id), C(receipt_handle)).
    Events that arrive within O(batch_window) become one rulebook event
    C({"spotmax": {"queue_url", "region", "events", "ignored"}, "meta": {"uuid"}}); the uuid is derived
    from the batch's sorted message ids, so the same batch always has the same id.
  - Known messages that need no action (C(autoscaling:TEST_NOTIFICATION), launch lifecycle actions,
    C(pending)/C(running) state changes, AWS Health events that are not EC2 scheduled changes)
    are listed under C(ignored) with a reason, so the playbook acknowledges them.
  - The source deletes nothing. The playbook deletes a message (DeleteMessageBatch) once its
    handling finished; until then the receive's visibility timeout hides it. Messages that are not
    JSON or not a known kind are logged and left on the queue; the queue's redrive policy moves them
    to its dead-letter queue. The source never stops on bad input.
  - While an event is in flight (emitted, its visibility timeout not yet run out) the source does not
    emit the same notice again (same kind, instance and lifecycle token); a different message that
    repeats it is listed under C(ignored) as a duplicate, so it is acknowledged at once while the
    original message stays on the queue until its own handling finished. The source cannot see
    acknowledgements: an in-flight entry simply expires with the visibility timeout of the receive,
    when an unacknowledged message becomes visible again. Set O(visibility_timeout) above the longest
    handling time.
  - Credentials come from the standard AWS chain (environment, shared files, instance profile)
    unless O(access_key) and O(secret_key) are given.
  - With O(cordon_kubeconfig), the source also cordons (C(spec.unschedulable)) the Kubernetes node of
    every Spot-warned instance as soon as it receives the warning, before the batch window closes and
    without waiting for a playbook to start, so no new pod lands on a node that has two minutes left.
    Only instances that carry the C(spotmax:group) tag are cordoned (one C(DescribeInstances) per
    receive round); nodes are found by C(spec.providerID). This is an early copy of the playbook's own
    first step, which still cordons, taints and drains every node: an early cordon that fails is
    logged and the playbook does it.
options:
  queue_name:
    description:
      - Name of the SQS queue. Give O(queue_name) or O(queue_url), not both.
    type: str
  queue_url:
    description:
      - URL of the SQS queue. Give O(queue_name) or O(queue_url), not both.
    type: str
  region:
    description:
      - AWS region of the queue. Defaults to the AWS configuration (E(AWS_REGION), E(AWS_DEFAULT_REGION)),
        then to the region in O(queue_url).
    type: str
  endpoint_url:
    description:
      - URL to use instead of the AWS SQS endpoint (a local test world, a VPC endpoint).
    type: str
  access_key:
    description:
      - AWS access key id. Defaults to the standard credential chain.
    type: str
  secret_key:
    description:
      - AWS secret access key. Defaults to the standard credential chain.
    type: str
  session_token:
    description:
      - AWS session token for temporary credentials.
    type: str
  batch_window:
    description:
      - Seconds to collect events after the first one before emitting them as one rulebook event
        (0 to 60). 0 emits what each receive returned.
    type: float
    default: 1.0
  batch_size:
    description:
      - Most normalised events in one rulebook event (1 to 10000). A batch closes early when it is full.
        A single message that names more instances (an AWS Health event) is never split, so such a
        message alone may exceed it.
    type: int
    default: 500
  visibility_timeout:
    description:
      - Seconds a received message stays hidden from other receives (1 to 43200). The playbook must
        acknowledge within it, or the message is received and emitted again.
    type: int
    default: 300
  wait_time:
    description:
      - Long-poll seconds of each ReceiveMessage call (0 to 20).
    type: int
    default: 20
  receivers:
    description:
      - Concurrent ReceiveMessage loops (1 to 50), 10 messages each per call.
    type: int
    default: 4
  cordon_kubeconfig:
    description:
      - Path of a kubeconfig file; when set, the source cordons the nodes of Spot-warned managed
        instances of that cluster as soon as the warnings arrive (see above). Nodes of other clusters
        are left to the playbook.
    type: path
  cordon_context:
    description:
      - Context of O(cordon_kubeconfig) to use; its current context when not set.
    type: str
  cordon_concurrency:
    description:
      - Nodes cordoned at the same time (1 to 100).
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Handle EC2 interruptions
  hosts: localhost
  sources:
    - spotmax.maxgroup.sqs_interruptions:
        queue_name: spotmax-interruptions
        region: us-east-1
        batch_window: 2
        cordon_kubeconfig: /etc/spotmax/kubeconfig
  rules:
    - name: Interrupted instances
      condition: event.spotmax is defined
      action:
        run_playbook:
          name: spotmax.maxgroup.handle_interruption
"""

LOG = logging.getLogger(__name__)

SPOT_NOTICE = timedelta(seconds=120)
KINDS = ("spot_interruption", "rebalance", "lifecycle_terminate", "state_change", "scheduled_change")
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
RUNNING_STATES = ("pending", "running")
# uuid5 namespace of the batch ids (itself uuid5 of the source's name, so it never changes).
BATCH_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "spotmax.maxgroup.sqs_interruptions")
MAX_RECEIVE = 10  # SQS returns at most 10 messages per ReceiveMessage
MAX_BACKOFF = 30.0
POLL_INTERVAL = 0.05
MEMBERSHIP_KEY = "spotmax:group"
DESCRIBE_INSTANCES_BATCH = 1000  # the most ids one DescribeInstances accepts


class Malformed(ValueError):
    """A message that is not JSON or not a known kind: it stays on the queue for the DLQ."""


# --- arguments -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    queue_name: str | None
    queue_url: str | None
    region: str | None
    endpoint_url: str | None
    access_key: str | None = field(repr=False)
    secret_key: str | None = field(repr=False)
    session_token: str | None = field(repr=False)
    batch_window: float
    batch_size: int
    visibility_timeout: int
    wait_time: int
    receivers: int
    cordon_kubeconfig: str | None = None
    cordon_context: str | None = None
    cordon_concurrency: int = 20


KNOWN_ARGS = frozenset(
    (
        "queue_name",
        "queue_url",
        "region",
        "endpoint_url",
        "access_key",
        "secret_key",
        "session_token",
        "batch_window",
        "batch_size",
        "visibility_timeout",
        "wait_time",
        "receivers",
        "cordon_kubeconfig",
        "cordon_context",
        "cordon_concurrency",
    )
)


def _text(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: {value!r} is not allowed; use a string")
    return value


def _number(args: Mapping[str, Any], name: str, default: float, low: float, high: float, integer: bool) -> Any:
    value = args.get(name)
    if value is None:
        return default
    kind = "an integer" if integer else "a number"
    allowed = f"use {kind} from {low:g} to {high:g}"
    if isinstance(value, bool):
        raise ValueError(f"{name}: {value!r} is not allowed; {allowed}")
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {value!r} is not allowed; {allowed}") from None
    if integer and isinstance(value, float) and number != value:
        raise ValueError(f"{name}: {value!r} is not allowed; {allowed}")
    if not low <= number <= high:
        raise ValueError(f"{name}: {value!r} is not allowed; {allowed}")
    return number


def validate_args(args: Mapping[str, Any]) -> Settings:
    """Settings from the rulebook's arguments; ValueError names the argument, the value and what is allowed."""
    # ansible-rulebook adds its own keys (eda_feedback_queue when feedback is on).
    unknown = sorted(k for k in args if k not in KNOWN_ARGS and not str(k).startswith("eda_"))
    if unknown:
        raise ValueError(f"{unknown[0]}: is not an argument of this source; use {', '.join(sorted(KNOWN_ARGS))}")
    queue_name, queue_url = _text(args, "queue_name"), _text(args, "queue_url")
    if bool(queue_name) == bool(queue_url):
        given = "both were given" if queue_name else "neither was given"
        raise ValueError(f"queue_name, queue_url: {given}; use exactly one of them")
    if queue_url and not urlparse(queue_url).scheme.startswith("http"):
        raise ValueError(f"queue_url: {queue_url!r} is not allowed; use the queue's http(s) URL")
    access_key, secret_key = _text(args, "access_key"), _text(args, "secret_key")
    if bool(access_key) != bool(secret_key):
        raise ValueError("access_key, secret_key: only one was given; give both or neither (standard credential chain)")
    return Settings(
        queue_name=queue_name,
        queue_url=queue_url,
        region=_text(args, "region"),
        endpoint_url=_text(args, "endpoint_url"),
        access_key=access_key,
        secret_key=secret_key,
        session_token=_text(args, "session_token"),
        batch_window=_number(args, "batch_window", 1.0, 0, 60, integer=False),
        batch_size=_number(args, "batch_size", 500, 1, 10000, integer=True),
        visibility_timeout=_number(args, "visibility_timeout", 300, 1, 43200, integer=True),
        wait_time=_number(args, "wait_time", 20, 0, 20, integer=True),
        receivers=_number(args, "receivers", 4, 1, 50, integer=True),
        cordon_kubeconfig=_text(args, "cordon_kubeconfig"),
        cordon_context=_text(args, "cordon_context"),
        cordon_concurrency=_number(args, "cordon_concurrency", 20, 1, 100, integer=True),
    )


def region_from_url(queue_url: str) -> str | None:
    """``us-east-1`` from ``https://sqs.us-east-1.amazonaws.com/...``; None for other hosts."""
    host = urlparse(queue_url).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and "amazonaws" in parts:
        return parts[1]
    return None


# --- parsing ----------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (``2026-11-21T14:05:06Z``, with or without fraction) or RFC 1123."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _instance_id(value: Any) -> str | None:
    """``i-...`` from an id or an EC2 instance ARN; None otherwise."""
    if not isinstance(value, str):
        return None
    candidate = value.rsplit("/", 1)[-1] if value.startswith("arn:") else value
    return candidate if candidate.startswith("i-") and len(candidate) > 2 else None


def _required_instance(value: Any, where: str) -> str:
    instance_id = _instance_id(value)
    if instance_id is None:
        raise Malformed(f"{where}: {value!r} is not an EC2 instance id")
    return instance_id


def _event(
    kind: str,
    instance_id: str,
    moment: datetime,
    deadline: datetime | None = None,
    group: str | None = None,
    state: str | None = None,
    lifecycle: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "instance_id": instance_id,
        "group": group,
        "time": _iso(moment),
        "deadline": _iso(deadline) if deadline is not None else None,
        "state": state,
        "lifecycle": lifecycle,
    }


def _lifecycle(fields: Mapping[str, Any], moment: datetime, where: str) -> list[dict[str, Any]] | str:
    """The lifecycle_terminate event of a lifecycle action (EventBridge detail or direct notification)."""
    transition = fields.get("LifecycleTransition")
    if transition == LAUNCHING:
        return "launch lifecycle action: not an interruption"
    if transition != TERMINATING:
        raise Malformed(f"{where}LifecycleTransition: {transition!r} is not a known lifecycle transition")
    instance_id = _required_instance(fields.get("EC2InstanceId"), f"{where}EC2InstanceId")
    names = {}
    for key in ("LifecycleHookName", "LifecycleActionToken", "AutoScalingGroupName"):
        value = fields.get(key)
        if not isinstance(value, str) or not value:
            raise Malformed(f"{where}{key}: missing from a lifecycle action")
        names[key] = value
    group = names["AutoScalingGroupName"]
    lifecycle = {
        "hook_name": names["LifecycleHookName"],
        "token": names["LifecycleActionToken"],
        "group": group,
        "transition": TERMINATING,
    }
    return [_event("lifecycle_terminate", instance_id, moment, group=group, lifecycle=lifecycle)]


def _health(body: Mapping[str, Any], detail: Mapping[str, Any], moment: datetime) -> list[dict[str, Any]] | str:
    service, category = detail.get("service"), detail.get("eventTypeCategory")
    if service != "EC2" or category != "scheduledChange":
        return f"AWS Health event {service}/{category}: not an EC2 scheduled change"
    candidates: list[Any] = [e.get("entityValue") for e in detail.get("affectedEntities") or [] if isinstance(e, dict)]
    candidates.extend(body.get("resources") or [])
    instances = list(dict.fromkeys(i for i in map(_instance_id, candidates) if i is not None))
    if not instances:
        return f"AWS Health event {detail.get('eventTypeCode')}: names no EC2 instance"
    start = parse_time(detail.get("startTime"))
    return [_event("scheduled_change", i, moment, deadline=start) for i in instances]


def _eventbridge(body: Mapping[str, Any], sent: datetime | None) -> list[dict[str, Any]] | str:
    detail_type, detail = body.get("detail-type"), body.get("detail")
    if not isinstance(detail, dict):
        raise Malformed(f"detail: missing from the EventBridge event {detail_type!r}")
    moment = parse_time(body.get("time")) or sent
    if moment is None:
        raise Malformed(f"time: {body.get('time')!r} is not an ISO 8601 time")
    if detail_type == "EC2 Spot Instance Interruption Warning":
        instance_id = _required_instance(detail.get("instance-id"), "detail.instance-id")
        return [_event("spot_interruption", instance_id, moment, deadline=moment + SPOT_NOTICE)]
    if detail_type == "EC2 Instance Rebalance Recommendation":
        return [_event("rebalance", _required_instance(detail.get("instance-id"), "detail.instance-id"), moment)]
    if detail_type == "EC2 Instance State-change Notification":
        instance_id = _required_instance(detail.get("instance-id"), "detail.instance-id")
        state = detail.get("state")
        if not isinstance(state, str) or not state:
            raise Malformed(f"detail.state: {state!r} is not an EC2 instance state")
        if state in RUNNING_STATES:
            return f"instance {instance_id} is {state}: not an interruption"
        return [_event("state_change", instance_id, moment, state=state)]
    if detail_type in ("EC2 Instance-terminate Lifecycle Action", "EC2 Instance-launch Lifecycle Action"):
        return _lifecycle(detail, moment, "detail.")
    if detail_type == "AWS Health Event" and body.get("source") == "aws.health":
        return _health(body, detail, moment)
    raise Malformed(f"detail-type: {detail_type!r} from {body.get('source')!r} is not a known kind")


def classify(text: str, sent: datetime | None = None) -> list[dict[str, Any]] | str:
    """Normalised events (without message fields) of one message body, or the reason it needs no action.

    ``sent`` (the SQS SentTimestamp) stands in for a missing event time. Raises :class:`Malformed`.
    """
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise Malformed(f"body is not JSON: {exc}") from None
    if isinstance(body, dict) and body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
        return classify(body["Message"], sent)  # an SNS envelope without raw delivery
    if not isinstance(body, dict):
        raise Malformed(f"body is a JSON {type(body).__name__}, not an object")
    if "detail-type" in body:
        return _eventbridge(body, sent)
    if body.get("Event") == TEST_NOTIFICATION:
        return f"{TEST_NOTIFICATION} for {body.get('AutoScalingGroupName')}"
    if "LifecycleTransition" in body:
        moment = parse_time(body.get("Time")) or sent
        if moment is None:
            raise Malformed(f"Time: {body.get('Time')!r} is not an ISO 8601 time")
        return _lifecycle(body, moment, "")
    raise Malformed("neither an EventBridge event nor an Auto Scaling lifecycle notification")


@dataclass(frozen=True)
class Parsed:
    """One received message: its events, or why it needs no action, or why it stays on the queue."""

    message_id: str
    receipt_handle: str
    received: float  # time.monotonic() of the receive: its visibility timeout runs from here
    events: tuple[dict[str, Any], ...] = ()
    ignored: str | None = None
    error: str | None = None


def parse_message(message: Mapping[str, Any], received: float) -> Parsed:
    """A ReceiveMessage entry as :class:`Parsed`; never raises."""
    message_id = str(message.get("MessageId") or "")
    handle = str(message.get("ReceiptHandle") or "")
    attributes = message.get("Attributes") or {}
    sent = None
    stamp = attributes.get("SentTimestamp")
    if isinstance(stamp, str) and stamp.isdigit():
        sent = datetime.fromtimestamp(int(stamp) / 1000, tz=UTC)
    body = message.get("Body")
    try:
        if not message_id or not handle:
            raise Malformed("MessageId or ReceiptHandle missing")
        if not isinstance(body, str):
            raise Malformed("no body")
        outcome = classify(body, sent)
    except Malformed as exc:
        return Parsed(message_id, handle, received, error=str(exc))
    if isinstance(outcome, str):
        return Parsed(message_id, handle, received, ignored=outcome)
    events = tuple({**e, "message_id": message_id, "receipt_handle": handle} for e in outcome)
    return Parsed(message_id, handle, received, events=events)


# --- batching and in-flight de-duplication ---------------------------------------------------------


def notice_key(event: Mapping[str, Any]) -> tuple[str, str, str]:
    """What makes two events the same notice: kind, instance and (for lifecycle actions) the token."""
    lifecycle = event.get("lifecycle") or {}
    return (str(event["kind"]), str(event["instance_id"]), str(lifecycle.get("token") or ""))


def batch_uuid(message_ids: Iterable[str]) -> str:
    return str(uuid.uuid5(BATCH_NAMESPACE, "\n".join(sorted(message_ids))))


class Batcher:
    """Turns parsed messages into rulebook events and remembers what is in flight.

    Pure apart from its memory: callers pass the monotonic time.
    """

    def __init__(self, queue_url: str, region: str, batch_size: int, visibility_timeout: float) -> None:
        self.queue_url = queue_url
        self.region = region
        self.batch_size = batch_size
        self.visibility_timeout = visibility_timeout
        self.notices: dict[tuple[str, str, str], tuple[float, str]] = {}  # key -> (expires, message id)
        self.messages: dict[str, float] = {}  # message id -> expires

    def forget_expired(self, now: float) -> None:
        self.notices = {k: v for k, v in self.notices.items() if v[0] > now}
        self.messages = {k: v for k, v in self.messages.items() if v > now}

    def build(self, items: Sequence[Parsed], now: float) -> list[dict[str, Any]]:
        """Rulebook events for ``items`` (in order), each with at most ``batch_size`` events."""
        self.forget_expired(now)
        batches: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        ignored: list[dict[str, str]] = []
        ids: list[str] = []

        def close() -> None:
            if ids:
                batches.append(self._rulebook_event(events, ignored, ids))
            events[:], ignored[:], ids[:] = [], [], []

        for item in items:
            if item.error is not None:
                continue
            if item.message_id in self.messages:
                # The same message again while its first receive is in flight (SQS delivers at least
                # once): acknowledging this copy could drop it before its handling finished; it comes back.
                LOG.debug("message %s is already in flight; not emitted again", item.message_id)
                continue
            expires = item.received + self.visibility_timeout
            self.messages[item.message_id] = expires
            if item.ignored is not None:
                ignored.append(_ignored(item, item.ignored))
                ids.append(item.message_id)
                continue
            fresh = [e for e in item.events if notice_key(e) not in self.notices]
            if not fresh:
                head = item.events[0]
                first = self.notices[notice_key(head)][1]
                reason = f"duplicate of in-flight message {first} ({head['kind']} {head['instance_id']})"
                ignored.append(_ignored(item, reason))
                ids.append(item.message_id)
                continue
            if events and len(events) + len(fresh) > self.batch_size:
                close()
            for event in fresh:
                self.notices[notice_key(event)] = (expires, item.message_id)
            events.extend(fresh)
            ids.append(item.message_id)
            if len(events) >= self.batch_size:
                close()
        close()
        return batches

    def _rulebook_event(
        self, events: list[dict[str, Any]], ignored: list[dict[str, str]], ids: list[str]
    ) -> dict[str, Any]:
        return {
            "spotmax": {
                "queue_url": self.queue_url,
                "region": self.region,
                "events": list(events),
                "ignored": list(ignored),
            },
            "meta": {"uuid": batch_uuid(ids)},
        }


def _ignored(item: Parsed, reason: str) -> dict[str, str]:
    return {"message_id": item.message_id, "receipt_handle": item.receipt_handle, "reason": reason}


def event_count(item: Parsed) -> int:
    return len(item.events) or 1


# --- early cordon (decisions) ----------------------------------------------------------------------


def spot_warned(items: Iterable[Parsed]) -> list[str]:
    """Instance ids of the Spot interruption warnings among ``items``, once each, in order."""
    found = (e["instance_id"] for item in items for e in item.events if e["kind"] == "spot_interruption")
    return list(dict.fromkeys(found))


def managed_instances(reservations: Iterable[Mapping[str, Any]]) -> set[str]:
    """Ids of the described instances that carry the membership tag (the others are not ours to touch)."""
    return {
        str(instance["InstanceId"])
        for reservation in reservations
        for instance in reservation.get("Instances") or []
        if any(tag.get("Key") == MEMBERSHIP_KEY for tag in instance.get("Tags") or [])
    }


def provider_instance(provider_id: Any) -> str | None:
    """``i-...`` from a node's ``spec.providerID`` (``aws:///<zone>/<instance-id>``); None otherwise."""
    if not isinstance(provider_id, str) or not provider_id.startswith("aws://"):
        return None
    return _instance_id(provider_id.rstrip("/").rsplit("/", 1)[-1])


def nodes_by_instance(nodes: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, bool]]:
    """Instance id -> (node name, already unschedulable) for the nodes of a node list."""
    found: dict[str, tuple[str, bool]] = {}
    for node in nodes:
        spec = node.get("spec") or {}
        instance_id = provider_instance(spec.get("providerID"))
        name = (node.get("metadata") or {}).get("name")
        if instance_id is not None and isinstance(name, str):
            found[instance_id] = (name, bool(spec.get("unschedulable")))
    return found


def to_cordon(managed: Iterable[str], nodes: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Names of the schedulable nodes of ``managed`` instances, in order."""
    return [nodes[i][0] for i in managed if i in nodes and not nodes[i][1]]


# --- I/O ---------------------------------------------------------------------------------------------


class EventQueue(Protocol):
    async def put(self, item: Any) -> None: ...


def make_session(settings: Settings) -> tuple[Any, str]:
    """A boto3 session of the settings' credentials and the region to use."""
    import boto3  # noqa: PLC0415 - imported where used so the pure functions load without boto3

    session = boto3.session.Session(
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        aws_session_token=settings.session_token,
        region_name=settings.region,
    )
    region = settings.region or session.region_name
    if region is None and settings.queue_url:
        region = region_from_url(settings.queue_url)
    if region is None:
        raise ValueError("region: not set and not found in the AWS configuration or queue_url; set region")
    return session, str(region)


def make_client(settings: Settings, session: Any, region: str) -> Any:
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        # long polls hold one connection each; reads wait longer than the poll
        max_pool_connections=max(10, settings.receivers + 2),
        read_timeout=settings.wait_time + 30,
        retries={"mode": "standard"},
    )
    return session.client("sqs", region_name=region, endpoint_url=settings.endpoint_url, config=config)


def resolve_queue_url(client: Any, settings: Settings) -> str:
    """The queue's URL; fails (with the AWS error) when it does not exist or cannot be read."""
    if settings.queue_name:
        url = str(client.get_queue_url(QueueName=settings.queue_name)["QueueUrl"])
    else:
        url = str(settings.queue_url)
    client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    return url


async def receive_loop(
    client: Any,
    settings: Settings,
    queue_url: str,
    inbox: asyncio.Queue[Parsed],
    executor: ThreadPoolExecutor,
    cordon: asyncio.Queue[str] | None = None,
) -> None:
    """Long-poll forever; AWS errors are logged and retried with a bounded back-off."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    receive = functools.partial(
        client.receive_message,
        QueueUrl=queue_url,
        MaxNumberOfMessages=MAX_RECEIVE,
        WaitTimeSeconds=settings.wait_time,
        VisibilityTimeout=settings.visibility_timeout,
        MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
    )
    failures = 0
    while True:
        try:
            reply = await loop.run_in_executor(executor, receive)
        except (BotoCoreError, ClientError) as exc:
            failures += 1
            delay = min(MAX_BACKOFF, 0.5 * 2**failures)
            LOG.warning("ReceiveMessage on %s failed (%s); retrying in %.1f s", queue_url, exc, delay)
            await asyncio.sleep(delay)
            continue
        failures = 0
        now = time.monotonic()
        received = [parse_message(message, now) for message in reply.get("Messages", [])]
        for parsed in received:
            if parsed.error is not None:
                LOG.warning("message %s left on the queue for its redrive policy: %s", parsed.message_id, parsed.error)
                continue
            inbox.put_nowait(parsed)
        if cordon is not None:
            for instance_id in spot_warned(received):
                cordon.put_nowait(instance_id)


class Cordoner:
    """Cordons the nodes of Spot-warned managed instances in one cluster; called from a worker thread.

    Remembers the cluster's nodes between calls and lists them again only when an instance is not
    among them (a node that joined since).
    """

    def __init__(self, ec2: Any, core: Any, concurrency: int) -> None:
        self.ec2 = ec2
        self.core = core
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sqs_interruptions_cordon")
        self.nodes: dict[str, tuple[str, bool]] = {}

    def cordon(self, instance_ids: Sequence[str]) -> list[str]:
        """Cordon what needs it; returns the node names cordoned now. API errors are raised."""
        managed: set[str] = set()
        for start in range(0, len(instance_ids), DESCRIBE_INSTANCES_BATCH):
            batch = list(instance_ids[start : start + DESCRIBE_INSTANCES_BATCH])
            pages = self.ec2.get_paginator("describe_instances").paginate(InstanceIds=batch)
            managed |= managed_instances(r for page in pages for r in page.get("Reservations", []))
        ordered = [i for i in instance_ids if i in managed]
        if any(i not in self.nodes for i in ordered):
            reply = self.core.list_node(_preload_content=False)
            self.nodes = nodes_by_instance(json.loads(reply.data).get("items") or [])
        names = to_cordon(ordered, self.nodes)
        cordoned = [name for name in self.pool.map(self._patch, names) if name is not None]
        for instance_id in ordered:
            if instance_id in self.nodes and self.nodes[instance_id][0] in cordoned:
                self.nodes[instance_id] = (self.nodes[instance_id][0], True)
        return cordoned

    def _patch(self, name: str) -> str | None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415

        try:
            self.core.patch_node(name, {"spec": {"unschedulable": True}})
        except ApiException as exc:
            if exc.status == 404:  # the node left the cluster meanwhile: nothing to cordon
                return None
            raise
        return name


def make_cordoner(settings: Settings, session: Any, region: str) -> Cordoner:
    """The early cordoner of ``cordon_kubeconfig``; ValueError when the kubeconfig cannot be loaded."""
    from kubernetes import client, config  # noqa: PLC0415
    from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=settings.cordon_kubeconfig,
            context=settings.cordon_context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError) as exc:
        raise ValueError(f"cordon_kubeconfig: {settings.cordon_kubeconfig!r} cannot be loaded: {exc}") from None
    configuration.connection_pool_maxsize = settings.cordon_concurrency
    core = client.CoreV1Api(client.ApiClient(configuration))
    from botocore.config import Config  # noqa: PLC0415

    ec2 = session.client(
        "ec2", region_name=region, endpoint_url=settings.endpoint_url, config=Config(retries={"mode": "standard"})
    )
    return Cordoner(ec2, core, settings.cordon_concurrency)


async def cordon_loop(pending: asyncio.Queue[str], cordoner: Cordoner, executor: ThreadPoolExecutor) -> None:
    """Cordon what the receivers queued, everything queued so far in one call."""
    loop = asyncio.get_running_loop()
    while True:
        ids = [await pending.get()]
        while not pending.empty():
            ids.append(pending.get_nowait())
        ids = list(dict.fromkeys(ids))
        try:
            cordoned = await loop.run_in_executor(executor, cordoner.cordon, ids)
        except Exception as exc:
            # Any failure (AWS, Kubernetes, network) is logged and the loop goes on: the playbook cordons anyway.
            LOG.warning("early cordon of %d Spot-warned instances failed (%s); the playbook does it", len(ids), exc)
            continue
        if cordoned:
            LOG.info("cordoned %d nodes on their Spot warnings: %s", len(cordoned), ", ".join(cordoned))


async def batch_loop(queue: EventQueue, inbox: asyncio.Queue[Parsed], batcher: Batcher, window: float) -> None:
    """Collect for ``window`` seconds after the first message (or until a batch is full), then emit."""
    loop = asyncio.get_running_loop()
    while True:
        items = [await inbox.get()]
        count = event_count(items[0])
        deadline = loop.time() + window
        while count < batcher.batch_size:
            try:
                item = inbox.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(remaining, POLL_INTERVAL))
                continue
            items.append(item)
            count += event_count(item)
        for event in batcher.build(items, time.monotonic()):
            events, ignored = event["spotmax"]["events"], event["spotmax"]["ignored"]
            LOG.info("batch %s: %d events, %d ignored", event["meta"]["uuid"], len(events), len(ignored))
            await queue.put(event)


async def main(queue: EventQueue, args: dict[str, Any]) -> None:
    """Receive interruption notices from SQS and put batched rulebook events on ``queue``."""
    settings = validate_args(args)
    # receivers, one early cordon call at a time, and the set-up calls
    executor = ThreadPoolExecutor(max_workers=settings.receivers + 2, thread_name_prefix="sqs_interruptions")
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    try:
        session, region = await loop.run_in_executor(executor, make_session, settings)
        client = await loop.run_in_executor(executor, make_client, settings, session, region)
        queue_url = await loop.run_in_executor(executor, resolve_queue_url, client, settings)
        LOG.info("receiving interruption notices from %s (%s)", queue_url, region)
        batcher = Batcher(queue_url, region, settings.batch_size, settings.visibility_timeout)
        inbox: asyncio.Queue[Parsed] = asyncio.Queue()
        cordon: asyncio.Queue[str] | None = None
        if settings.cordon_kubeconfig:
            cordoner = await loop.run_in_executor(executor, make_cordoner, settings, session, region)
            cordon = asyncio.Queue()
            tasks.append(asyncio.create_task(cordon_loop(cordon, cordoner, executor)))
            LOG.info("cordoning Spot-warned nodes on receipt through %s", settings.cordon_kubeconfig)
        tasks.extend(
            asyncio.create_task(receive_loop(client, settings, queue_url, inbox, executor, cordon))
            for _index in range(settings.receivers)
        )
        tasks.append(asyncio.create_task(batch_loop(queue, inbox, batcher, settings.batch_window)))
        # The loops run forever; if one fails unexpectedly, stop the source with its error.
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        # A long poll in progress ends on its own (within wait_time); what it received reappears.
        executor.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    import argparse
    import sys

    class _PrintQueue:
        async def put(self, item: Any) -> None:
            print(json.dumps(item, indent=2), flush=True)

    parser = argparse.ArgumentParser(description="Print the rulebook events of an SQS queue's interruption notices.")
    parser.add_argument("args", help='the source arguments as JSON, e.g. {"queue_name": "q", "region": "us-east-1"}')
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        asyncio.run(main(_PrintQueue(), json.loads(parser.parse_args().args)))
    except KeyboardInterrupt:
        pass
