#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_lifecycle_action
version_added: 0.1.0
short_description: Complete or extend the lifecycle actions of many Auto Scaling instances
description:
  - Completes (C(state=completed)) the pending lifecycle actions of instances held in
    C(Pending:Wait) or C(Terminating:Wait) by a lifecycle hook, or records a heartbeat
    (C(state=heartbeat)) so a drain that takes longer than the hook's heartbeat timeout keeps its instance.
  - Instances are looked up 50 per call; the per-instance calls (the API has no batch form) run concurrently.
  - An instance that is no longer waiting (its action was completed, or it timed out) is reported and
    left alone, so a repeated run changes nothing.
  - With O(keep_alive), heartbeats repeat every O(heartbeat_interval) seconds until no action waits any
    more (another task completed them) or O(keep_alive) seconds have passed. Run it with C(async) and
    C(poll=0) next to a long drain, then complete the actions; the keep-alive ends on its next round.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  actions:
    description: The lifecycle actions.
    type: list
    elements: dict
    required: true
    suboptions:
      instance_id:
        description: The instance waiting in the lifecycle hook.
        type: str
        required: true
      hook_name:
        description: The lifecycle hook's name.
        type: str
        required: true
      group:
        description: The Auto Scaling group; looked up from the instance when omitted.
        type: str
      token:
        description: The lifecycle action token from the hook's notification; the instance id is used when omitted.
        type: str
  state:
    description: Complete the actions, or record a heartbeat for them.
    type: str
    choices: [completed, heartbeat]
    default: completed
  result:
    description: With O(state=completed), C(CONTINUE) lets the transition go on, C(ABANDON) stops it.
    type: str
    choices: [CONTINUE, ABANDON]
    default: CONTINUE
  concurrency:
    description: How many API calls run at once.
    type: int
    default: 10
  keep_alive:
    description:
      - With O(state=heartbeat), how many seconds to go on recording heartbeats. V(0) records one round.
      - Rounds stop early as soon as none of the actions is waiting any more.
    type: int
    default: 0
  heartbeat_interval:
    description:
      - Seconds between heartbeat rounds with O(keep_alive). Keep it below the hooks' heartbeat timeout.
    type: int
    default: 60
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Keep the instances while their drain goes on
  spotmax.maxgroup.asg_lifecycle_action:
    actions: "{{ terminating }}"
    state: heartbeat

- name: Keep them for up to 15 minutes, in the background, while the drain runs
  spotmax.maxgroup.asg_lifecycle_action:
    actions: "{{ terminating }}"
    state: heartbeat
    keep_alive: 900
    heartbeat_interval: 30
  async: 960
  poll: 0

- name: Let the terminations go on
  spotmax.maxgroup.asg_lifecycle_action:
    actions:
      - instance_id: i-0123456789abcdef0
        hook_name: maxgroup-drain
        group: web-spot
        token: 0befc9ed-7f0a-4c1b-9d3e-11aa22bb33cc
"""

RETURN = r"""
lifecycle_actions:
  description: One entry per requested action.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance.
      type: str
      sample: i-0123456789abcdef0
    group:
      description: The instance's group, or null when it is in none.
      type: str
      sample: web-spot
    lifecycle_state:
      description: The instance's lifecycle state before the run.
      type: str
      sample: "Terminating:Wait"
    done:
      description: Whether the action was completed or heartbeat recorded (in check mode, would be).
      type: bool
      sample: true
    reason:
      description: Why nothing was done, when nothing was.
      type: str
      sample: "not waiting in a lifecycle hook (state Terminated)"
rounds:
  description: How many heartbeat rounds ran (1 without O(keep_alive)).
  returned: always
  type: int
  sample: 3
"""

import time
from concurrent.futures import ThreadPoolExecutor

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_message
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import lifecycle

# The action ended between our read and our call (completed elsewhere or timed out).
GONE = "No active Lifecycle Action found"


def call(client, state, result, action, entry):
    request = {"AutoScalingGroupName": entry["group"], "LifecycleHookName": action["hook_name"]}
    if action.get("token"):
        request["LifecycleActionToken"] = action["token"]
    else:
        request["InstanceId"] = action["instance_id"]
    try:
        if state == "completed":
            client.complete_lifecycle_action(aws_retry=True, LifecycleActionResult=result, **request)
        else:
            client.record_lifecycle_action_heartbeat(aws_retry=True, **request)
    except is_boto3_error_message(GONE):
        entry["reason"] = "the lifecycle action ended before it could be completed"
        return entry, None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:  # pylint: disable=duplicate-except
        return entry, exc
    entry["done"] = True
    return entry, None


def main():
    argument_spec = dict(
        actions=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                instance_id=dict(type="str", required=True),
                hook_name=dict(type="str", required=True),
                group=dict(type="str"),
                token=dict(type="str", no_log=False),
            ),
        ),
        state=dict(type="str", choices=["completed", "heartbeat"], default="completed"),
        result=dict(type="str", choices=["CONTINUE", "ABANDON"], default="CONTINUE"),
        concurrency=dict(type="int", default=10),
        keep_alive=dict(type="int", default=0),
        heartbeat_interval=dict(type="int", default=60),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["concurrency"] < 1:
        module.fail_json(msg=f"concurrency: {params['concurrency']} is not allowed; use an integer >= 1")
    for name, minimum in (("keep_alive", 0), ("heartbeat_interval", 1)):
        if params[name] < minimum:
            module.fail_json(msg=f"{name}: {params[name]} is not allowed; use an integer >= {minimum}")
    if params["keep_alive"] and params["state"] != "heartbeat":
        keep_alive = params["keep_alive"]
        module.fail_json(msg=f"keep_alive: {keep_alive} is not allowed with state=completed; use state=heartbeat")
    client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff())
    stop_at = time.monotonic() + params["keep_alive"]
    results, rounds = one_round(module, client), 1
    changed = any(entry["done"] for entry in results)
    # Keep-alive rounds: only while some action still waits and time is left.
    while not module.check_mode and any(entry["done"] for entry in results):
        pause = min(params["heartbeat_interval"], stop_at - time.monotonic())
        if pause <= 0:
            break
        time.sleep(pause)
        results = one_round(module, client)
        rounds += 1
    module.exit_json(changed=changed, lifecycle_actions=results, rounds=rounds)


def one_round(module, client):
    """Describe the actions' instances, then complete or heartbeat those still waiting; fail on an API error."""
    params = module.params
    actions = params["actions"]
    try:
        described = asg.describe_instances(client, [action["instance_id"] for action in actions]) if actions else []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Failed to describe the instances of the lifecycle actions")
    planned = lifecycle.plan(actions, described)
    due = [(action, entry) for action, entry in planned if entry["reason"] is None]
    results = [entry for action, entry in planned]
    if module.check_mode:
        for entry in results:
            entry["done"] = entry["reason"] is None
        return results

    with ThreadPoolExecutor(max_workers=min(params["concurrency"], max(len(due), 1))) as pool:
        outcomes = list(pool.map(lambda pair: call(client, params["state"], params["result"], *pair), due))
    failed = [(entry, exc) for entry, exc in outcomes if exc is not None]
    if failed:
        module.fail_json_aws(
            failed[0][1],
            msg=f"Failed the lifecycle actions of {', '.join(e['instance_id'] for e, x in failed)}",
            lifecycle_actions=results,
            changed=any(entry["done"] for entry in results),
        )
    return results


if __name__ == "__main__":
    main()
