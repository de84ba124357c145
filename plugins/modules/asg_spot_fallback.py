#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: asg_spot_fallback
version_added: 0.1.0
short_description: Fall back from Spot to On-Demand when Spot capacity is missing, and return to Spot
description:
  - O(state=on_demand) checks groups with a mixed instances policy. A group whose latest launch failed
    for lack of Spot capacity while it is short of its desired capacity gets an On-Demand share of
    100 % above its base (C(UpdateAutoScalingGroup)), so Auto Scaling meets the desired capacity with
    On-Demand instances. The group records when (tag C(spotmax:od_fallback_at), UTC) and the
    distribution it had (tag C(spotmax:od_fallback_from), C(<base>/<percentage>)). Groups tagged
    C(spotmax:is_enable_od_fallback=false) are left alone.
  - O(state=spot) works on groups that fell back. Once fallback instances have lived
    C(spotmax:od_least_live_mins), the recorded distribution is restored, so launches are Spot again;
    the On-Demand instances above the configured share are then renewed launch-first with
    M(spotmax.maxgroup.asg_renew_instances) O(spotmax.maxgroup.asg_renew_instances#module:reason=on_demand).
    When none are left, the two tags are removed.
  - O(state=spot) also scales standby groups (tagged C(spotmax:standby_for)) back in once the group
    they stand by for is at its desired capacity again, by the number of their in-service instances
    that have lived C(spotmax:od_least_live_mins); with a warm pool that reuses instances on scale-in
    they go back to the pool.
  - Ages are measured on AWS's clock (the C(Date) of the API response).
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  names:
    description:
      - Groups to check. Empty means every group tagged C(spotmax:group) (O(state=on_demand)), or every
        group tagged C(spotmax:od_fallback_from) or C(spotmax:standby_for) (O(state=spot)).
    type: list
    elements: str
    default: []
  state:
    description: C(on_demand) falls back where Spot launches fail; C(spot) returns to the configured Spot share.
    type: str
    choices: [on_demand, spot]
    default: on_demand
  metrics_namespace:
    description:
      - With O(state=on_demand), also send each checked group's C(InServiceSpot) and C(InServiceOnDemand)
        (dimension C(AutoScalingGroupName)) to this CloudWatch namespace, for the fleet dashboard
        (M(spotmax.maxgroup.cloudwatch_dashboard)). Empty sends nothing.
      - Metrics are observations, not changes of the fleet; they do not make the task changed. Check mode sends none.
    type: str
    default: ""
  force:
    description:
      - With O(state=on_demand), fall back without a failed Spot launch (for instance after a
        renewal round found no Spot capacity).
    type: bool
    default: false
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
- name: Fall back to On-Demand where Spot launches fail for lack of capacity
  spotmax.maxgroup.asg_spot_fallback:
    state: on_demand

- name: Return to Spot where the fallback instances have lived long enough
  spotmax.maxgroup.asg_spot_fallback:
    state: spot
"""

RETURN = r"""
groups:
  description: One entry per group checked.
  returned: always
  type: list
  elements: dict
  contains:
    group:
      description: The group's name.
      type: str
    action:
      description:
        - C(fallback) (On-Demand share set to 100 %), C(restore) (recorded distribution back, fallback
          instances still to renew), C(finish) (distribution back and fallback tags removed),
          C(scale_in) (a standby group scaled back in) or C(none).
      type: str
    reason:
      description: Why nothing was done (empty otherwise).
      type: str
  sample: [{"group": "web-spot", "action": "fallback", "reason": ""}]
changed_groups:
  description: Names of the groups changed (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
capacity:
  description: In-service Spot and On-Demand instances per checked group, as sent to O(metrics_namespace).
  returned: when O(state=on_demand)
  type: dict
  sample: {"web-spot": {"spot": 3, "on_demand": 1}}
"""

from datetime import UTC, datetime

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import fallback, metrics, renewal
from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import api_tag
from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import MEMBERSHIP_KEY, tag_map
from ansible_collections.spotmax.maxgroup.plugins.module_utils.replacement import STANDBY_KEY


def decide_on_demand(client, groups, now, force):
    decisions = []
    for group in groups:
        activities = []
        if not force and fallback.distribution(group) is not None:
            reply = client.describe_scaling_activities(
                aws_retry=True, AutoScalingGroupName=group["AutoScalingGroupName"], MaxRecords=20
            )
            activities = reply.get("Activities", [])
        decisions.append(fallback.fallback(group, activities, now, force))
    return decisions


def send_capacity(module, ec2, groups):
    """The groups' in-service Spot / On-Demand split, sent to the metrics namespace unless empty or checking."""
    datums = metrics.capacity(groups, asg.member_instances(ec2, groups))
    namespace = module.params["metrics_namespace"]
    if namespace and datums and not module.check_mode:
        cloudwatch = module.client("cloudwatch", retry_decorator=AWSRetry.jittered_backoff())
        now = datetime.now(UTC)
        for batch in metrics.calls(datums):
            cloudwatch.put_metric_data(
                aws_retry=True, Namespace=namespace, MetricData=[metrics.to_api(datum, now) for datum in batch]
            )
    split = {}
    for datum in datums:
        key = "spot" if datum["metric_name"] == "InServiceSpot" else "on_demand"
        split.setdefault(datum["dimensions"][metrics.GROUP_DIMENSION], {})[key] = int(datum["value"])
    return split


def decide_spot(client, ec2, groups, now):
    served_names = sorted({tag_map(g.get("Tags")).get(STANDBY_KEY) for g in groups} - {None, ""})
    served = {group["AutoScalingGroupName"]: group for group in asg.describe_groups(client, served_names)}
    instances = asg.member_instances(ec2, groups)
    decisions = []
    for group in groups:
        stands_by = tag_map(group.get("Tags")).get(STANDBY_KEY)
        if stands_by:
            decisions.append(fallback.scale_in_standby(group, served.get(stands_by), instances, now))
        else:
            decisions.append(fallback.revert(group, instances, now))
    return decisions


def apply(client, decisions):
    """Distributions and capacities group by group; the fallback tags of all groups in batched calls."""
    put, delete = [], []
    for decision in decisions:
        name, action = decision["group"], decision["action"]
        if decision.get("policy") is not None:
            client.update_auto_scaling_group(
                aws_retry=True, AutoScalingGroupName=name, MixedInstancesPolicy=decision["policy"]
            )
        if action == "fallback":
            put.extend(api_tag(name, key, value, False) for key, value in decision["tags"].items())
        elif action == "finish":
            delete.extend(api_tag(name, key) for key in (renewal.FALLBACK_AT_KEY, renewal.FALLBACK_FROM_KEY))
        elif action == "scale_in":
            client.set_desired_capacity(
                aws_retry=True, AutoScalingGroupName=name, DesiredCapacity=decision["desired"], HonorCooldown=False
            )
    asg.create_or_update_tags(client, put)
    asg.delete_tags(client, delete)


def writes(decision, group):
    """Whether a decision changes anything (a finish on a group without the tags and policy does not)."""
    if decision["action"] in ("fallback", "scale_in", "restore"):
        return decision["action"] != "restore" or decision["policy"] is not None
    if decision["action"] == "finish":
        tags = tag_map(group.get("Tags"))
        return decision["policy"] is not None or renewal.FALLBACK_FROM_KEY in tags or renewal.FALLBACK_AT_KEY in tags
    return False


def view(group):
    distribution = fallback.distribution(group) or {}
    tags = tag_map(group.get("Tags"))
    return {
        "desired_capacity": group["DesiredCapacity"],
        "on_demand_base_capacity": distribution.get("OnDemandBaseCapacity"),
        "on_demand_percentage_above_base_capacity": distribution.get("OnDemandPercentageAboveBaseCapacity"),
        "od_fallback_at": tags.get(renewal.FALLBACK_AT_KEY),
        "od_fallback_from": tags.get(renewal.FALLBACK_FROM_KEY),
    }


def planned_view(group, decision):
    after = view(group)
    if decision.get("policy") is not None:
        distribution = decision["policy"]["InstancesDistribution"]
        after["on_demand_base_capacity"] = distribution["OnDemandBaseCapacity"]
        after["on_demand_percentage_above_base_capacity"] = distribution["OnDemandPercentageAboveBaseCapacity"]
    if decision["action"] == "fallback":
        after.update({key.split(":")[1]: value for key, value in decision["tags"].items()})
    elif decision["action"] == "finish":
        after.update({"od_fallback_at": None, "od_fallback_from": None})
    elif decision["action"] == "scale_in":
        after["desired_capacity"] = decision["desired"]
    return after


def main():
    argument_spec = dict(
        names=dict(type="list", elements="str", default=[]),
        state=dict(type="str", choices=["on_demand", "spot"], default="on_demand"),
        force=dict(type="bool", default=False),
        metrics_namespace=dict(type="str", default=""),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    names, state = module.params["names"], module.params["state"]
    if any(not name or not name.strip() for name in names):
        module.fail_json(msg="names: empty group names are not allowed; use Auto Scaling group names")
    problem = (
        metrics.namespace_error(module.params["metrics_namespace"]) if module.params["metrics_namespace"] else None
    )
    if problem:
        module.fail_json(msg=problem.replace("namespace:", "metrics_namespace:", 1))
    if module.params["force"] and state != "on_demand":
        module.fail_json(msg="force: true is allowed with state=on_demand only")
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceContention"])
    client = module.client("autoscaling", retry_decorator=retry)
    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        keys = (MEMBERSHIP_KEY,) if state == "on_demand" else (renewal.FALLBACK_FROM_KEY, STANDBY_KEY)
        groups, missing = asg.describe_named_or_tagged(client, names, keys)
        if missing:
            module.fail_json(msg=f"names: no Auto Scaling group named {', '.join(missing)}")
        now = asg.aws_now(client)
        if state == "on_demand":
            decisions = decide_on_demand(client, groups, now, module.params["force"])
        else:
            decisions = decide_spot(client, ec2, groups, now)
        by_name = {group["AutoScalingGroupName"]: group for group in groups}
        changing = [d for d in decisions if writes(d, by_name[d["group"]])]
        if not module.check_mode:
            apply(client, changing)
        if state == "on_demand":
            capacity = send_capacity(module, ec2, asg.describe_groups(client, sorted(by_name)) if by_name else [])
    except renewal.RenewalError as exc:
        module.fail_json(msg=str(exc))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to move groups to {state}")

    output = {
        "changed": bool(changing),
        **({"capacity": capacity} if state == "on_demand" else {}),
        "groups": [{"group": d["group"], "action": d["action"], "reason": d["reason"]} for d in decisions],
        "changed_groups": [d["group"] for d in changing],
    }
    if module._diff:
        output["diff"] = {
            "before": {d["group"]: view(by_name[d["group"]]) for d in changing},
            "after": {d["group"]: planned_view(by_name[d["group"]], d) for d in changing},
        }
    module.exit_json(**output)


if __name__ == "__main__":
    main()
