"""Fixtures for the event source tests: the source imported by path, one AWS emulator per module.

ansible-rulebook loads ``sqs_interruptions.py`` by path, outside any package; the tests do the same
by putting its directory on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spotmax_world.aws import AwsEmulator

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCE_DIR = ROOT / "extensions" / "eda" / "plugins" / "event_source"
SAMPLES = pathlib.Path(__file__).resolve().parent / "events"
sys.path.insert(0, str(SOURCE_DIR))


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsEmulator]:
    with AwsEmulator() as emulator:
        yield emulator


@pytest.fixture
def fresh_aws(aws: AwsEmulator) -> AwsEmulator:
    aws.reset()
    return aws


@pytest.fixture
def sqs(fresh_aws: AwsEmulator) -> Any:
    return fresh_aws.client("sqs", attempts=1)


def source_args(aws: AwsEmulator, queue_url: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "queue_url": queue_url,
        "region": aws.region,
        "endpoint_url": aws.url,
        "access_key": "testing",
        "secret_key": "testing",
        "batch_window": 0.5,
        "wait_time": 1,
    }
    args.update(overrides)
    return args


def ack(sqs: Any, queue_url: str, event: dict[str, Any]) -> None:
    """What the playbook does once a batch is handled: delete every message it names (10 per call)."""
    spotmax = event["spotmax"]
    handles = list(
        dict.fromkeys(
            [e["receipt_handle"] for e in spotmax["events"]] + [i["receipt_handle"] for i in spotmax["ignored"]]
        )
    )
    for start in range(0, len(handles), 10):
        entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[start : start + 10])]
        reply = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        assert not reply.get("Failed"), reply


def run_source(
    args: dict[str, Any],
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run the source until ``until(events)`` holds or ``timeout`` passes; the rulebook events it put."""
    import sqs_interruptions  # noqa: PLC0415 - on sys.path only once this conftest ran

    events: list[dict[str, Any]] = []

    async def scenario() -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.create_task(sqs_interruptions.main(queue, args))
        deadline = time.monotonic() + timeout
        try:
            while not until(events) and time.monotonic() < deadline:
                if task.done():
                    task.result()  # raises what stopped the source
                    raise AssertionError("the source stopped")
                try:
                    event = queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.05)
                    continue
                events.append(event)
                if on_event is not None:
                    await asyncio.to_thread(on_event, event)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    # Long polls still running end within wait_time; let them, so they do not hide later messages.
    for thread in threading.enumerate():
        if thread.name.startswith("sqs_interruptions"):
            thread.join(timeout=float(args.get("wait_time", 20)) + 5)
    return events


def instances(events: list[dict[str, Any]]) -> list[str]:
    return [e["instance_id"] for batch in events for e in batch["spotmax"]["events"]]


def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])
