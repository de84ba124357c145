#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: interruption_metrics
version_added: 0.1.0
short_description: Publish the CloudWatch metrics of an interruption batch per Auto Scaling group
description:
  - Aggregates the results of an interruption batch per Auto Scaling group (dimension C(AutoScalingGroupName)) and
    sends them with one C(PutMetricData) call (more only above the API's 1000 datums or 1 MB per call).
  - "Metrics: C(Interruptions) (instances acted on; also per kind with a C(Kind) dimension), C(Replacements)
    (instances detached for replacement), C(WarmPoolHits) (instances the group's standby group was scaled out by:
    replacements served from warm capacity), C(DrainSeconds) (drain time of the group's nodes, as statistic values:
    sample count, sum, minimum, maximum), C(DrainTimeouts) (nodes left with pods that could not be evicted),
    C(Deregistrations) (instances whose Consul services were deregistered)."
  - A metric is sent only for the inputs given; instances of the drain and deregistration results are attributed to
    groups through O(plan).
  - With a non-empty RV(spotmax.maxgroup.asg_replace_instances#module:replacement.standby), the standby groups are
    read (one C(DescribeAutoScalingGroups) per 100) to find the group each one serves (its C(spotmax:standby_for) tag).
  - Metrics are data points, not state; every run that has datums sends them.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  namespace:
    description: The CloudWatch namespace.
    type: str
    default: SpotMax
  plan:
    description: The RV(spotmax.maxgroup.interruption_plan#module:plan) of the batch.
    type: dict
  drain:
    description: The results of spotmax.maxgroup.k8s_drain_nodes for the batch, each with its C(nodes).
    type: list
    elements: dict
  replacement:
    description: The RV(spotmax.maxgroup.asg_replace_instances#module:replacement) of the batch.
    type: dict
  deregistrations:
    description: The RV(spotmax.maxgroup.consul_deregister#module:consul_deregistrations) of the batch.
    type: list
    elements: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the standby groups and returns the datums; sends nothing.
  diff_mode:
    support: none
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Publish the metrics of the batch
  spotmax.maxgroup.interruption_metrics:
    plan: "{{ planned.plan }}"
    drain: "{{ drained.results }}"
    replacement: "{{ replaced.replacement }}"
    deregistrations: "{{ deregistered.consul_deregistrations }}"

- name: Count the interruptions only, in another namespace
  spotmax.maxgroup.interruption_metrics:
    namespace: Fleet/Interruptions
    plan: "{{ planned.plan }}"
"""

RETURN = r"""
metrics:
  description: What was (in check mode, would be) sent.
  returned: always
  type: dict
  contains:
    namespace:
      description: The namespace.
      type: str
      sample: SpotMax
    calls:
      description: The number of C(PutMetricData) calls made (in check mode, that would be made).
      type: int
      sample: 1
    datums:
      description: The datums.
      type: list
      elements: dict
      contains:
        metric_name:
          description: The metric.
          type: str
          sample: Interruptions
        dimensions:
          description: Dimension name to value.
          type: dict
          sample: {"AutoScalingGroupName": "web-spot", "Kind": "spot_interruption"}
        value:
          description: The value; null for a datum with statistic values.
          type: float
          sample: 2
        statistic_values:
          description: C(sample_count), C(sum), C(minimum) and C(maximum); null for a datum with a value.
          type: dict
          sample: {"sample_count": 2, "sum": 75.5, "minimum": 30.5, "maximum": 45.0}
        unit:
          description: C(Count) or C(Seconds).
          type: str
          sample: Count
    unattributed:
      description: Instance ids of drain or deregistration results that are not in O(plan), left out of the metrics.
      type: list
      elements: str
      sample: []
"""

from datetime import UTC, datetime

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import metrics
from ansible_collections.spotmax.maxgroup.plugins.module_utils.replacement import STANDBY_KEY


def main():
    argument_spec = dict(
        namespace=dict(type="str", default=metrics.DEFAULT_NAMESPACE),
        plan=dict(type="dict"),
        drain=dict(type="list", elements="dict"),
        replacement=dict(type="dict"),
        deregistrations=dict(type="list", elements="dict"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = metrics.namespace_error(params["namespace"])
    if problem:
        module.fail_json(msg=problem)
    try:
        # Shapes are checked before the first API call.
        metrics.aggregate(params["plan"], params["drain"], params["replacement"], params["deregistrations"])
    except metrics.MetricsError as exc:
        module.fail_json(msg=str(exc))

    retry = AWSRetry.jittered_backoff()
    served = {}
    standby = (params["replacement"] or {}).get("standby") or {}
    try:
        if standby:
            groups = asg.describe_groups(module.client("autoscaling", retry_decorator=retry), sorted(standby))
            served = metrics.standby_served(groups, STANDBY_KEY)
        datums, unattributed = metrics.aggregate(
            params["plan"], params["drain"], params["replacement"], params["deregistrations"], served
        )
        batches = metrics.calls(datums)
        if batches and not module.check_mode:
            cloudwatch = module.client("cloudwatch", retry_decorator=retry)
            now = datetime.now(UTC)
            for batch in batches:
                cloudwatch.put_metric_data(
                    aws_retry=True,
                    Namespace=params["namespace"],
                    MetricData=[metrics.to_api(datum, now) for datum in batch],
                )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to publish the interruption metrics to {params['namespace']}")

    module.exit_json(
        changed=bool(datums),
        metrics={
            "namespace": params["namespace"],
            "calls": len(batches),
            "datums": datums,
            "unattributed": unattributed,
        },
    )


if __name__ == "__main__":
    main()
