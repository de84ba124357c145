"""How long moto's SQS takes to send, receive and delete a storm of messages, with and without the patch.

    PYTHONPATH=tests/world .venv/bin/python tests/bench/sqs_speed.py --messages 500            # patched
    PYTHONPATH=tests/world .venv/bin/python tests/bench/sqs_speed.py --messages 500 --unpatched

In-process moto (no HTTP), so the figures are moto's own cost. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import boto3
from moto import mock_aws

from spotmax_world.moto_ext import sqs as sqs_patch


def measure(messages: int) -> dict[str, Any]:
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        url = client.create_queue(QueueName="storm")["QueueUrl"]
        started = time.perf_counter()
        for first in range(0, messages, 10):
            entries = [{"Id": str(i), "MessageBody": f"m{first + i}"} for i in range(min(10, messages - first))]
            client.send_message_batch(QueueUrl=url, Entries=entries)
        sent = time.perf_counter()
        handles: list[str] = []
        receives = 0
        while len(handles) < messages:
            reply = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300)
            receives += 1
            handles += [m["ReceiptHandle"] for m in reply.get("Messages", [])]
            if receives > messages:  # bounded: never more receives than messages
                raise RuntimeError("the queue stopped returning messages")
        received = time.perf_counter()
        for first in range(0, len(handles), 10):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[first : first + 10])]
            client.delete_message_batch(QueueUrl=url, Entries=entries)
        deleted = time.perf_counter()
    return {
        "messages": messages,
        "send_s": round(sent - started, 3),
        "receive_all_s": round(received - sent, 3),
        "receive_calls": receives,
        "receive_call_mean_ms": round((received - sent) / receives * 1000, 1),
        "delete_all_s": round(deleted - received, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--unpatched", action="store_true", help="moto as released (no spotmax_world patch)")
    args = parser.parse_args()
    if not args.unpatched:
        sqs_patch.install()
    print(json.dumps({"patched": not args.unpatched, **measure(args.messages)}))


if __name__ == "__main__":
    main()
