"""SQS at storm sizes: the same behaviour as moto's, without rescanning the queue for every message.

moto 5.2 answers every received message's retention check with ``get_queue_attributes``, which
builds *all* queue attributes three times; each build counts the visible, in-flight and delayed
messages, and each count asks the clock once per message. With 500 messages queued one
ReceiveMessage took about a second. The replacements read the clock once per scan and the retention
period straight off the queue; visibility timeouts, delays, receive counts, redrive to the
dead-letter queue and FIFO groups are moto's own code, unchanged.
"""

from __future__ import annotations

from typing import Any

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs import models as sqs_models

from ._patch import add_property, patch


def _now_millis() -> float:
    # moto's clock, the one its Message.visible and Message.delayed read.
    return float(unix_time_millis())


def _messages(queue: Any) -> list[Any]:
    """``Queue.messages``: visible and not delayed (moto: ``now > visible_at`` and not ``now < delayed_until``)."""
    now = _now_millis()
    return [m for m in queue._messages if now > m.visible_at and now >= m.delayed_until]


def _delayed(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if now < m.delayed_until)


def _not_visible(queue: Any) -> int:
    now = _now_millis()
    return sum(1 for m in queue._messages if not now > m.visible_at)


def _visible(queue: Any) -> int:
    return len(_messages(queue))


def _retained(backend: Any, queue_name: str, message: Any) -> bool:
    """``SQSBackend.is_message_valid_based_on_retention_period`` without building every attribute."""
    queue = backend.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return bool(retain_until > unix_time())


def _had_receipt_handle(message: Any, receipt_handle: str) -> bool:
    """``Message.had_receipt_handle`` without building the list of every handle it had."""
    return receipt_handle == message.receipt_handle or receipt_handle in message._old_receipt_handles


def install() -> None:
    properties = {
        "messages": _messages,
        "approximate_number_of_messages": _visible,
        "approximate_number_of_messages_not_visible": _not_visible,
        "approximate_number_of_messages_delayed": _delayed,
    }
    for name, getter in properties.items():
        if not isinstance(getattr(sqs_models.Queue, name, None), property):
            raise AttributeError(f"moto has no property Queue.{name}: update spotmax_world.moto_ext.sqs")
        add_property(sqs_models.Queue, name, getter)
    patch(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", _retained)
    patch(sqs_models.Message, "had_receipt_handle", _had_receipt_handle)
