#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_renew_instances
version_added: 0.1.0
short_description: Renew Auto Scaling instances launch-first (duration guarantee, revert to Spot)
description:
  - Replaces instances of Auto Scaling groups launch-first, a round at a time, never taking the group
    below its desired capacity.
  - O(reason=duration) selects the instances of groups with duration tags (C(spotmax:instance_duration_hours),
    C(spotmax:gurantee_living_mins) or its correct spelling C(spotmax:guarantee_living_mins)) that have
    lived their guarantee. O(reason=on_demand) selects, in groups that fell back to On-Demand
    (C(spotmax:od_fallback_from), see M(spotmax.maxgroup.asg_spot_fallback)), the On-Demand instances
    above the configured On-Demand share that have lived C(spotmax:od_least_live_mins).
  - O(step=launch) marks up to C(spotmax:max_num_of_terminated_one_time) selected instances per group
    with the tag C(spotmax:renewing) (the desired capacity before the round), raises the desired
    capacity by their number and waits up to O(wait_timeout) seconds until as many unmarked instances
    are InService as that capacity. A group at its maximum size is skipped with the reason, and so is
    a group with C(spotmax:persistence_dev) in several availability zones (a replacement could start in
    another zone than the data volume it must receive). A round already in progress (marked instances) is
    resumed, never started twice.
  - O(step=retire) terminates the marked instances of groups whose replacements are in service with
    C(TerminateInstanceInAutoScalingGroup), decrementing the desired capacity back, so the group's
    lifecycle hooks run. Drain and deregister them before this step.
  - O(step=cancel) ends rounds whose replacements could not launch (for instance Spot capacity is
    still missing); the desired capacity goes back to the recorded one and the marks are removed.
  - Instance ages are measured on AWS's clock (the C(Date) of the API response), so a skewed clock on
    the controller cannot renew instances early or late.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  names:
    description:
      - Groups to work on. Empty means every group carrying a duration tag (O(reason=duration)) or
        C(spotmax:od_fallback_from) (O(reason=on_demand)).
    type: list
    elements: str
    default: []
  reason:
    description: Which instances are renewed.
    type: str
    choices: [duration, on_demand]
    default: duration
  step:
    description: The step of the round to run.
    type: str
    choices: [launch, retire, cancel]
    default: launch
  wait_timeout:
    description: Seconds O(step=launch) waits for the replacements to be InService (0 to 3600; 0 does not wait).
    type: int
    default: 600
  concurrency:
    description: Most write calls at the same time (1 to 20).
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
notes:
  - In check mode nothing is written or waited for; the rounds reported are those that would start.
  - A group's other lifecycle hooks are left to their owners; the instances were drained and
    deregistered before O(step=retire), so a hook handler finds nothing left to do for them.
"""

EXAMPLES = r"""
- name: Launch replacements for instances past their guarantee
  spotmax.maxgroup.asg_renew_instances:
    reason: duration
    step: launch
  register: renewal

- name: Drain their nodes
  spotmax.maxgroup.k8s_drain_nodes:
    eks_cluster_name: prod
    instance_ids: "{{ renewal.ready_instance_ids }}"
    state: drained

- name: Retire them, decrementing the desired capacity back
  spotmax.maxgroup.asg_renew_instances:
    reason: duration
    step: retire
"""

RETURN = r"""
rounds:
  description: One entry per group with a round started, resumed, retired or cancelled.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: The group's name.
      type: str
    renewing:
      description: Instance ids renewed in this round.
      type: list
      elements: str
    base:
      description: The desired capacity before the round (what the group keeps in service).
      type: int
    desired:
      description: The desired capacity during the round (after O(step=retire) or O(step=cancel), the base).
      type: int
    ready:
      description: Whether the replacements are InService.
      type: bool
    spot_unavailable:
      description: Whether a launch since the round began failed for lack of Spot capacity.
      type: bool
  sample: [{"group": "web-spot", "renewing": ["i-0123456789abcdef0"], "base": 4, "desired": 5, "ready": true,
            "spot_unavailable": false}]
ready_instance_ids:
  description: Instances of rounds whose replacements are in service (to drain and deregister before O(step=retire)).
  returned: always
  type: list
  elements: str
retired:
  description: Instances terminated by O(step=retire).
  returned: always
  type: list
  elements: str
skipped:
  description: Groups left alone, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"group": "web-spot", "reason": "no room for launch-first replacements"}]
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2 as ec2_utils
from ansible_collections.spotmax.maxgroup.plugins.module_utils import renewal
from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import DURATION_KEYS

MAX_CONCURRENCY = 20
MAX_WAIT = 3600
POLL_SECONDS = 2


def set_desired(client, name, desired):
    client.set_desired_capacity(aws_retry=True, AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False)


def tag_instances(ec2, values, concurrency):
    def write(call):
        value, ids = call
        ec2.create_tags(aws_retry=True, Resources=ids, Tags=[{"Key": renewal.RENEWING_KEY, "Value": value}])

    ec2_utils.run_concurrently(write, ec2_utils.tag_calls(values), concurrency)


def untag_instances(ec2, ids):
    for batch in ec2_utils.chunks(sorted(ids), 1000):
        ec2.delete_tags(aws_retry=True, Resources=batch, Tags=[{"Key": renewal.RENEWING_KEY}])


def launch(module, client, ec2, groups, instances, now):
    rounds, skipped = [], []
    for group in groups:
        name = group["AutoScalingGroupName"]
        try:
            candidates = renewal.due(group, instances, now, module.params["reason"])
            plan = renewal.launch_plan(group, instances, candidates)
        except renewal.RenewalError as exc:
            module.fail_json(msg=str(exc))
        if plan["skipped"]:
            skipped.append({"group": name, "reason": plan["skipped"]})
        if plan["renewing"]:
            rounds.append(plan)
    changed = any(plan["mark"] or plan["desired"] != plan["desired_before"] for plan in rounds)
    if module.check_mode or not rounds:
        return rounds, skipped, changed
    concurrency = module.params["concurrency"]
    tag_instances(ec2, {i: str(plan["base"]) for plan in rounds for i in plan["mark"]}, concurrency)

    def raise_capacity(plan):
        if plan["desired"] != plan["desired_before"]:
            set_desired(client, plan["group"], plan["desired"])

    ec2_utils.run_concurrently(raise_capacity, rounds, concurrency)
    return rounds, skipped, changed


def wait_for(module, client, rounds, since):
    deadline = time.monotonic() + module.params["wait_timeout"]
    pending = {plan["group"]: plan for plan in rounds}
    while True:
        for group in asg.describe_groups(client, sorted(pending)):
            plan = pending[group["AutoScalingGroupName"]]
            if renewal.ready(group, plan["renewing"], plan["base"]):
                plan["ready"] = True
                del pending[plan["group"]]
        for name, plan in list(pending.items()):
            activities = client.describe_scaling_activities(aws_retry=True, AutoScalingGroupName=name, MaxRecords=20)
            if renewal.spot_failures(activities.get("Activities", []), since):
                plan["spot_unavailable"] = True
                del pending[name]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


def finish(module, client, ec2, groups, instances, step):
    """Retire (replacements in) or cancel the rounds in progress."""
    rounds, retired = [], []
    for group in groups:
        renewing, base = renewal.in_progress(group, instances)
        if not renewing:
            continue
        is_ready = renewal.ready(group, renewing, base)
        if step == "retire" and not is_ready:
            continue
        rounds.append(
            {
                "group": group["AutoScalingGroupName"],
                "renewing": renewing,
                "base": base,
                "desired": base,
                "ready": is_ready,
                "spot_unavailable": False,
                "desired_before": int(group["DesiredCapacity"]),
            }
        )
    ids = [i for plan in rounds for i in plan["renewing"]]
    if step == "retire":
        retired = ids
    if module.check_mode or not rounds:
        return rounds, retired
    if step == "retire":

        def terminate(instance_id):
            client.terminate_instance_in_auto_scaling_group(
                aws_retry=True, InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
            )

        ec2_utils.run_concurrently(terminate, ids, module.params["concurrency"])
    else:
        for plan in rounds:
            if plan["desired_before"] != plan["base"]:
                set_desired(client, plan["group"], plan["base"])
        untag_instances(ec2, ids)
    return rounds, retired


def validate(module):
    params = module.params
    if not 0 <= params["wait_timeout"] <= MAX_WAIT:
        module.fail_json(
            msg=f"wait_timeout: {params['wait_timeout']} is not allowed; use an integer from 0 to {MAX_WAIT}"
        )
    if not 1 <= params["concurrency"] <= MAX_CONCURRENCY:
        module.fail_json(
            msg=f"concurrency: {params['concurrency']} is not allowed; use an integer from 1 to {MAX_CONCURRENCY}"
        )
    empty = [name for name in params["names"] if not name or not name.strip()]
    if empty:
        module.fail_json(msg="names: empty group names are not allowed; use Auto Scaling group names")


def public(plan):
    return {
        "group": plan["group"],
        "renewing": plan["renewing"],
        "base": plan["base"],
        "desired": plan["desired"],
        "ready": bool(plan.get("ready")),
        "spot_unavailable": bool(plan.get("spot_unavailable")),
    }


def main():
    argument_spec = dict(
        names=dict(type="list", elements="str", default=[]),
        reason=dict(type="str", choices=list(renewal.REASONS), default="duration"),
        step=dict(type="str", choices=["launch", "retire", "cancel"], default="launch"),
        wait_timeout=dict(type="int", default=600),
        concurrency=dict(type="int", default=4),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceContention"])
    client = module.client("autoscaling", retry_decorator=retry)
    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    step = module.params["step"]
    try:
        keys = DURATION_KEYS if module.params["reason"] == "duration" else (renewal.FALLBACK_FROM_KEY,)
        groups, missing = asg.describe_named_or_tagged(client, module.params["names"], keys)
        if missing:
            module.fail_json(msg=f"names: no Auto Scaling group named {', '.join(missing)}")
        instances = asg.member_instances(ec2, groups, module.params["concurrency"])
        now = asg.aws_now(client)
        skipped, retired = [], []
        if step == "launch":
            rounds, skipped, changed = launch(module, client, ec2, groups, instances, now)
            if rounds and not module.check_mode and module.params["wait_timeout"] > 0:
                wait_for(module, client, rounds, now)
        else:
            rounds, retired = finish(module, client, ec2, groups, instances, step)
            changed = bool(rounds)
    except renewal.RenewalError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to renew instances ({step})")

    result = [public(plan) for plan in rounds]
    output = {
        "changed": changed,
        "rounds": result,
        "ready_instance_ids": [i for plan in result if plan["ready"] for i in plan["renewing"]],
        "retired": retired,
        "skipped": skipped,
    }
    if module._diff:
        output["diff"] = {
            "before": {plan["group"]: {"desired": plan["desired_before"]} for plan in rounds},
            "after": {plan["group"]: {"desired": plan["desired"], "renewing": plan["renewing"]} for plan in rounds},
        }
    module.exit_json(**output)


if __name__ == "__main__":
    main()
