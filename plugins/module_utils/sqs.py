# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""SQS acknowledgements: DeleteMessageBatch, 10 entries per call (the API's limit)."""

from __future__ import annotations

from typing import Any

DELETE_BATCH = 10


def delete_batches(receipt_handles: list[str]) -> list[list[str]]:
    """Distinct handles, in order, in batches of 10."""
    handles = list(dict.fromkeys(receipt_handles))
    return [handles[start : start + DELETE_BATCH] for start in range(0, len(handles), DELETE_BATCH)]


def delete_batch(client: Any, queue_url: str, handles: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Delete one batch; (deleted handles, failures as ``{receipt_handle, code, message, sender_fault}``)."""
    entries = [{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(handles)]
    reply = client.delete_message_batch(aws_retry=True, QueueUrl=queue_url, Entries=entries)
    return outcome(handles, reply)


def outcome(handles: list[str], reply: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Split a DeleteMessageBatch reply by handle; an entry the reply does not mention counts as failed."""
    succeeded = {entry["Id"] for entry in reply.get("Successful", [])}
    failed_by_id = {entry["Id"]: entry for entry in reply.get("Failed", [])}
    deleted: list[str] = []
    failed: list[dict[str, Any]] = []
    for index, handle in enumerate(handles):
        key = str(index)
        if key in succeeded and key not in failed_by_id:
            deleted.append(handle)
            continue
        entry = failed_by_id.get(key, {})
        failed.append(
            {
                "receipt_handle": handle,
                "code": entry.get("Code", "Unknown"),
                "message": entry.get("Message", "not in the DeleteMessageBatch reply"),
                "sender_fault": bool(entry.get("SenderFault", False)),
            }
        )
    return deleted, failed
