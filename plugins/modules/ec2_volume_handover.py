#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_volume_handover
version_added: 0.1.0
short_description: Keep a group's data volume across Spot replacements
description:
  - Moves the EBS volume a group keeps at its C(spotmax:persistence_dev) device (for example C(/dev/sdf))
    from retiring instances to their replacements, in two steps.
  - O(step=protect), run as soon as the instances are known to retire (before anything can terminate them),
    makes each retiring instance's volume at the device outlive it; C(DeleteOnTermination) of that block device
    mapping is set to false where it is true (C(ModifyInstanceAttribute)) and the volume is tagged
    C(spotmax:handover_from) with the instance id, so a later run finds it even once it is detached or the
    instance is gone.
  - O(step=handover), run after the drain, detaches those volumes (C(DetachVolume)), waits until they are
    available, and attaches each one at the same device (C(AttachVolume)) to a replacement, a running instance of
    the same Auto Scaling group in the same Availability Zone, pending or in service in the group, not one of the
    retiring instances, with nothing mapped at the device (sd and xvd names are the same slot) and not chosen for
    another volume. Replacements are taken oldest launch first; volumes in retiring instance id order. It waits up
    to O(wait_timeout) seconds in all (for the detach, for replacements to appear and start, for the attach).
  - A volume already attached at the device to another member of its group counts as handed over; nothing is
    written for it, so a repeated run changes nothing.
  - Volumes left without a replacement when O(wait_timeout) runs out stay detached and kept; the module then
    fails naming them (after attaching all the others), or with O(allow_pending=true) returns them with
    RV(volume_handover.volumes[].state=pending) and RV(volume_handover.pending=true). A later run with the same
    instances attaches them.
  - The group's launch template must not map the device to a new volume, or every replacement has its own
    volume there and none can receive the kept one.
  - Reads are batched (instances and volumes 200 ids per filter, Auto Scaling instances 50 and groups 100 per call);
    the tag, attribute, detach and attach calls run up to O(concurrency) at a time.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  step:
    description:
      - C(protect) keeps the volumes from being deleted with their instances; C(handover) moves them to the
        replacements.
    type: str
    choices: [protect, handover]
    required: true
  instances:
    description:
      - The retiring instances. Each entry has C(instance_id) and optionally C(group) (the Auto Scaling group,
        needed once the instance is detached from it) and C(device_name) (overrides O(device_name)).
      - Other keys are ignored, so the C(instances) of M(spotmax.maxgroup.interruption_plan)'s plan can be passed
        as they are.
      - Without C(group), the group is looked up in Auto Scaling, then in the instance's
        C(aws:autoscaling:groupName) tag.
    type: list
    elements: dict
    required: true
  device_name:
    description:
      - The device of the kept volume, C(/dev/sd[f-p]) or C(/dev/xvd[f-p]).
      - Omit it to use each group's C(spotmax:persistence_dev) tag; instances of groups without it are skipped.
    type: str
  force:
    description:
      - Force the detach (C(DetachVolume) with C(Force)); only for an instance that does not release the volume.
    type: bool
    default: false
  wait_timeout:
    description: Most seconds the handover waits in all (0 to 3600); 0 makes one attempt without waiting.
    type: int
    default: 300
  allow_pending:
    description:
      - Succeed when volumes are left without a replacement, returning them as pending, instead of failing.
    type: bool
    default: false
  concurrency:
    description: Most write calls at the same time (1 to 20).
    type: int
    default: 4
notes:
  - In check mode nothing is written and nothing is waited for; the replacements reported are those available now.
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
- name: Keep the data volumes of the batch's instances (at once)
  spotmax.maxgroup.ec2_volume_handover:
    step: protect
    instances: "{{ plan.instances }}"

- name: After the drain, move them to the replacements
  spotmax.maxgroup.ec2_volume_handover:
    step: handover
    instances: "{{ plan.instances }}"
    wait_timeout: 600
  register: handover

- name: One instance, an explicit device
  spotmax.maxgroup.ec2_volume_handover:
    step: handover
    instances:
      - instance_id: i-0123456789abcdef0
        group: web-spot
    device_name: /dev/sdf
    allow_pending: true
"""

RETURN = r"""
volume_handover:
  description: What was (or, in check mode, would be) done.
  returned: always
  type: dict
  contains:
    step:
      description: The step run.
      type: str
      sample: handover
    volumes:
      description: One entry per kept volume, in retiring instance id order.
      type: list
      elements: dict
      contains:
        volume_id:
          description: The volume.
          type: str
          sample: vol-0123456789abcdef0
        from_instance:
          description: The retiring instance it belongs to.
          type: str
          sample: i-0123456789abcdef0
        to_instance:
          description: The replacement it is attached to (null with O(step=protect) and for a pending volume).
          type: str
          sample: i-0fedcba9876543210
        group:
          description: The Auto Scaling group.
          type: str
          sample: web-spot
        availability_zone:
          description: The volume's Availability Zone.
          type: str
          sample: us-east-1a
        device_name:
          description: The device it is (to be) attached at.
          type: str
          sample: /dev/sdf
        state:
          description:
            - C(protected) (step protect, written now), C(attached) (step handover, attached to the replacement now),
              C(attaching) (attached to the replacement, not yet reported attached when O(wait_timeout) ran out),
              C(unchanged) (nothing to do; protected, or attached to a replacement, before this run),
              C(pending) (no replacement found in time; the volume is kept, detached unless in check mode).
            - C(attaching) counts as pending.
          type: str
          sample: attached
    pending:
      description: Whether any volume is pending.
      type: bool
      sample: false
    skipped:
      description: Retiring instances (and volumes) not acted on, with the reason.
      type: list
      elements: dict
      sample:
        - instance_id: i-0123456789abcdef0
          volume_id: null
          reason: no EBS volume attached at /dev/sdf
"""

import time

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import ec2 as ec2u
from ansible_collections.spotmax.maxgroup.plugins.module_utils import volume_handover as vh

POLL_SECONDS = 5
MAX_WAIT = 3600
MAX_CONCURRENCY = 20


def describe_volumes(client, name, values):
    """Volumes matching filter ``name`` for any of ``values``, 200 values per call."""
    return [
        volume
        for batch in ec2u.chunks(sorted(set(values)), ec2u.FILTER_VALUES)
        for page in ec2u.pages(client.describe_volumes, Filters=[{"Name": name, "Values": batch}], MaxResults=500)
        for volume in page.get("Volumes", [])
    ]


def read_members(autoscaling, ec2, names, retiring):
    """Auto Scaling's members of the groups and their replacement candidates, oldest launch first."""
    groups = asg.describe_groups(autoscaling, sorted(names)) if names else []
    members = {}
    for group in groups:
        for instance in group.get("Instances", []):
            members[instance["InstanceId"]] = {
                "group": group["AutoScalingGroupName"],
                "zone": instance.get("AvailabilityZone"),
                "lifecycle": instance.get("LifecycleState", ""),
            }
    described = {i["InstanceId"]: i for i in ec2u.describe_instances(ec2, list(members))} if members else {}
    return vh.candidates(members, described, retiring)


def tag_volumes(ec2, planned, concurrency):
    def write(item):
        ec2.create_tags(
            aws_retry=True, Resources=[item["volume_id"]], Tags=[{"Key": vh.FROM_TAG, "Value": item["from_instance"]}]
        )

    ec2u.run_concurrently(write, [item for item in planned if item["set_tag"]], concurrency)


def protect(module, ec2, resolved, described):
    volume_ids = []
    for entry in resolved:
        mapping = vh.mapping_at(described.get(entry["instance_id"], {}), entry["device_name"])
        if mapping:
            volume_ids.append(mapping["Ebs"]["VolumeId"])
    volumes = {v["VolumeId"]: v for v in describe_volumes(ec2, "volume-id", volume_ids)} if volume_ids else {}
    planned, skipped = vh.protect_plan(resolved, described, volumes)

    def keep(item):
        if item["set_delete_on_termination"]:
            ec2.modify_instance_attribute(
                aws_retry=True,
                InstanceId=item["from_instance"],
                BlockDeviceMappings=[{"DeviceName": item["device_name"], "Ebs": {"DeleteOnTermination": False}}],
            )

    if not module.check_mode:
        ec2u.run_concurrently(
            keep, [item for item in planned if item["set_delete_on_termination"]], module.params["concurrency"]
        )
        tag_volumes(ec2, planned, module.params["concurrency"])
    diff = {
        "before": {item["volume_id"]: {"delete_on_termination": item["set_delete_on_termination"]} for item in planned},
        "after": {item["volume_id"]: {"delete_on_termination": False} for item in planned},
    }
    for item in planned:
        diff["before"][item["volume_id"]]["handover_from"] = item["tag_before"]
        diff["after"][item["volume_id"]]["handover_from"] = item["from_instance"]
    changed = any(item["state"] == "protected" for item in planned)
    for item in planned:
        del item["set_delete_on_termination"], item["set_tag"], item["tag_before"]
    return planned, skipped, diff, changed


def volume_states(ec2, volume_ids):
    volumes = describe_volumes(ec2, "volume-id", volume_ids) if volume_ids else []
    return {v["VolumeId"]: v for v in volumes}


def attached_state(volume, instance_id):
    for attachment in (volume or {}).get("Attachments", []):
        if attachment.get("InstanceId") == instance_id:
            return attachment.get("State")
    return None


def handover(module, autoscaling, ec2, resolved, group_names):
    params = module.params
    retiring = {entry["instance_id"] for entry in resolved}
    ids = sorted(retiring)
    volumes = describe_volumes(ec2, "attachment.instance-id", ids) + describe_volumes(ec2, f"tag:{vh.FROM_TAG}", ids)
    groups = asg.describe_groups(autoscaling, sorted(group_names)) if group_names else []
    members = {g["AutoScalingGroupName"]: {i["InstanceId"] for i in g.get("Instances", [])} for g in groups}
    planned, skipped = vh.handover_plan(resolved, volumes, members)
    to_place = [item for item in planned if item["action"] != "none"]
    before = {
        item["volume_id"]: {"instance_id": item["to_instance"], "device_name": item["device_name"]}
        if item["action"] == "none"
        else (
            {"instance_id": item["from_instance"], "device_name": item["device_name"]}
            if item["action"] == "detach"
            else None
        )
        for item in planned
    }
    place_groups = {item["group"] for item in to_place}
    if module.check_mode:
        chosen = vh.choose(to_place, read_members(autoscaling, ec2, place_groups, retiring), set()) if to_place else {}
        for item in to_place:
            item["to_instance"] = chosen.get(item["volume_id"])
            item["state"] = "attached" if item["to_instance"] else "pending"
    elif to_place:
        deadline = time.monotonic() + params["wait_timeout"]
        concurrency = params["concurrency"]
        tag_volumes(ec2, to_place, concurrency)

        def detach(item):
            ec2.detach_volume(
                aws_retry=True, VolumeId=item["volume_id"], InstanceId=item["from_instance"], Force=params["force"]
            )

        def attach(item):
            ec2.attach_volume(
                aws_retry=True, VolumeId=item["volume_id"], InstanceId=item["to_instance"], Device=item["device_name"]
            )

        ec2u.run_concurrently(detach, [item for item in to_place if item["action"] == "detach"], concurrency)
        chosen = {}
        while True:
            remaining = [item for item in to_place if item["volume_id"] not in chosen]
            states = volume_states(ec2, [item["volume_id"] for item in remaining])
            ready = [item for item in remaining if states.get(item["volume_id"], {}).get("State") == "available"]
            if ready:
                now = vh.choose(
                    ready,
                    read_members(autoscaling, ec2, {item["group"] for item in ready}, retiring),
                    set(chosen.values()),
                )
                for item in ready:
                    item["to_instance"] = now.get(item["volume_id"])
                ec2u.run_concurrently(attach, [item for item in ready if item["to_instance"]], concurrency)
                chosen.update(now)
            if len(chosen) == len(to_place) or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
        while True:
            states = volume_states(ec2, list(chosen))
            attached = {v for v, i in chosen.items() if attached_state(states.get(v), i) == "attached"}
            if len(attached) == len(chosen) or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
        for item in to_place:
            item["state"] = "attached" if item["volume_id"] in attached else "pending"
            if item["volume_id"] in chosen and item["volume_id"] not in attached:
                item["state"] = "attaching"
    after = {
        item["volume_id"]: {"instance_id": item["to_instance"], "device_name": item["device_name"]}
        if item["to_instance"]
        else None
        for item in planned
    }
    changed = any(
        item["set_tag"] or item["action"] == "detach" or item["state"] in ("attached", "attaching") for item in to_place
    )
    for item in planned:
        del item["action"], item["set_tag"]
    return planned, skipped, {"before": before, "after": after}, changed


def main():
    argument_spec = dict(
        step=dict(type="str", choices=["protect", "handover"], required=True),
        instances=dict(type="list", elements="dict", required=True),
        device_name=dict(type="str"),
        force=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        allow_pending=dict(type="bool", default=False),
        concurrency=dict(type="int", default=4),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        retiring = vh.retiring_instances(params["instances"], params["device_name"])
    except vh.HandoverError as exc:
        module.fail_json(msg=str(exc))
    if not 0 <= params["wait_timeout"] <= MAX_WAIT:
        module.fail_json(
            msg=f"wait_timeout: {params['wait_timeout']} is not allowed; use an integer from 0 to {MAX_WAIT}"
        )
    if not 1 <= params["concurrency"] <= MAX_CONCURRENCY:
        module.fail_json(
            msg=f"concurrency: {params['concurrency']} is not allowed; use an integer from 1 to {MAX_CONCURRENCY}"
        )

    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceContention"])
    ec2 = module.client("ec2", retry_decorator=retry)
    autoscaling = module.client("autoscaling", retry_decorator=retry)
    ids = [entry["instance_id"] for entry in retiring]
    volumes, skipped, diff, changed = [], [], {"before": {}, "after": {}}, False
    try:
        described = {i["InstanceId"]: i for i in ec2u.describe_instances(ec2, ids)} if ids else {}
        unknown = [entry["instance_id"] for entry in retiring if not entry["group"]]
        asg_groups = (
            {i["InstanceId"]: i["AutoScalingGroupName"] for i in asg.describe_instances(autoscaling, unknown)}
            if unknown
            else {}
        )
        names = set()
        for entry in retiring:
            tags = {tag["Key"]: tag["Value"] for tag in described.get(entry["instance_id"], {}).get("Tags", [])}
            name = entry["group"] or asg_groups.get(entry["instance_id"]) or tags.get("aws:autoscaling:groupName")
            if name:
                names.add(name)
        groups = (
            {g["AutoScalingGroupName"]: g for g in asg.describe_groups(autoscaling, sorted(names))} if names else {}
        )
        try:
            resolved, skipped = vh.resolve(retiring, asg_groups, described, groups, params["device_name"])
        except vh.HandoverError as exc:
            module.fail_json(msg=str(exc))
        if params["step"] == "protect":
            volumes, more, diff, changed = protect(module, ec2, resolved, described)
        else:
            volumes, more, diff, changed = handover(
                module, autoscaling, ec2, resolved, {entry["group"] for entry in resolved}
            )
        skipped.extend(more)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to {params['step']} the data volumes of {', '.join(ids)}")

    pending = [item for item in volumes if item["state"] in ("pending", "attaching")]
    result = {"step": params["step"], "volumes": volumes, "pending": bool(pending), "skipped": skipped}
    output = {"changed": changed, "volume_handover": result}
    if module._diff:
        output["diff"] = diff
    if pending and params["step"] == "handover" and not module.check_mode and not params["allow_pending"]:
        module.fail_json(msg=vh.pending_message(pending, params["wait_timeout"]), **output)
    module.exit_json(**output)


if __name__ == "__main__":
    main()
