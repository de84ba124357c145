# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Batching of SQS deletes and EC2 tag writes, over plain data."""

from __future__ import annotations

from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2, sqs


def test_delete_batches_of_ten_distinct_handles():
    handles = [f"h{n}" for n in range(23)] + ["h0"]
    batches = sqs.delete_batches(handles)
    assert [len(batch) for batch in batches] == [10, 10, 3]
    assert batches[0][0] == "h0" and batches[2][-1] == "h22"


def test_outcome_splits_by_handle_and_counts_unmentioned_as_failed():
    reply = {
        "Successful": [{"Id": "0"}],
        "Failed": [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "Message": "bad", "SenderFault": True}],
    }
    deleted, failed = sqs.outcome(["a", "b", "c"], reply)
    assert deleted == ["a"]
    assert failed == [
        {"receipt_handle": "b", "code": "ReceiptHandleIsInvalid", "message": "bad", "sender_fault": True},
        {
            "receipt_handle": "c",
            "code": "Unknown",
            "message": "not in the DeleteMessageBatch reply",
            "sender_fault": False,
        },
    ]


def test_tag_calls_share_values_and_cap_ids():
    values = {f"i-{n:017x}": "spot_interruption" for n in range(5)}
    values["i-00000000000000fff"] = "rebalance"
    calls = ec2.tag_calls(values, size=2)
    assert [(value, len(ids)) for value, ids in calls] == [
        ("rebalance", 1),
        ("spot_interruption", 2),
        ("spot_interruption", 2),
        ("spot_interruption", 1),
    ]


def test_not_found_ids_from_the_error_message():
    message = "The instance IDs 'i-0123456789abcdef0, i-0fedcba9876543210' do not exist"
    assert ec2.not_found_ids(message) == ["i-0123456789abcdef0", "i-0fedcba9876543210"]


def test_run_concurrently_keeps_order():
    assert ec2.run_concurrently(lambda n: n * 2, range(7), 3) == [0, 2, 4, 6, 8, 10, 12]
    assert ec2.run_concurrently(lambda n: n, [], 3) == []
