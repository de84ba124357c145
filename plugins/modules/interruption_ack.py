#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: interruption_ack
version_added: 0.1.0
short_description: Acknowledge handled interruption messages and mark their instances as handled
description:
  - The last step of the handle_interruption playbook. First writes the C(spotmax:interruption_handled) tag
    (O(handled_tags)) on the instances that were handled, then deletes the SQS messages (O(receipt_handles)).
    In that order, a run that stops between the two leaves the messages on the queue; when they come back,
    spotmax.maxgroup.interruption_plan recognises the instances as handled and only acknowledges them.
  - The tags are read first (one C(DescribeInstances) per 200 instances) and only values that differ are written,
    with one C(CreateTags) call per value and 200 instances. An instance that no longer exists is left out and
    reported in RV(acknowledgement.missing); that is not an error.
  - Messages are deleted with C(DeleteMessageBatch), 10 receipt handles per call, the calls running concurrently.
    When SQS refuses some handles (its C(Failed) entries, for example an invalid or expired receipt handle), the
    others are still deleted, then the module fails naming every refused handle with its code and message.
  - A receipt handle cannot be checked without deleting the message, so every handle given is deleted and counts
    as a change.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  queue_url:
    description: URL of the SQS queue the messages came from. Required when O(receipt_handles) is not empty.
    type: str
  receipt_handles:
    description:
      - The receipt handles of the messages to delete
        (RV(spotmax.maxgroup.interruption_plan#module:plan.receipt_handles)).
    type: list
    elements: str
    default: []
  handled_tags:
    description:
      - Instance id to the new value of its C(spotmax:interruption_handled) tag, space-separated kinds
        (RV(spotmax.maxgroup.interruption_plan#module:plan.handled_tags)).
    type: dict
    default: {}
  concurrency:
    description: How many API calls run at once.
    type: int
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the tags, writes no tag and deletes no message, and reports what would be done.
  diff_mode:
    support: full
    details: The C(spotmax:interruption_handled) values before and after, and the receipt handles deleted.
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Acknowledge the batch once its handling is done
  spotmax.maxgroup.interruption_ack:
    queue_url: "{{ ansible_eda.event.spotmax.queue_url }}"
    receipt_handles: "{{ planned.plan.receipt_handles }}"
    handled_tags: "{{ planned.plan.handled_tags }}"

- name: Mark two instances as handled after a manual drain
  spotmax.maxgroup.interruption_ack:
    handled_tags:
      i-0123456789abcdef0: spot_interruption
      i-0fedcba9876543210: spot_interruption rebalance
"""

RETURN = r"""
acknowledgement:
  description: What was (in check mode, would be) done.
  returned: always
  type: dict
  contains:
    deleted:
      description: Receipt handles whose messages were deleted.
      type: list
      elements: str
      sample: ["AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"]
    failed:
      description: Receipt handles SQS refused, with its error code and message.
      type: list
      elements: dict
      sample:
        - receipt_handle: bogus
          code: ReceiptHandleIsInvalid
          message: The input receipt handle "bogus" is not a valid receipt handle.
          sender_fault: true
    tagged:
      description: Instances whose tag was written, with the new value.
      type: dict
      sample: {"i-0123456789abcdef0": "spot_interruption"}
    unchanged:
      description: Instances whose tag already had the wanted value.
      type: list
      elements: str
      sample: []
    missing:
      description: Instances that no longer exist, left out of the tag write.
      type: list
      elements: str
      sample: []
diff:
  description: With C(--diff), the tag values of the instances written and the receipt handles deleted.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: C({handled_tags, receipt_handles}) before the run; a missing tag is null.
      type: dict
      sample: {"handled_tags": {"i-0123456789abcdef0": null}, "receipt_handles": ["AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"]}
    after:
      description: C({handled_tags, receipt_handles}) after the run.
      type: dict
      sample: {"handled_tags": {"i-0123456789abcdef0": "spot_interruption"}, "receipt_handles": []}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2 as ec2_utils
from ansible_collections.spotmax.maxgroup.plugins.module_utils import interruption
from ansible_collections.spotmax.maxgroup.plugins.module_utils import sqs as sqs_utils
from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import tag_map

TAG_VALUE_LIMIT = 256


def validate(module):
    params = module.params
    if params["concurrency"] < 1:
        module.fail_json(msg=f"concurrency: {params['concurrency']} is not allowed; use an integer >= 1")
    if params["receipt_handles"] and not params["queue_url"]:
        module.fail_json(msg="queue_url: a queue URL is required when receipt_handles is not empty")
    for instance_id, value in params["handled_tags"].items():
        if not interruption.valid_instance_id(instance_id):
            module.fail_json(
                msg=f"handled_tags: key {instance_id!r} is not allowed; use EC2 instance ids ({interruption.ID_FORMAT})"
            )
        words = value.split() if isinstance(value, str) else []
        if not words or len(value) > TAG_VALUE_LIMIT or any(word not in interruption.KINDS for word in words):
            module.fail_json(
                msg=f"handled_tags: value {value!r} of {instance_id} is not allowed; use space-separated kinds "
                f"from {', '.join(interruption.KINDS)}"
            )


def write_tags(ec2, calls, concurrency):
    """Run the CreateTags calls; returns the instance ids EC2 no longer knows (left out of the calls)."""

    def write(call):
        value, ids = call
        missing = []
        while ids:
            try:
                ec2.create_tags(aws_retry=True, Resources=ids, Tags=[{"Key": interruption.HANDLED_KEY, "Value": value}])
                return missing
            except is_boto3_error_code("InvalidInstanceID.NotFound") as exc:
                gone = set(ec2_utils.not_found_ids(str(exc))) & set(ids)
                if not gone:
                    raise
                missing.extend(sorted(gone))
                ids = [instance_id for instance_id in ids if instance_id not in gone]
        return missing

    return [instance_id for missing in ec2_utils.run_concurrently(write, calls, concurrency) for instance_id in missing]


def delete_messages(sqs, queue_url, handles, concurrency):
    def delete(batch):
        try:
            return sqs_utils.delete_batch(sqs, queue_url, batch)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            failed = [{"receipt_handle": h, "code": code, "message": str(exc), "sender_fault": False} for h in batch]
            return [], failed

    outcomes = ec2_utils.run_concurrently(delete, sqs_utils.delete_batches(handles), concurrency)
    return [h for deleted, failed in outcomes for h in deleted], [f for deleted, failed in outcomes for f in failed]


def main():
    argument_spec = dict(
        queue_url=dict(type="str"),
        receipt_handles=dict(type="list", elements="str", default=[], no_log=False),
        handled_tags=dict(type="dict", default={}),
        concurrency=dict(type="int", default=10),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    params = module.params
    concurrency = params["concurrency"]
    wanted = {instance_id: " ".join(value.split()) for instance_id, value in params["handled_tags"].items()}
    handles = list(dict.fromkeys(params["receipt_handles"]))
    retry = AWSRetry.jittered_backoff()

    before = {}
    missing = []
    to_write = {}
    if wanted:
        ec2 = module.client("ec2", retry_decorator=retry)
        try:
            found = ec2_utils.describe_instances(ec2, list(wanted), concurrency)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            module.fail_json_aws(exc, msg="Failed to read the instances to tag")
        current = {item["InstanceId"]: tag_map(item.get("Tags")).get(interruption.HANDLED_KEY) for item in found}
        missing = sorted(set(wanted) - set(current))
        to_write = {i: v for i, v in wanted.items() if i in current and current[i] != v}
        before = {i: current[i] for i in to_write}
        if to_write and not module.check_mode:
            try:
                gone = write_tags(ec2, ec2_utils.tag_calls(to_write), concurrency)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                module.fail_json_aws(exc, msg=f"Failed to write {interruption.HANDLED_KEY}; no message was deleted")
            missing = sorted(set(missing) | set(gone))
            to_write = {i: v for i, v in to_write.items() if i not in gone}
            before = {i: v for i, v in before.items() if i not in gone}

    deleted, failed = [], []
    if handles:
        if module.check_mode:
            deleted = handles
        else:
            sqs = module.client("sqs", retry_decorator=retry)
            deleted, failed = delete_messages(sqs, params["queue_url"], handles, concurrency)

    result = {
        "changed": bool(to_write or deleted),
        "acknowledgement": {
            "deleted": deleted,
            "failed": failed,
            "tagged": to_write,
            "unchanged": sorted(set(wanted) - set(to_write) - set(missing)),
            "missing": missing,
        },
    }
    if module._diff:
        result["diff"] = {
            "before": {"handled_tags": before, "receipt_handles": deleted},
            "after": {"handled_tags": to_write, "receipt_handles": []},
        }
    if failed:
        refused = "; ".join(f"{f['receipt_handle']!r}: {f['code']}: {f['message']}" for f in failed)
        module.fail_json(msg=f"receipt_handles: SQS did not delete {len(failed)} message(s): {refused}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
