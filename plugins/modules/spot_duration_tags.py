#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spot_duration_tags
version_added: 0.1.0
short_description: Set MaxGroup's duration tags on EC2 Auto Scaling groups
description:
  - Writes or removes the tags through which MaxGroup guarantees instance lifetimes ("duration") on one
    or many Auto Scaling groups, C(spotmax:instance_duration_hours) and C(spotmax:gurantee_living_mins).
  - The minutes key is misspelled in the published MaxGroup contract and existing groups carry it, so that
    is the key written to a group that has no minutes tag yet. A group that already carries the correctly
    spelled C(spotmax:guarantee_living_mins) is updated under that key instead. A group that carries both
    spellings gets the same value under both, so that readers of either spelling agree.
  - Every other tag of the groups is left alone.
  - Reads all groups with as few C(DescribeAutoScalingGroups) calls as the API allows (100 names per call)
    and writes the tags of many groups per C(CreateOrUpdateTags) or C(DeleteTags) call (at most 20 tags per
    call, a group's tags always in one call). Nothing is written when every group already has the wanted tags.
  - Fails before any write when a value is out of range or any of the groups does not exist.
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  name:
    description:
      - Name of one Auto Scaling group.
      - Exactly one of O(name) and O(names) is required.
    type: str
  names:
    description:
      - Names of several Auto Scaling groups, handled in one run.
      - Exactly one of O(name) and O(names) is required.
    type: list
    elements: str
  state:
    description:
      - With V(present) the groups carry the given duration settings.
      - With V(absent) the duration tags are removed from the groups, every spelling of the minutes key.
    type: str
    choices: [present, absent]
    default: present
  instance_duration_hours:
    description:
      - Guaranteed block in hours, written to C(spotmax:instance_duration_hours).
      - An integer from 1 to 6. Required with O(state=present), ignored with O(state=absent).
    type: int
  guarantee_living_mins:
    description:
      - Minutes after which MaxGroup replaces an instance, written to C(spotmax:gurantee_living_mins)
        (or C(spotmax:guarantee_living_mins) where a group already carries that spelling).
      - An integer from 1 to O(instance_duration_hours) * 60 - 1. Required with O(state=present),
        ignored with O(state=absent).
    type: int
  propagate_at_launch:
    description:
      - Whether the duration tags are also added to the instances the groups launch.
      - A duration tag whose PropagateAtLaunch differs from this is rewritten. Ignored with O(state=absent).
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
- name: Guarantee instances of one group 50 minutes of a 1 hour block
  spotmax.maxgroup.spot_duration_tags:
    name: batch-workers
    instance_duration_hours: 1
    guarantee_living_mins: 50

- name: Give many groups the same duration in one task
  spotmax.maxgroup.spot_duration_tags:
    names: "{{ duration_groups }}"
    instance_duration_hours: 6
    guarantee_living_mins: 350
    propagate_at_launch: true

- name: Remove the duration tags
  spotmax.maxgroup.spot_duration_tags:
    names: [batch-workers, render-farm]
    state: absent
"""

RETURN = r"""
groups:
  description: The groups in the order given, each with its duration settings before and after the run.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the Auto Scaling group.
      type: str
      sample: batch-workers
    changed:
      description: Whether the group's duration tags were (or, in check mode, would be) written.
      type: bool
      sample: true
    before:
      description: The group's duration settings before the run.
      type: dict
      contains:
        instance_duration_hours:
          description:
            - Value of C(spotmax:instance_duration_hours); a number when it is an integer, else the raw
              string as found; null when the tag is missing.
          type: raw
          sample: 1
        guarantee_living_mins:
          description:
            - Value of C(spotmax:gurantee_living_mins), or of C(spotmax:guarantee_living_mins) when only that
              spelling is present; a number when it is an integer, else the raw string; null when missing.
          type: raw
          sample: 50
        tags:
          description: The duration tags of the group, sorted by key.
          type: list
          elements: dict
          contains:
            key:
              description: Tag key.
              type: str
              sample: "spotmax:instance_duration_hours"
            value:
              description: Tag value.
              type: str
              sample: "1"
            propagate_at_launch:
              description: Whether the tag is added to instances launched by the group.
              type: bool
              sample: false
    after:
      description:
        - The group's duration settings after the run (in check mode, what they would be), in the same
          form as RV(groups[].before).
      type: dict
      sample:
        instance_duration_hours: 1
        guarantee_living_mins: 50
        tags:
          - key: "spotmax:gurantee_living_mins"
            value: "50"
            propagate_at_launch: false
          - key: "spotmax:instance_duration_hours"
            value: "1"
            propagate_at_launch: false
diff:
  description: The duration settings of every group before and after the run, keyed by group name.
  returned: when diff mode is on
  type: dict
  contains:
    before:
      description: Group name to RV(groups[].before).
      type: dict
    after:
      description: Group name to RV(groups[].after).
      type: dict
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import duration as dur


def wanted_names(module):
    """The group names asked for, without repeats, in the order given; fails on empty input."""
    params = module.params
    if params["name"] is not None:
        if not params["name"]:
            module.fail_json(msg="name: '' is not allowed; use the name of an Auto Scaling group")
        return "name", [params["name"]]
    names = params["names"]
    if not names:
        module.fail_json(msg="names: [] is not allowed; use a list of one or more Auto Scaling group names")
    if any(not name for name in names):
        module.fail_json(msg=f"names: {names!r} is not allowed; every entry must be an Auto Scaling group name")
    return "names", list(dict.fromkeys(names))


def fail_missing(module, field, names, missing):
    listed = ", ".join(repr(name) for name in missing)
    if len(names) == 1:
        module.fail_json(msg=f"{field}: Auto Scaling group {listed} does not exist in this region")
    module.fail_json(
        msg=f"{field}: {len(missing)} of the {len(names)} Auto Scaling groups do not exist in this region: {listed}"
    )


def main():
    argument_spec = dict(
        name=dict(type="str"),
        names=dict(type="list", elements="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        instance_duration_hours=dict(type="int"),
        guarantee_living_mins=dict(type="int"),
        propagate_at_launch=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        mutually_exclusive=[["name", "names"]],
        required_one_of=[["name", "names"]],
        supports_check_mode=True,
    )
    params = module.params
    field, names = wanted_names(module)
    wanted = None
    if params["state"] == "present":
        try:
            wanted = dur.validate(params["instance_duration_hours"], params["guarantee_living_mins"])
        except dur.DurationError as exc:
            module.fail_json(msg=str(exc))

    client = module.client("autoscaling", retry_decorator=AWSRetry.jittered_backoff())
    try:
        found = {group["AutoScalingGroupName"]: group for group in asg.describe_groups(client, names)}
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to describe the Auto Scaling groups {names!r}")
    missing = [name for name in names if name not in found]
    if missing:
        fail_missing(module, field, names, missing)

    plans = [dur.plan(name, found[name].get("Tags", []), wanted, params["propagate_at_launch"]) for name in names]
    put = [tag for plan in plans for tag in plan.put]
    delete = [tag for plan in plans for tag in plan.delete]
    if not module.check_mode:
        try:
            asg.create_or_update_tags(client, put)
            asg.delete_tags(client, delete)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            changed_names = [plan.name for plan in plans if plan.changed]
            module.fail_json_aws(
                exc, msg=f"Failed to write the duration tags of the Auto Scaling groups {changed_names!r}"
            )

    result = dict(
        changed=any(plan.changed for plan in plans),
        groups=[dict(name=plan.name, changed=plan.changed, before=plan.before, after=plan.after) for plan in plans],
    )
    if module._diff:
        result["diff"] = dict(
            before={plan.name: plan.before for plan in plans},
            after={plan.name: plan.after for plan in plans},
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
