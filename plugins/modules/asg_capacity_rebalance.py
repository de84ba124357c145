#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_capacity_rebalance
version_added: 0.1.0
short_description: Turn capacity rebalance of EC2 Auto Scaling groups on or off
description:
  - Turns capacity rebalance on or off for one or more EC2 Auto Scaling groups. With capacity
    rebalance on, a group launches a replacement for a Spot instance as soon as EC2 sends a
    rebalance recommendation for it, before the two-minute interruption notice.
  - The groups are read with C(DescribeAutoScalingGroups), 100 names per call; when any group is
    missing, the module fails naming the missing groups before any write.
  - Only the groups whose setting differs are updated, one C(UpdateAutoScalingGroup) call each, with
    up to O(concurrency) calls at a time (calls refused with C(ResourceContention) while another
    update of the group is pending are retried). A repeated run makes no write call.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  names:
    description:
      - Names of the Auto Scaling groups, at least one.
      - Every name must be non-empty and listed once.
    type: list
    elements: str
    required: true
  enabled:
    description: Whether capacity rebalance is on for the groups.
    type: bool
    required: true
  concurrency:
    description: Most C(UpdateAutoScalingGroup) calls at the same time (1 to 20).
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
- name: Replace Spot instances proactively on rebalance recommendations
  spotmax.maxgroup.asg_capacity_rebalance:
    names:
      - web-spot
      - batch-spot
    enabled: true

- name: Turn capacity rebalance off for the fleet's groups, eight updates at a time
  spotmax.maxgroup.asg_capacity_rebalance:
    names: "{{ fleet_groups | map(attribute='name') }}"
    enabled: false
    concurrency: 8
  register: rebalance

- name: Show which groups were changed
  ansible.builtin.debug:
    var: rebalance.changed_groups
"""

RETURN = r"""
groups:
  description:
    - Every group of O(names), in the order given, with its setting after the run
      (in check mode, the setting the run would leave).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the Auto Scaling group.
      type: str
      sample: web-spot
    capacity_rebalance:
      description: Whether capacity rebalance is on.
      type: bool
      sample: true
  sample: [{"name": "web-spot", "capacity_rebalance": true}]
changed_groups:
  description: Names of the groups whose setting was (in check mode, would be) changed, in the order given.
  returned: always
  type: list
  elements: str
  sample: ["web-spot"]
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import capacity_rebalance as cr


def main():
    argument_spec = dict(
        names=dict(type="list", elements="str", required=True),
        enabled=dict(type="bool", required=True),
        concurrency=dict(type="int", default=4),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        names = cr.check_names(params["names"])
        concurrency = cr.check_concurrency(params["concurrency"])
    except cr.RebalanceError as exc:
        module.fail_json(msg=str(exc))

    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceContention"])
    client = module.client("autoscaling", retry_decorator=retry)
    try:
        groups = asg.describe_groups(client, names)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to describe the Auto Scaling groups {names!r}")
    try:
        wanted = cr.plan(names, groups, params["enabled"])
    except cr.RebalanceError as exc:
        module.fail_json(msg=str(exc))

    if not module.check_mode:
        try:
            asg.update_groups(client, wanted.update_requests(), concurrency)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            module.fail_json_aws(
                exc, msg=f"Failed to update capacity rebalance of the Auto Scaling groups {wanted.changed_groups!r}"
            )

    result = dict(changed=wanted.changed, groups=wanted.groups(), changed_groups=wanted.changed_groups)
    if module._diff:
        result["diff"] = wanted.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
