# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test helper: send, receive and count SQS messages in the local world (no Ansible module does).

``python sqs_messages.py ENDPOINT REGION QUEUE_URL send N`` sends N messages;
``... receive N`` receives until N messages are in flight (bounded) and prints their receipt handles as JSON;
``... count`` prints the number of messages left (visible and in flight).
"""

from __future__ import annotations

import json
import sys

import boto3


def main(argv):
    endpoint, region, queue_url, command = argv[:4]
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    if command == "send":
        for number in range(int(argv[4])):
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"n": number}))
        return {"sent": int(argv[4])}
    if command == "receive":
        wanted = int(argv[4])
        handles = []
        for _attempt in range(wanted + 5):
            reply = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=1
            )
            handles.extend(message["ReceiptHandle"] for message in reply.get("Messages", []))
            if len(handles) >= wanted:
                break
        return {"receipt_handles": handles}
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return {
        "count": int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
