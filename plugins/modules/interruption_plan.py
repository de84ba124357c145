#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: interruption_plan
version_added: 0.1.0
short_description: Decide what to do with a batch of EC2 interruption events
description:
  - Reads the instances, groups and lifecycle hooks named by a batch of normalised interruption events (from
    the C(spotmax.maxgroup.sqs_interruptions) event source, see C(docs/design/interruptions.md)) and returns the
    plan the handle_interruption playbook follows. It writes nothing.
  - Reads are batched and concurrent, one C(DescribeInstances) per 200 instances (an C(instance-id) filter, so an
    unknown id does not fail the call), one C(DescribeAutoScalingGroups) per 100 groups and one
    C(DescribeLifecycleHooks) per group with lifecycle events.
  - Per group behaviour comes from the group's C(spotmax:) tags.
  - An event is skipped (acknowledged, nothing done) when its instance is unknown to EC2, is not managed (has no
    C(spotmax:group) tag), already lists the event's kind in its C(spotmax:interruption_handled) tag, belongs to no
    existing group, or the event is a C(state_change) to C(pending) or C(running). C(rebalance) and
    C(scheduled_change) events are skipped unless the group's C(spotmax:is_to_handle_rebalance_event) is true.
  - An event is an error (not acknowledged, nothing done) when it is malformed or when its group's C(spotmax:)
    tags break the contract. The rest of the batch is planned as usual; the module does not fail.
  - "Actions per kind: C(spot_interruption): cordon, replace, drain, deregister. C(rebalance) and
    C(scheduled_change): replace (the replacement is launched first), drain, deregister, retire (terminate after
    the drain). C(lifecycle_terminate): drain, deregister, complete_lifecycle.
    C(renewal) (an instance renewed launch-first by M(spotmax.maxgroup.asg_renew_instances), its replacement
    in service): cordon, drain, deregister (that module retires it afterwards). C(state_change) to
    C(stopping), C(stopped), C(shutting-down) or C(terminated): cleanup (delete the Kubernetes node) and
    deregister through the Consul catalog (the agent is gone)."
  - cordon, drain and cleanup are planned only for groups with C(spotmax:k8s_config_file_path) or
    C(spotmax:eks_cluster_name); deregister only for groups with C(spotmax:consul_port) and instances with a private IP.
  - handover (move the group's kept EBS volume to the replacement, M(spotmax.maxgroup.ec2_volume_handover)) is
    planned for C(spot_interruption), C(rebalance), C(scheduled_change) and C(renewal) events of groups with a
    C(spotmax:persistence_dev) tag; it comes after deregister and before retire. A tag value that is not a device
    C(/dev/sd[f-p]) or C(/dev/xvd[f-p]) makes such an event an error. C(lifecycle_terminate) (a scale-in has no
    replacement) and C(state_change) events hand nothing over.
  - Several events for one instance are merged into one entry (the union of their actions).
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  events:
    description:
      - The normalised events of the batch (C(kind), C(instance_id), C(group), C(time), C(deadline), C(state),
        C(lifecycle), C(message_id), C(receipt_handle)).
      - A malformed event is reported in RV(plan.errors), not a failure of the module.
    type: list
    elements: dict
    default: []
  ignored:
    description:
      - The batch's ignored messages (C({message_id, receipt_handle, reason})); their receipt handles are acknowledged.
    type: list
    elements: dict
    default: []
  instance_ids:
    description:
      - Instances to handle without a message, for example from C(ansible-playbook ... -e instance_ids=[...]).
      - Each becomes an event of O(kind) without a receipt handle; they are added to O(events).
    type: list
    elements: str
    default: []
  kind:
    description: The kind of the events built from O(instance_ids).
    type: str
    choices: [spot_interruption, rebalance, scheduled_change, renewal]
    default: spot_interruption
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
    details: The module only reads; check mode returns the same plan.
  diff_mode:
    support: none
  platform:
    platforms: aws
"""

EXAMPLES = r"""
- name: Plan the handling of a batch from the sqs_interruptions event source
  spotmax.maxgroup.interruption_plan:
    events: "{{ ansible_eda.event.spotmax.events }}"
    ignored: "{{ ansible_eda.event.spotmax.ignored }}"
    region: "{{ ansible_eda.event.spotmax.region }}"
  register: planned

- name: Plan the drain of two instances named by an operator
  spotmax.maxgroup.interruption_plan:
    instance_ids: [i-0123456789abcdef0, i-0fedcba9876543210]
  register: planned

- name: Cordon the nodes of each Kubernetes connection
  ansible.builtin.debug:
    msg: "cordon {{ item.cordon }} through {{ item.kubeconfig or item.eks_cluster_name }}"
  loop: "{{ planned.plan.kubernetes }}"
"""

RETURN = r"""
plan:
  description: What to do, grouped the way the playbook's modules take it.
  returned: always
  type: dict
  contains:
    instances:
      description: One entry per instance acted on, in instance id order.
      type: list
      elements: dict
      contains:
        instance_id:
          description: The instance.
          type: str
          sample: i-0123456789abcdef0
        kinds:
          description: The kinds of the instance's events in this batch.
          type: list
          elements: str
          sample: [spot_interruption]
        group:
          description: The instance's Auto Scaling group.
          type: str
          sample: web-spot
        private_ip:
          description: The instance's private IP address, or null.
          type: str
          sample: 10.0.1.23
        availability_zone:
          description: The instance's Availability Zone.
          type: str
          sample: us-east-1a
        actions:
          description:
            - What to do, in this order of C(cordon), C(replace), C(drain), C(deregister), C(handover), C(retire),
              C(cleanup), C(complete_lifecycle).
          type: list
          elements: str
          sample: [cordon, replace, drain, deregister]
        deadline:
          description:
            - When the instance goes away (ISO 8601 UTC), the earliest of its events' deadlines. For a lifecycle action
              it is the event time plus the hook's global timeout (100 heartbeat timeouts, at most 48 hours), since
              the role records heartbeats while the drain runs. Null when unknown.
          type: str
          sample: "2026-11-21T14:07:06Z"
        persistence_dev:
          description: The group's C(spotmax:persistence_dev) device (its kept data volume), or null.
          type: str
          sample: /dev/sdf
    skipped:
      description: Events acknowledged without action, with the reason.
      type: list
      elements: dict
      contains:
        instance_id:
          description: The event's instance.
          type: str
          sample: i-0123456789abcdef0
        kind:
          description: The event's kind.
          type: str
          sample: rebalance
        reason:
          description: Why nothing is done.
          type: str
          sample: "group 'web-spot' does not opt in: spotmax:is_to_handle_rebalance_event is false"
    errors:
      description: Events that are malformed or whose group's tags break the contract; their messages are held.
      type: list
      elements: dict
      contains:
        instance_id:
          description: The event's instance, as given (null when the event has none).
          type: str
          sample: i-0123456789abcdef0
        kind:
          description: The event's kind, as given.
          type: str
          sample: spot_interruption
        group:
          description: The group, when known.
          type: str
          sample: web-spot
        message:
          description: What is wrong, naming the field or group tag, the value and what is allowed.
          type: str
          sample: "group 'web-spot' tag spotmax:consul_port: 'abc' is not allowed; use an integer from 1 to 65535"
    kubernetes:
      description: One entry per distinct Kubernetes connection and drain timing.
      type: list
      elements: dict
      contains:
        kubeconfig:
          description: The groups' C(spotmax:k8s_config_file_path), or null.
          type: str
          sample: /data/spotmax/k8sconfig
        eks_cluster_name:
          description: The groups' C(spotmax:eks_cluster_name), or null.
          type: str
          sample: null
        cordon:
          description: Instances whose nodes to cordon and taint first.
          type: list
          elements: str
          sample: [i-0123456789abcdef0]
        drain:
          description: Instances whose nodes to drain.
          type: list
          elements: str
          sample: [i-0123456789abcdef0]
        cleanup:
          description: Instances that are gone or going, whose nodes to delete.
          type: list
          elements: str
          sample: []
        delay_seconds:
          description: C(spotmax:k8s_delay_draining_secs), the delay before draining.
          type: int
          sample: 90
        grace_seconds:
          description: C(spotmax:k8s_node_drain_grace_second), the pod termination grace cap.
          type: int
          sample: 300
        deadline:
          description: The earliest deadline of the entry's instances (ISO 8601 UTC), or null.
          type: str
          sample: "2026-11-21T14:07:06Z"
    consul:
      description: One entry per distinct agent port, delay and mode.
      type: list
      elements: dict
      contains:
        agent_port:
          description: C(spotmax:consul_port).
          type: int
          sample: 8500
        delay_seconds:
          description: C(spotmax:sd_delay_detach_secs).
          type: int
          sample: 30
        mode:
          description:
            - The O(spotmax.maxgroup.consul_deregister#module:mode) to use, C(catalog) when the instance is stopping
              or gone (its agent cannot answer), else C(auto).
          type: str
          sample: auto
        instances:
          description: The input of O(spotmax.maxgroup.consul_deregister#module:instances).
          type: list
          elements: dict
          sample: [{"instance_id": "i-0123456789abcdef0", "private_ip": "10.0.1.23", "agent_port": 8500}]
    replace:
      description: Instances to replace at once (O(spotmax.maxgroup.asg_replace_instances#module:instance_ids)).
      type: list
      elements: str
      sample: [i-0123456789abcdef0]
    retire:
      description: Instances to terminate once drained.
      type: list
      elements: str
      sample: []
    handover:
      description:
        - Instances whose kept volume moves to their replacement, with their group and device
          (O(spotmax.maxgroup.ec2_volume_handover#module:instances)).
      type: list
      elements: dict
      sample: [{"instance_id": "i-0123456789abcdef0", "group": "web-spot", "device_name": "/dev/sdf"}]
    lifecycle:
      description:
        - Lifecycle actions to complete (O(spotmax.maxgroup.asg_lifecycle_action#module:actions)), with the hook's
          heartbeat timeout (null when the hook is not found).
      type: list
      elements: dict
      sample:
        - instance_id: i-0123456789abcdef0
          group: web-spot
          hook_name: drain
          token: 0befc9ed-7f0a-4c1b-9d3e-11aa22bb33cc
          heartbeat_timeout: 300
    receipt_handles:
      description:
        - The receipt handles to acknowledge once the handling succeeded, in order (the ignored messages', then those
          of the messages without an error event).
      type: list
      elements: str
      sample: ["AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"]
    held:
      description: Receipt handles of messages with an error event, not to acknowledge.
      type: list
      elements: str
      sample: []
    handled_tags:
      description:
        - The new C(spotmax:interruption_handled) value (space-separated kinds) per instance acted on, for
          O(spotmax.maxgroup.interruption_ack#module:handled_tags). Terminated instances are left out.
      type: dict
      sample: {"i-0123456789abcdef0": "spot_interruption"}
    groups:
      description:
        - Per group, the number of instances acted on per kind
          (for O(spotmax.maxgroup.interruption_metrics#module:plan)).
      type: dict
      sample: {"web-spot": {"spot_interruption": 2}}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2 as ec2_utils
from ansible_collections.spotmax.maxgroup.plugins.module_utils import interruption


def read_hooks(client, names, concurrency):
    def read(name):
        try:
            found = client.describe_lifecycle_hooks(aws_retry=True, AutoScalingGroupName=name)
        except is_boto3_error_code("ValidationError"):
            return name, []  # no such group: its events are skipped
        return name, found.get("LifecycleHooks", [])

    return dict(ec2_utils.run_concurrently(read, names, concurrency))


def read_groups(client, names, concurrency):
    batches = ec2_utils.chunks(names, asg.DESCRIBE_GROUPS_BATCH)
    pages = ec2_utils.run_concurrently(lambda batch: asg.describe_groups(client, batch), batches, concurrency)
    return [group for page in pages for group in page]


def main():
    argument_spec = dict(
        events=dict(type="list", elements="dict", default=[]),
        ignored=dict(type="list", elements="dict", default=[]),
        instance_ids=dict(type="list", elements="str", default=[]),
        kind=dict(type="str", choices=list(interruption.STANDALONE_KINDS), default="spot_interruption"),
        concurrency=dict(type="int", default=10),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["concurrency"] < 1:
        module.fail_json(msg=f"concurrency: {params['concurrency']} is not allowed; use an integer >= 1")
    wrong = [value for value in params["instance_ids"] if not interruption.valid_instance_id(value)]
    if wrong:
        module.fail_json(
            msg=f"instance_ids: {', '.join(map(repr, wrong))} is not allowed; "
            f"use EC2 instance ids ({interruption.ID_FORMAT})"
        )
    events = list(params["events"]) + interruption.standalone_events(params["instance_ids"], params["kind"])
    concurrency = params["concurrency"]

    retry = AWSRetry.jittered_backoff()
    client = module.client("autoscaling", retry_decorator=retry)
    ec2 = module.client("ec2", retry_decorator=retry)
    try:
        reads = [
            lambda: ec2_utils.describe_instances(ec2, interruption.instances_to_read(events), concurrency),
            lambda: read_hooks(client, interruption.lifecycle_groups(events), concurrency),
        ]
        instances, hooks = ec2_utils.run_concurrently(lambda read: read(), reads, 2)
        groups = read_groups(client, interruption.groups_to_read(events, instances), concurrency)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Failed to read the instances and groups of the interruption events")

    module.exit_json(changed=False, plan=interruption.plan(events, params["ignored"], instances, groups, hooks))


if __name__ == "__main__":
    main()
