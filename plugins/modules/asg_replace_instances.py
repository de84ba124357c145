#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_replace_instances
version_added: 0.1.0
short_description: Start replacements for interrupted Auto Scaling instances at once
description:
  - For instances about to be reclaimed (a Spot interruption warning, a rebalance recommendation),
    starts their replacements now instead of after they are gone.
  - Each instance is detached from its group without decrementing the desired capacity, so the
    group launches a replacement at once (from its warm pool when it has one). The detached
    instance keeps running until EC2 reclaims it, so its drain and deregistration can finish.
  - When a group has a standby group (an On-Demand group tagged C(spotmax:standby_for) with the
    group's name, usually with a hibernated warm pool), the standby group is also scaled out by as
    many instances, capped at its maximum size, so warm capacity serves in seconds.
  - An instance of a renewal round in progress (tagged C(spotmax:renewing) by
    M(spotmax.maxgroup.asg_renew_instances)) already has its replacement launched, so it is detached with the
    desired capacity decremented and no standby capacity is added for it. Its round then retires the others
    and leaves the group at the capacity it had before the round.
  - Instances are looked up 50 per call and detached 20 per call, the API's limits, with up to
    O(concurrency) detach calls at a time (calls refused with C(ResourceContention) while another
    update of the group is pending are retried); instances that are in no group (already detached
    or gone) are skipped, so a repeated run changes nothing.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  instance_ids:
    description: The instances to replace; they may belong to different groups.
    type: list
    elements: str
    required: true
  use_standby:
    description: Scale out the groups' standby groups too.
    type: bool
    default: true
  concurrency:
    description: Most C(DetachInstances) calls at the same time (1 to 20).
    type: int
    default: 4
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Start replacements for the instances of a Spot interruption batch
  spotmax.maxgroup.asg_replace_instances:
    instance_ids: "{{ interrupted | map(attribute='instance_id') }}"
  register: replaced

- name: Show which standby groups were scaled out
  ansible.builtin.debug:
    var: replaced.replacement.standby
"""

RETURN = r"""
replacement:
  description: What was (or, in check mode, would be) done.
  returned: always
  type: dict
  contains:
    detached:
      description: Detached instance ids by group name.
      type: dict
      sample: {"web-spot": ["i-0123456789abcdef0"]}
    detached_renewed:
      description:
        - Instances of renewal rounds in progress detached with the desired capacity decremented, by group name.
      type: dict
      sample: {"web-spot": ["i-0a1b2c3d4e5f60718"]}
    standby:
      description: Standby groups scaled out, with their desired capacity before and after.
      type: dict
      sample: {"web-spot-standby": {"from": 0, "to": 1, "capped": false}}
    skipped:
      description: Instances not detached, with the reason.
      type: list
      elements: dict
      sample: [{"instance_id": "i-0fedcba9876543210", "reason": "not in an Auto Scaling group"}]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2 as ec2_utils
from ansible_collections.spotmax.maxgroup.plugins.module_utils import replacement
from ansible_collections.spotmax.maxgroup.plugins.module_utils.renewal import RENEWING_KEY

INSTANCE_ID_PREFIX = "i-"
MAX_CONCURRENCY = 20


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        use_standby=dict(type="bool", default=True),
        concurrency=dict(type="int", default=4),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    instance_ids = module.params["instance_ids"]
    wrong = [value for value in instance_ids if not value.startswith(INSTANCE_ID_PREFIX)]
    if wrong:
        module.fail_json(msg=f"instance_ids: {', '.join(map(repr, wrong))} not allowed; use EC2 instance ids (i-...)")
    concurrency = module.params["concurrency"]
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        module.fail_json(msg=f"concurrency: {concurrency} is not allowed; use an integer from 1 to {MAX_CONCURRENCY}")
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceContention"])
    client = module.client("autoscaling", retry_decorator=retry)
    try:
        described = asg.describe_instances(client, instance_ids) if instance_ids else []
        standby = {}
        if module.params["use_standby"] and described:
            standby = replacement.standby_groups(asg.describe_groups_with_tag(client, replacement.STANDBY_KEY))
        renewing: set[str] = set()
        candidates = replacement.detachable(instance_ids, described)
        if candidates:
            ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
            renewing = set(ec2_utils.tag_values(ec2, candidates, RENEWING_KEY))
        wanted = replacement.plan(instance_ids, described, standby, module.params["use_standby"], renewing)
        if not module.check_mode:
            asg.detach_instances(client, wanted["detach"], decrement=False, concurrency=concurrency)
            asg.detach_instances(client, wanted["detach_renewed"], decrement=True, concurrency=concurrency)
            for group, change in wanted["standby"].items():
                client.set_desired_capacity(aws_retry=True, AutoScalingGroupName=group, DesiredCapacity=change["to"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to replace instances {', '.join(instance_ids)}")

    result = {
        "detached": wanted["detach"],
        "detached_renewed": wanted["detach_renewed"],
        "standby": wanted["standby"],
        "skipped": wanted["skipped"],
    }
    output = {
        "changed": bool(wanted["detach"] or wanted["detach_renewed"] or wanted["standby"]),
        "replacement": result,
    }
    if module._diff:
        output["diff"] = {
            "before": {
                "detached": {},
                "detached_renewed": {},
                "standby": {name: c["from"] for name, c in wanted["standby"].items()},
            },
            "after": {
                "detached": wanted["detach"],
                "detached_renewed": wanted["detach_renewed"],
                "standby": {name: c["to"] for name, c in wanted["standby"].items()},
            },
        }
    module.exit_json(**output)


if __name__ == "__main__":
    main()
