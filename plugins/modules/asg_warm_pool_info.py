#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_warm_pool_info
version_added: 0.1.0
short_description: List the warm pools of EC2 Auto Scaling groups
description:
  - Returns the warm pool of one Auto Scaling group, or of every group in the region that has one.
  - Groups and their pool settings come from C(DescribeAutoScalingGroups), 100 groups per call; the
    pool's instances come from one C(DescribeWarmPool) call per 50 instances, made only for pools
    that hold instances.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  name:
    description:
      - Name of the Auto Scaling group.
      - Omit it to list the pools of all groups in the region. A named group that does not exist is an error.
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Read the warm pool of the standby group
  spotmax.maxgroup.asg_warm_pool_info:
    name: web-standby
  register: standby

- name: Show how many instances wait in it
  ansible.builtin.debug:
    msg: "{{ standby.warm_pools[0].instances | default([]) | length }} instances are warm"

- name: List every warm pool in the region
  spotmax.maxgroup.asg_warm_pool_info:
  register: pools

- name: Name the groups whose pool is being deleted
  ansible.builtin.debug:
    msg: "{{ pools.warm_pools | selectattr('status', 'equalto', 'PendingDelete')
             | map(attribute='auto_scaling_group_name') }}"
"""

RETURN = r"""
warm_pools:
  description: The warm pools found, sorted by group name; empty when no group (or not the named group) has one.
  returned: always
  type: list
  elements: dict
  contains:
    auto_scaling_group_name:
      description: Name of the group the pool belongs to.
      type: str
      sample: web-standby
    pool_state:
      description: State of the instances in the pool.
      type: str
      sample: stopped
    min_size:
      description: Minimum number of instances in the pool.
      type: int
      sample: 2
    max_group_prepared_capacity:
      description: Maximum prepared capacity; null means AWS's default (max size minus desired capacity).
      type: int
      sample: 10
    instance_reuse_policy:
      description: Whether scaled-in instances return to the pool.
      type: dict
      sample: {"reuse_on_scale_in": true}
    status:
      description: Status of the pool, C(PendingDelete) while it is being deleted, else null.
      type: str
      sample: null
    instances:
      description: Instances in the pool.
      type: list
      elements: dict
      contains:
        instance_id:
          description: The instance ID.
          type: str
          sample: i-0123456789abcdef0
        lifecycle_state:
          description: Lifecycle state in the pool, for example C(Warmed:Stopped).
          type: str
          sample: "Warmed:Stopped"
        instance_type:
          description: The instance type.
          type: str
          sample: m5.large
        availability_zone:
          description: The Availability Zone.
          type: str
          sample: us-east-1a
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import warm_pool as wp


def main():
    module = AnsibleAWSModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True)
    name = module.params["name"]
    if name is not None and not name.strip():
        module.fail_json(msg="name: an empty name is not allowed; give a group name or omit the option")
    client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff())
    try:
        groups = asg.describe_groups(client, None if name is None else [name])
        if name is not None and not groups:
            module.fail_json(msg=f"name: Auto Scaling group {name!r} does not exist in this region")
        pools = []
        for group in wp.groups_with_pool(groups):
            # An empty pool needs no DescribeWarmPool call: the group description already has its settings.
            instances = (
                asg.describe_warm_pool(client, group["AutoScalingGroupName"])[1]
                if group.get("WarmPoolSize") != 0
                else []
            )
            pools.append(wp.describe_group_pool(group, instances))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Failed to read warm pools")
    module.exit_json(changed=False, warm_pools=pools)


if __name__ == "__main__":
    main()
