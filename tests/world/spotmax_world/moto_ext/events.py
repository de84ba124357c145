"""Deliveries AWS makes on its own: EventBridge events to the default bus, lifecycle messages to SQS."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

import jsonpath_ng.ext
from moto.events.models import events_backends
from moto.events.utils import EventTemplateParser
from moto.sqs.exceptions import QueueDoesNotExist
from moto.sqs.models import sqs_backends

from ._patch import original, patch, set_value
from .runtime import RUNTIME

LOG = logging.getLogger(__name__)


def publish(
    account_id: str, region: str, source: str, detail_type: str, resources: list[str], detail: dict[str, Any]
) -> None:
    """Put one event on the default bus; moto routes it to every matching rule's targets."""
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": resources,
        "Time": RUNTIME.clock.unix(),
    }
    events_backends[account_id][region].put_events([entry])


def _sqs_target(arn: str) -> tuple[str, str, str] | None:
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    return parts[4], parts[3], parts[5]


def sqs_queue_exists(arn: str) -> bool:
    target = _sqs_target(arn)
    if target is None:
        return False
    account_id, region, name = target
    try:
        sqs_backends[account_id][region].get_queue(name)
    except QueueDoesNotExist:
        return False
    return True


def is_sqs_arn(arn: str | None) -> bool:
    return bool(arn) and _sqs_target(arn or "") is not None


def send_to_target(arn: str | None, message: dict[str, Any]) -> bool:
    """Send ``message`` as JSON to an SQS notification target; other targets are not modelled."""
    target = _sqs_target(arn or "")
    if target is None:
        return False
    account_id, region, name = target
    try:
        sqs_backends[account_id][region].send_message(queue_name=name, message_body=json.dumps(message))
    except QueueDoesNotExist:
        LOG.info("notification target %s no longer exists", arn)
        return False
    return True


@functools.lru_cache(maxsize=256)
def _parse_jsonpath(path: str) -> Any:
    """jsonpath_ng builds a new parser (yacc tables) per call: ~40 ms per event for moto's 8 input paths."""
    return original(jsonpath_ng.ext, "parse")(path)


def install() -> None:
    # moto's EventTemplateParser imports jsonpath_ng.ext.parse at call time; compiled paths are reused.
    patch(jsonpath_ng.ext, "parse", _parse_jsonpath)
    # EventBridge hands SQS targets the whole event; moto's default template drops "account".
    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        set_value(
            EventTemplateParser,
            "DEFAULT_EVENT_INPUT_TEMPLATE",
            template.replace('"source": "<source>", ', '"source": "<source>", "account": "<account>", '),
        )
