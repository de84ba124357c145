#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: standby_launch_template
version_added: 0.1.0
short_description: Manage an EC2 launch template whose instances can hibernate
description:
  - Creates, updates or deletes an EC2 launch template for the companion On-Demand group that keeps a Spot
    group's warm standby, with hibernation switched on (C(HibernationOptions.Configured)), so that
    M(spotmax.maxgroup.asg_warm_pool) can keep the pool O(spotmax.maxgroup.asg_warm_pool#module:pool_state=hibernated).
  - Takes the same names and values as M(amazon.aws.ec2_launch_template) for the options it has, plus O(hibernation).
  - The latest version of the template is compared with the wanted data (the order of security group IDs and
    of block device mappings does not matter). Only when they differ is a new version created, with exactly the
    wanted data, and made the default version; a re-run with the same options makes no write call.
  - AWS's requirements for hibernation are not all visible in the template, so they are not all checked here.
    The root volume must be an encrypted EBS volume (encrypted in a O(block_device_mappings) entry for the
    AMI's root device, from an encrypted snapshot, or by EBS encryption by default), and large enough to hold
    the instance's RAM besides the operating system and applications. The module warns when hibernation is on
    and no block device mapping sets O(block_device_mappings[].ebs.encrypted=true).
  - The instance type must support hibernation (families such as C, M, R and T, up to 150 GiB of RAM); choose
    types with M(spotmax.maxgroup.instance_selector) and its C(hibernation_support=true) option. The AMI must
    support hibernation too (for example Amazon Linux 2023, Ubuntu, Windows Server AMIs).
    See U(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/hibernating-prerequisites.html).
author:
  - spotmax.maxgroup maintainers (@spotmax)
options:
  name:
    description:
      - Name of the launch template, 3 to 128 letters, digits, parentheses and the characters C(.), C(-), C(/), C(_).
    type: str
    required: true
  state:
    description:
      - Whether the launch template exists.
      - V(absent) deletes the template with all its versions.
    type: str
    choices: [present, absent]
    default: present
  hibernation:
    description:
      - Whether instances launched from the template can hibernate (C(HibernationOptions.Configured)).
      - V(false) leaves C(HibernationOptions) out of the template data.
    type: bool
    default: true
  image_id:
    description: The AMI ID (or a C(resolve:ssm:) parameter) instances launch from.
    type: str
  instance_type:
    description: The instance type, for example V(m5.large).
    type: str
  user_data:
    description:
      - The Base64-encoded user data, as for M(amazon.aws.ec2_launch_template); at most 16 KiB once decoded.
    type: str
  block_device_mappings:
    description:
      - The block device mappings, in M(amazon.aws.ec2_launch_template)'s shape.
      - For hibernation, map the AMI's root device with an encrypted EBS volume large enough for the instance's RAM.
    type: list
    elements: dict
    suboptions:
      device_name:
        description: The device name, for example V(/dev/xvda). Required; each device may be mapped once.
        type: str
      no_device:
        description: Suppresses the device of the AMI's block device mapping.
        type: str
      virtual_name:
        description: The virtual device name (V(ephemeral0) and so on) of an instance store volume.
        type: str
      ebs:
        description: The EBS volume set up at launch.
        type: dict
        suboptions:
          delete_on_termination:
            description: Whether the volume is deleted when the instance terminates.
            type: bool
          encrypted:
            description: Whether the volume is encrypted. Hibernation needs an encrypted root volume.
            type: bool
          iops:
            description: The provisioned IOPS (io1, io2, gp3), at least 1.
            type: int
          kms_key_id:
            description: The KMS key used to encrypt the volume.
            type: str
          snapshot_id:
            description: The snapshot the volume is created from.
            type: str
          throughput:
            description: The throughput in MiB/s (gp3), at least 1.
            type: int
          volume_size:
            description: The size of the volume in GiB, at least 1.
            type: int
          volume_type:
            description: The volume type.
            type: str
            choices: [standard, io1, io2, gp2, sc1, st1, gp3]
  security_group_ids:
    description: IDs of the security groups of the instances; their order does not matter.
    type: list
    elements: str
  iam_instance_profile:
    description:
      - The name or ARN of the IAM instance profile of the instances.
      - A name is stored as C(IamInstanceProfile.Name), an ARN as C(IamInstanceProfile.Arn); no IAM call is made.
    type: str
  key_name:
    description: The name of the EC2 key pair.
    type: str
  tags:
    description:
      - Tags of the launch template itself (not of the instances).
      - When set, the template carries exactly these tags; omit it to leave the template's tags as they are.
    type: dict
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
  - Options left out are left out of the template data; a new version holds only the options given.
  - A latest version that matches the wanted data but is not the default version is made the default.
"""

EXAMPLES = r"""
- name: Launch template of a standby group whose warm pool keeps instances hibernated
  spotmax.maxgroup.standby_launch_template:
    name: web-standby
    image_id: ami-0123456789abcdef0
    instance_type: m5.large
    user_data: "{{ lookup('ansible.builtin.file', 'bootstrap.sh') | b64encode }}"
    block_device_mappings:
      - device_name: /dev/xvda
        ebs:
          encrypted: true
          volume_size: 30
          volume_type: gp3
          delete_on_termination: true
    security_group_ids: [sg-0123456789abcdef0]
    iam_instance_profile: web-node
    tags:
      spotmax:group: web

- name: Keep two hibernated instances ready in the standby group's warm pool
  spotmax.maxgroup.asg_warm_pool:
    name: web-standby
    pool_state: hibernated
    min_size: 2

- name: Delete the launch template with all its versions
  spotmax.maxgroup.standby_launch_template:
    name: web-standby
    state: absent
"""

RETURN = r"""
template:
  description:
    - The launch template after the run; empty when it does not exist.
    - In check mode, the template before the run (empty when it would be created).
  returned: always
  type: dict
  contains:
    launch_template_id:
      description: The ID of the launch template.
      type: str
      sample: lt-0123456789abcdef0
    launch_template_name:
      description: The name of the launch template.
      type: str
      sample: web-standby
    latest_version_number:
      description: The number of the latest version.
      type: int
      sample: 2
    default_version_number:
      description: The number of the default version; equal to the latest one after a run in state present.
      type: int
      sample: 2
    tags:
      description: Tags of the launch template.
      type: dict
      sample: {"spotmax:group": "web"}
launch_template_data:
  description:
    - The data of the latest version (snake_case), for example C(hibernation_options.configured).
    - In check mode, the data the latest version would hold. Empty when the template does not exist.
  returned: always
  type: dict
  sample:
    image_id: ami-0123456789abcdef0
    instance_type: m5.large
    hibernation_options: {configured: true}
    block_device_mappings:
      - device_name: /dev/xvda
        ebs: {encrypted: true, volume_size: 30, volume_type: gp3}
"""

try:
    import botocore
except ImportError:
    pass  # handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.spotmax.maxgroup.plugins.module_utils import launch_template as lt


def read_template(client, name):
    """The template described by name and its latest version's data; (None, None) when it does not exist."""
    try:
        found = client.describe_launch_templates(aws_retry=True, LaunchTemplateNames=[name])["LaunchTemplates"]
    except is_boto3_error_code("InvalidLaunchTemplateName.NotFoundException"):
        return None, None
    if not found:
        return None, None
    template = found[0]
    # DescribeTags rather than the template's Tags: moto's DescribeLaunchTemplates keeps the tags of creation.
    tags = client.describe_tags(
        aws_retry=True, Filters=[{"Name": "resource-id", "Values": [template["LaunchTemplateId"]]}], MaxResults=1000
    )["Tags"]
    template["Tags"] = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in tags]
    versions = client.describe_launch_template_versions(
        aws_retry=True, LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    return template, (versions[0].get("LaunchTemplateData") or {}) if versions else {}


def snake(data):
    return camel_dict_to_snake_dict(data) if data else {}


def diff_view(template, data):
    if template is None and data is None:
        return {}
    return {"launch_template_data": snake(data), "tags": lt.tags_dict((template or {}).get("Tags"))}


def ensure_present(module, client, template, latest, wanted):
    params = module.params
    name = params["name"]
    to_set, to_remove = lt.tag_changes(lt.tags_dict((template or {}).get("Tags")), params["tags"])
    if template is None:
        if not module.check_mode:
            request = {"LaunchTemplateName": name, "LaunchTemplateData": wanted}
            if params["tags"]:
                tags = [{"Key": key, "Value": str(value)} for key, value in params["tags"].items()]
                request["TagSpecifications"] = [{"ResourceType": "launch-template", "Tags": tags}]
            client.create_launch_template(aws_retry=True, **request)
        return True

    template_id = template["LaunchTemplateId"]
    new_version = lt.needs_new_version(latest, wanted)
    stale_default = template["DefaultVersionNumber"] != template["LatestVersionNumber"]
    changed = bool(new_version or stale_default or to_set or to_remove)
    if module.check_mode or not changed:
        return changed
    default = template["LatestVersionNumber"]
    if new_version:
        created = client.create_launch_template_version(
            aws_retry=True, LaunchTemplateId=template_id, LaunchTemplateData=wanted
        )
        default = created["LaunchTemplateVersion"]["VersionNumber"]
    if new_version or stale_default:
        client.modify_launch_template(aws_retry=True, LaunchTemplateId=template_id, DefaultVersion=str(default))
    if to_set:
        tags = [{"Key": key, "Value": value} for key, value in to_set.items()]
        client.create_tags(aws_retry=True, Resources=[template_id], Tags=tags)
    if to_remove:
        client.delete_tags(aws_retry=True, Resources=[template_id], Tags=[{"Key": key} for key in to_remove])
    return changed


def main():
    ebs = dict(
        delete_on_termination=dict(type="bool"),
        encrypted=dict(type="bool"),
        iops=dict(type="int"),
        kms_key_id=dict(type="str", no_log=False),
        snapshot_id=dict(type="str"),
        throughput=dict(type="int"),
        volume_size=dict(type="int"),
        volume_type=dict(type="str", choices=list(lt.VOLUME_TYPES)),
    )
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        hibernation=dict(type="bool", default=True),
        image_id=dict(type="str"),
        instance_type=dict(type="str"),
        user_data=dict(type="str"),
        block_device_mappings=dict(
            type="list",
            elements="dict",
            options=dict(
                device_name=dict(type="str"),
                no_device=dict(type="str"),
                virtual_name=dict(type="str"),
                ebs=dict(type="dict", options=ebs),
            ),
        ),
        security_group_ids=dict(type="list", elements="str"),
        iam_instance_profile=dict(type="str"),
        key_name=dict(type="str", no_log=False),
        tags=dict(type="dict"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name = params["name"]
    present = params["state"] == "present"
    try:
        lt.check_name(name)
        wanted = (
            lt.wanted_data(
                image_id=params["image_id"],
                instance_type=params["instance_type"],
                user_data=params["user_data"],
                mappings=params["block_device_mappings"],
                security_group_ids=params["security_group_ids"],
                iam_instance_profile=params["iam_instance_profile"],
                key_name=params["key_name"],
                hibernation=params["hibernation"],
            )
            if present
            else None
        )
    except lt.LaunchTemplateError as exc:
        module.fail_json(msg=str(exc))
    if present:
        for warning in lt.hibernation_warnings(wanted):
            module.warn(warning)

    # A template just created may not be visible to the next call yet.
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["InvalidLaunchTemplateId.NotFound"])
    client = module.client("ec2", retry_decorator=retry)
    try:
        before, before_data = read_template(client, name)
        if present:
            changed = ensure_present(module, client, before, before_data, wanted)
        else:
            changed = before is not None
            if changed and not module.check_mode:
                client.delete_launch_template(aws_retry=True, LaunchTemplateId=before["LaunchTemplateId"])
        if module.check_mode or not changed:
            after, after_data = before, before_data
            if module.check_mode and present and (before is None or lt.needs_new_version(before_data, wanted)):
                after_data = wanted
            elif module.check_mode and not present:
                after, after_data = None, None
        else:
            after, after_data = read_template(client, name) if present else (None, None)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Failed to manage launch template {name!r}")

    result = dict(
        changed=changed,
        template=lt.describe(before if module.check_mode else after),
        launch_template_data=snake(after_data),
    )
    if module._diff:
        after_view = diff_view(after, after_data)
        if module.check_mode and present and params["tags"] is not None:
            after_view["tags"] = {key: str(value) for key, value in params["tags"].items()}
        result["diff"] = dict(before=diff_view(before, before_data), after=after_view)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
