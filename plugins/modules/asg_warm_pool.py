#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_warm_pool
version_added: 0.1.0
short_description: Manage the warm pool of an EC2 Auto Scaling group
description:
  - Creates, updates or deletes the warm pool of an EC2 Auto Scaling group, so that scale-out
    takes pre-initialised (stopped, hibernated or running) instances before launching new ones.
  - AWS does not allow warm pools on groups that launch Spot instances. The module detects that from the
    group's launch template, mixed instances policy or launch configuration and fails before any write;
    keep warm capacity for a Spot group in a companion On-Demand group instead.
  - With O(pool_state=hibernated) the group's launch template must enable hibernation.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  name:
    description: Name of the Auto Scaling group.
    type: str
    required: true
  state:
    description: Whether the group has a warm pool.
    type: str
    choices: [present, absent]
    default: present
  pool_state:
    description: The state instances wait in while in the pool.
    type: str
    choices: [stopped, running, hibernated]
    default: stopped
  min_size:
    description: Minimum number of instances the pool keeps, whatever the group's desired capacity.
    type: int
    default: 0
  max_group_prepared_capacity:
    description:
      - Maximum number of instances in the group and its pool together (excluding terminated ones).
      - Omit it for AWS's default, the group's maximum size minus its desired capacity.
    type: int
  reuse_on_scale_in:
    description: Return instances to the pool on scale-in instead of terminating them.
    type: bool
    default: false
  wait:
    description:
      - With O(state=present), wait until the pool holds O(min_size) instances in O(pool_state).
      - With O(state=absent), wait until the pool and its instances are gone.
    type: bool
    default: false
  wait_timeout:
    description: How many seconds to wait when O(wait=true).
    type: int
    default: 600
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
- name: Keep two hibernated instances ready for the standby group
  spotmax.maxgroup.asg_warm_pool:
    name: web-standby
    pool_state: hibernated
    min_size: 2
    reuse_on_scale_in: true
    wait: true

- name: Cap the prepared capacity of group and pool at 10 instances
  spotmax.maxgroup.asg_warm_pool:
    name: web-standby
    max_group_prepared_capacity: 10

- name: Remove the warm pool and wait until its instances are gone
  spotmax.maxgroup.asg_warm_pool:
    name: web-standby
    state: absent
    wait: true
"""

RETURN = r"""
warm_pool:
  description: The warm pool after the run; empty when the group has none.
  returned: always
  type: dict
  contains:
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

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import warm_pool as wp

POLL_SECONDS = 5


def read_pool(client, name):
    configuration, instances = asg.describe_warm_pool(client, name)
    status = (configuration or {}).get("Status")
    return wp.current_config(configuration), instances, status


def wait_for(module, client, name, done):
    deadline = time.monotonic() + module.params["wait_timeout"]
    while True:
        current, instances, status = read_pool(client, name)
        if done(current, instances, status):
            return current, instances, status
        if time.monotonic() >= deadline:
            module.fail_json(
                msg=f"wait_timeout: the warm pool of {name!r} did not reach the wanted state "
                f"within {module.params['wait_timeout']} seconds",
                warm_pool=wp.describe(current, instances, status),
            )
        time.sleep(POLL_SECONDS)


def ensure_absent(module, client, name, current, instances, status):
    changed = current is not None and status != "PendingDelete"
    if changed and not module.check_mode:
        client.delete_warm_pool(aws_retry=True, AutoScalingGroupName=name)
    if module.params["wait"] and current is not None and not module.check_mode:
        current, instances, status = wait_for(module, client, name, lambda c, i, _s: c is None and not i)
    elif not module.check_mode and changed:
        current, instances, status = read_pool(client, name)
    after = None if module.check_mode else current
    return changed, after, instances if after is not None else [], status


def ensure_present(module, client, ec2, group, current, instances, status):
    params = module.params
    name = params["name"]
    wanted = wp.wanted_config(
        params["pool_state"], params["min_size"], params["max_group_prepared_capacity"], params["reuse_on_scale_in"]
    )
    template = asg.launch_template_data(ec2, wp.launch_template_spec(group))
    launch_configuration = asg.describe_launch_configuration(client, group.get("LaunchConfigurationName"))
    wp.check_group(group, template, params["pool_state"], launch_configuration)
    if status == "PendingDelete":
        module.fail_json(
            msg=f"name: the warm pool of {name!r} is being deleted; run again once it is gone "
            "(or remove it with state=absent and wait=true first)"
        )

    changed = current != wanted
    if changed and not module.check_mode:
        client.put_warm_pool(aws_retry=True, **wp.put_request(name, current, wanted))
    if module.check_mode:
        return changed, wanted, instances, status
    if params["wait"]:
        return (
            changed,
            *wait_for(
                module,
                client,
                name,
                lambda c, i, _s: c is not None and wp.warmed_count(i, c["PoolState"]) >= c["MinSize"],
            ),
        )
    if changed:
        return (changed, *read_pool(client, name))
    return changed, current, instances, status


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        pool_state=dict(type="str", choices=list(wp.POOL_STATES), default="stopped"),
        min_size=dict(type="int", default=0),
        max_group_prepared_capacity=dict(type="int"),
        reuse_on_scale_in=dict(type="bool", default=False),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["name"]
    if params["wait_timeout"] < 0:
        module.fail_json(msg=f"wait_timeout: {params['wait_timeout']} is not allowed; use a number of seconds >= 0")
    try:
        if params["state"] == "present":
            # Validates min_size / max_group_prepared_capacity before the first API call.
            wp.wanted_config(
                params["pool_state"],
                params["min_size"],
                params["max_group_prepared_capacity"],
                params["reuse_on_scale_in"],
            )
    except wp.WarmPoolError as exc:
        module.fail_json(msg=str(exc))

    retry = AWSRetry.jittered_backoff()
    client = module.client("autoscaling", retry_decorator=retry)
    ec2 = module.client("ec2", retry_decorator=retry)
    try:
        group = asg.describe_group(client, name)
        if group is None:
            module.fail_json(msg=f"name: Auto Scaling group {name!r} does not exist in this region")
        before, instances, status = read_pool(client, name)
        if params["state"] == "absent":
            changed, after, instances, status = ensure_absent(module, client, name, before, instances, status)
        else:
            changed, after, instances, status = ensure_present(module, client, ec2, group, before, instances, status)
    except wp.WarmPoolError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to manage the warm pool of Auto Scaling group {name!r}")

    result = dict(changed=changed, warm_pool=wp.describe(after, instances, status))
    if module._diff:
        result["diff"] = dict(before=wp.describe(before, []), after=wp.describe(after, []))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
