# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decisions about EC2 launch templates with hibernation, as pure functions over API-shaped dicts."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

# Launch template names: 3 to 128 characters of letters, digits and ( ) . - / _ (CreateLaunchTemplate).
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}$")
VOLUME_TYPES = ("standard", "io1", "io2", "gp2", "sc1", "st1", "gp3")
INSTANCE_PROFILE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:instance-profile/.+$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]+$")
# Hard limit of the user data of an instance (before base64).
USER_DATA_LIMIT = 16 * 1024

EBS_FIELDS = {
    "delete_on_termination": "DeleteOnTermination",
    "encrypted": "Encrypted",
    "iops": "Iops",
    "kms_key_id": "KmsKeyId",
    "snapshot_id": "SnapshotId",
    "throughput": "Throughput",
    "volume_size": "VolumeSize",
    "volume_type": "VolumeType",
}
MAPPING_FIELDS = {"device_name": "DeviceName", "no_device": "NoDevice", "virtual_name": "VirtualName"}
EBS_INTS = ("iops", "throughput", "volume_size")
EBS_BOOLS = ("delete_on_termination", "encrypted")

HIBERNATION_ROOT_HINT = (
    "hibernation needs an encrypted EBS root volume large enough to hold the instance's RAM; no block device "
    "mapping sets ebs.encrypted: true, so instances hibernate only if the AMI's root snapshot is encrypted or "
    "EBS encryption by default is on in the account"
)


class LaunchTemplateError(ValueError):
    """Input that cannot make a launch template; the message names the field."""


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name or ""):
        raise LaunchTemplateError(
            f"name: {name!r} is not allowed; use 3 to 128 letters, digits and the characters ( ) . - / _"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ebs(field: str, ebs: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(ebs) - set(EBS_FIELDS))
    if unknown:
        raise LaunchTemplateError(f"{field}.{unknown[0]}: is not an option of ebs; use {', '.join(sorted(EBS_FIELDS))}")
    result: dict[str, Any] = {}
    for key, value in ebs.items():
        if value is None:
            continue
        if key in EBS_INTS and (not _is_int(value) or value < 1):
            raise LaunchTemplateError(f"{field}.{key}: {value!r} is not allowed; use an integer >= 1")
        if key in EBS_BOOLS and not isinstance(value, bool):
            raise LaunchTemplateError(f"{field}.{key}: {value!r} is not allowed; use true or false")
        if key == "volume_type" and value not in VOLUME_TYPES:
            raise LaunchTemplateError(
                f"{field}.volume_type: {value!r} is not allowed; use one of {', '.join(VOLUME_TYPES)}"
            )
        result[EBS_FIELDS[key]] = value
    return result


def block_device_mappings(mappings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """amazon.aws's snake_case block device mappings in the API's shape, validated."""
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, mapping in enumerate(mappings):
        field = f"block_device_mappings[{index}]"
        if not isinstance(mapping, dict):
            raise LaunchTemplateError(f"{field}: {mapping!r} is not allowed; use a dict with device_name and ebs")
        unknown = sorted(set(mapping) - set(MAPPING_FIELDS) - {"ebs"})
        if unknown:
            raise LaunchTemplateError(
                f"{field}.{unknown[0]}: is not an option of a block device mapping; "
                f"use {', '.join(sorted([*MAPPING_FIELDS, 'ebs']))}"
            )
        device = mapping.get("device_name")
        if not device:
            raise LaunchTemplateError(
                f"{field}.device_name: {device!r} is not allowed; use a device name such as /dev/xvda"
            )
        if device in seen:
            raise LaunchTemplateError(f"{field}.device_name: {device!r} is mapped twice; map each device once")
        seen.add(device)
        item = {
            MAPPING_FIELDS[key]: value for key, value in mapping.items() if key in MAPPING_FIELDS and value is not None
        }
        ebs = _ebs(f"{field}.ebs", mapping.get("ebs") or {})
        if ebs:
            item["Ebs"] = ebs
        result.append(item)
    return result


def check_user_data(user_data: str) -> None:
    try:
        decoded = base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise LaunchTemplateError(
            "user_data: the value is not valid base64; encode the script first (for example with the b64encode filter)"
        ) from None
    if len(decoded) > USER_DATA_LIMIT:
        raise LaunchTemplateError(
            f"user_data: {len(decoded)} bytes is not allowed; use at most {USER_DATA_LIMIT} bytes"
        )


def instance_profile(name_or_arn: str) -> dict[str, str]:
    """``IamInstanceProfile`` for a profile name or ARN (no IAM look-up: EC2 takes either)."""
    if name_or_arn.startswith("arn:"):
        if not INSTANCE_PROFILE_ARN.match(name_or_arn):
            raise LaunchTemplateError(
                f"iam_instance_profile: {name_or_arn!r} is not allowed; use an instance profile name or an ARN "
                "like arn:aws:iam::123456789012:instance-profile/NAME"
            )
        return {"Arn": name_or_arn}
    if not name_or_arn or "/" in name_or_arn:
        raise LaunchTemplateError(
            f"iam_instance_profile: {name_or_arn!r} is not allowed; use an instance profile name (no path) or its ARN"
        )
    return {"Name": name_or_arn}


def wanted_data(
    image_id: str | None = None,
    instance_type: str | None = None,
    user_data: str | None = None,
    mappings: list[dict[str, Any]] | None = None,
    security_group_ids: list[str] | None = None,
    iam_instance_profile: str | None = None,
    key_name: str | None = None,
    hibernation: bool = True,
) -> dict[str, Any]:
    """The ``LaunchTemplateData`` the user asked for; raises LaunchTemplateError naming the bad field."""
    data: dict[str, Any] = {}
    if image_id is not None:
        if not image_id.startswith(("ami-", "resolve:ssm:")):
            raise LaunchTemplateError(
                f"image_id: {image_id!r} is not allowed; use an AMI ID such as ami-0123456789abcdef0 "
                "or a resolve:ssm: parameter"
            )
        data["ImageId"] = image_id
    if instance_type is not None:
        if "." not in instance_type:
            raise LaunchTemplateError(f"instance_type: {instance_type!r} is not allowed; use a type such as m5.large")
        data["InstanceType"] = instance_type
    if user_data:
        check_user_data(user_data)
        data["UserData"] = user_data
    if mappings:
        data["BlockDeviceMappings"] = block_device_mappings(mappings)
    if security_group_ids:
        for group_id in security_group_ids:
            if not SECURITY_GROUP_ID.match(group_id or ""):
                raise LaunchTemplateError(
                    f"security_group_ids: {group_id!r} is not allowed; "
                    "use security group IDs such as sg-0123456789abcdef0"
                )
        data["SecurityGroupIds"] = sorted(set(security_group_ids))
    if iam_instance_profile:
        data["IamInstanceProfile"] = instance_profile(iam_instance_profile)
    if key_name:
        data["KeyName"] = key_name
    if hibernation:
        data["HibernationOptions"] = {"Configured": True}
    return data


def normalise(data: dict[str, Any] | None) -> dict[str, Any]:
    """Launch template data in a form where equal templates compare equal.

    Security group IDs are a set; block device mappings are keyed by device; hibernation switched off is
    the same as no ``HibernationOptions``; tags of the template itself are not version data (moto copies
    them into it, AWS does not).
    """
    result = {key: value for key, value in (data or {}).items() if value not in (None, [], {})}
    if "SecurityGroupIds" in result:
        result["SecurityGroupIds"] = sorted(set(result["SecurityGroupIds"]))
    if "BlockDeviceMappings" in result:
        result["BlockDeviceMappings"] = sorted(result["BlockDeviceMappings"], key=lambda m: str(m.get("DeviceName")))
    if not (result.get("HibernationOptions") or {}).get("Configured"):
        result.pop("HibernationOptions", None)
    specs = [s for s in result.get("TagSpecifications") or [] if s.get("ResourceType") != "launch-template"]
    if specs:
        result["TagSpecifications"] = specs
    else:
        result.pop("TagSpecifications", None)
    return result


def needs_new_version(latest: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether the latest version's data differs from the wanted data."""
    return normalise(latest) != normalise(wanted)


def tag_changes(current: dict[str, str], wanted: dict[str, str] | None) -> tuple[dict[str, str], list[str]]:
    """Tags to set and keys to remove so the template carries exactly ``wanted`` (None: leave tags alone)."""
    if wanted is None:
        return {}, []
    to_set = {key: str(value) for key, value in wanted.items() if current.get(key) != str(value)}
    to_remove = sorted(key for key in current if key not in wanted)
    return to_set, to_remove


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags or []}


def hibernation_warnings(data: dict[str, Any]) -> list[str]:
    """Why instances of a hibernating template may fail to hibernate (checks without reading AWS)."""
    if not (data.get("HibernationOptions") or {}).get("Configured"):
        return []
    encrypted = any((m.get("Ebs") or {}).get("Encrypted") for m in data.get("BlockDeviceMappings") or [])
    return [] if encrypted else [HIBERNATION_ROOT_HINT]


def describe(template: dict[str, Any] | None) -> dict[str, Any]:
    """The module's ``template`` return value (snake_case); empty when there is no template."""
    if not template:
        return {}
    return {
        "launch_template_id": template.get("LaunchTemplateId"),
        "launch_template_name": template.get("LaunchTemplateName"),
        "latest_version_number": template.get("LatestVersionNumber"),
        "default_version_number": template.get("DefaultVersionNumber"),
        "tags": tags_dict(template.get("Tags")),
    }
