# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decisions about handing a group's kept EBS volume (``spotmax:persistence_dev``) from retiring
instances to their replacements, as pure functions over API-shaped dicts."""

from __future__ import annotations

import re
from typing import Any

DEVICE_TAG = "spotmax:persistence_dev"
# Written on a kept volume when it is protected or detached: the retiring instance it came from, so a
# later run finds the volume again once it is detached (or its instance is gone).
FROM_TAG = "spotmax:handover_from"
DEVICE_NAME = re.compile(r"^/dev/(sd|xvd)([f-p])$")
DEVICE_HINT = "a device name /dev/sd[f-p] or /dev/xvd[f-p] (for example /dev/sdf)"
INSTANCE_ID = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
INSTANCE_HINT = "an EC2 instance id (i- followed by 8 or 17 hexadecimal digits)"
# Where a replacement may receive the volume: EC2 attaches volumes to running (or stopped) instances only;
# pending instances are waited for.
READY_STATES = frozenset({"running"})
COMING_STATES = frozenset({"pending"})
GROUP_STATES = ("Pending", "InService")  # lifecycle states (and their ":Wait"/":Proceed" forms) of a replacement


class HandoverError(ValueError):
    """Input or group configuration that forbids the handover; the message names the field."""


def device_error(field: str, value: Any) -> str | None:
    """The message for a device name that is not allowed, None when it is."""
    if isinstance(value, str) and DEVICE_NAME.match(value):
        return None
    return f"{field}: {value!r} is not allowed; use {DEVICE_HINT}"


def same_device(left: str, right: str) -> bool:
    """True when two mapping names designate the same slot (``/dev/sdf`` and ``/dev/xvdf`` do)."""
    first, second = DEVICE_NAME.match(left), DEVICE_NAME.match(right)
    if first is None or second is None:
        return left == right
    return first.group(2) == second.group(2)


def retiring_instances(instances: list[Any], device_name: str | None) -> list[dict[str, str | None]]:
    """Validate the ``instances`` option: ``instance_id`` (required), optional ``group`` and ``device_name``.

    Other keys (the rest of an interruption plan's entry) are ignored. Returns ``instance_id``, ``group``,
    ``device_name`` per distinct instance, in the given order; raises :class:`HandoverError` naming the field.
    """
    if device_name is not None and (message := device_error("device_name", device_name)):
        raise HandoverError(message)
    found: dict[str, dict[str, str | None]] = {}
    for index, given in enumerate(instances):
        field = f"instances[{index}]"
        entry = {"instance_id": given} if isinstance(given, str) else given
        if not isinstance(entry, dict):
            raise HandoverError(f"{field}: {entry!r} is not allowed; use a dict with instance_id (and group)")
        instance_id = entry.get("instance_id")
        if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id):
            raise HandoverError(f"{field}.instance_id: {instance_id!r} is not allowed; use {INSTANCE_HINT}")
        group = entry.get("group")
        if group is not None and (not isinstance(group, str) or not group):
            raise HandoverError(f"{field}.group: {group!r} is not allowed; use an Auto Scaling group name or omit it")
        device = entry.get("device_name")
        if device is not None and (message := device_error(f"{field}.device_name", device)):
            raise HandoverError(message)
        previous = found.get(instance_id)
        wanted: dict[str, str | None] = {"instance_id": instance_id, "group": group, "device_name": device}
        if previous is not None and previous != wanted:
            raise HandoverError(
                f"{field}.instance_id: {instance_id!r} is given twice with different group or device_name"
            )
        found[instance_id] = wanted
    return list(found.values())


def group_device(group: dict[str, Any]) -> str | None:
    """The group's ``spotmax:persistence_dev`` tag, None without it; raises on a value that is not allowed."""
    for tag in group.get("Tags", []):
        if tag.get("Key") == DEVICE_TAG:
            value = str(tag.get("Value", "")).strip()
            if not value:
                return None
            message = device_error(f"group {group.get('AutoScalingGroupName')!r} tag {DEVICE_TAG}", value)
            if message:
                raise HandoverError(message)
            return value
    return None


def resolve(
    retiring: list[dict[str, str | None]],
    asg_groups: dict[str, str],
    ec2_instances: dict[str, dict[str, Any]],
    groups: dict[str, dict[str, Any]],
    device_name: str | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each retiring instance's group, device, zone and launch time; and the instances skipped, with the reason.

    The group is the one given, else Auto Scaling's view (``asg_groups``), else the instance's
    ``aws:autoscaling:groupName`` tag. The device is the entry's, else ``device_name``, else the group's tag.
    """
    resolved: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for entry in retiring:
        instance_id = str(entry["instance_id"])
        instance = ec2_instances.get(instance_id, {})
        tags = {tag.get("Key"): tag.get("Value") for tag in instance.get("Tags", [])}
        group = entry["group"] or asg_groups.get(instance_id) or tags.get("aws:autoscaling:groupName")
        if not group:
            skipped.append(_skip(instance_id, None, "no Auto Scaling group known; give instances[].group"))
            continue
        if group not in groups:
            skipped.append(_skip(instance_id, None, f"Auto Scaling group {group!r} does not exist"))
            continue
        device = entry["device_name"] or device_name or group_device(groups[group])
        if not device:
            skipped.append(_skip(instance_id, None, f"group {group!r} keeps no volume (no {DEVICE_TAG} tag)"))
            continue
        resolved.append(
            {
                "instance_id": instance_id,
                "group": group,
                "device_name": device,
                "availability_zone": instance.get("Placement", {}).get("AvailabilityZone"),
                "known": bool(instance),
            }
        )
    return resolved, skipped


def _skip(instance_id: str, volume_id: str | None, reason: str) -> dict[str, Any]:
    return {"instance_id": instance_id, "volume_id": volume_id, "reason": reason}


def mapping_at(instance: dict[str, Any], device: str) -> dict[str, Any] | None:
    """The instance's EBS block device mapping at ``device`` (or its sd/xvd twin), None without one."""
    for mapping in instance.get("BlockDeviceMappings", []):
        if same_device(str(mapping.get("DeviceName", "")), device) and mapping.get("Ebs", {}).get("VolumeId"):
            return dict(mapping)
    return None


def _tag(volume: dict[str, Any] | None, key: str) -> str | None:
    for tag in (volume or {}).get("Tags", []):
        if tag.get("Key") == key:
            return str(tag.get("Value"))
    return None


def protect_plan(
    resolved: list[dict[str, Any]], ec2_instances: dict[str, dict[str, Any]], volumes: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per retiring instance with a volume at its device: what to write so the volume outlives the instance.

    Returns (volumes, skipped); each volume carries ``set_delete_on_termination`` (the mapping still deletes
    the volume on termination), ``set_tag`` (the volume lacks ``spotmax:handover_from`` naming the instance)
    and ``tag_before`` (that tag's value now, None without it).
    """
    planned: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for entry in resolved:
        instance_id = entry["instance_id"]
        instance = ec2_instances.get(instance_id)
        if instance is None:
            skipped.append(_skip(instance_id, None, "instance not found"))
            continue
        mapping = mapping_at(instance, entry["device_name"])
        if mapping is None:
            skipped.append(_skip(instance_id, None, f"no EBS volume attached at {entry['device_name']}"))
            continue
        ebs = mapping["Ebs"]
        volume_id = str(ebs["VolumeId"])
        deletes = bool(ebs.get("DeleteOnTermination", False))
        tagged = _tag(volumes.get(volume_id), FROM_TAG)
        planned.append(
            {
                "volume_id": volume_id,
                "from_instance": instance_id,
                "to_instance": None,
                "group": entry["group"],
                "availability_zone": entry["availability_zone"],
                "device_name": str(mapping["DeviceName"]),
                "state": "protected" if deletes or tagged != instance_id else "unchanged",
                "set_delete_on_termination": deletes,
                "set_tag": tagged != instance_id,
                "tag_before": tagged,
            }
        )
    return planned, skipped


def _attachment(volume: dict[str, Any]) -> dict[str, Any] | None:
    attachments = [item for item in volume.get("Attachments", []) if item.get("State") != "detached"]
    return attachments[0] if attachments else None


def handover_plan(
    resolved: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    members: dict[str, set[str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What to do with each kept volume of the retiring instances.

    ``volumes`` are the volumes attached to the retiring instances and those tagged ``spotmax:handover_from``
    with one of their ids; ``members`` the instance ids of each group. A volume's retiring instance is the
    one it is attached to at its device, else its tag. Each planned volume gets an ``action``:
    ``detach`` (attached to the retiring instance: detach, then attach to a replacement), ``attach``
    (available, or being detached), or ``none`` (already attached at the device to another member of the
    group: handed over). Returns (volumes in retiring-instance then volume id order, skipped).
    """
    by_instance = {entry["instance_id"]: entry for entry in resolved}
    planned: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    seen: set[str] = set()
    for volume in sorted(volumes, key=lambda item: str(item["VolumeId"])):
        volume_id = str(volume["VolumeId"])
        if volume_id in seen:
            continue
        attachment = _attachment(volume)
        attached_to = str(attachment["InstanceId"]) if attachment else None
        attached_at = str(attachment.get("Device", "")) if attachment else None
        origin = None
        if attached_to in by_instance and attached_at is not None:
            if same_device(attached_at, by_instance[attached_to]["device_name"]):
                origin = attached_to
            else:
                continue  # another volume of the retiring instance (root, other data): not kept
        else:
            origin = _tag(volume, FROM_TAG)
        if origin not in by_instance:
            continue
        seen.add(volume_id)
        entry = by_instance[origin]
        item = {
            "volume_id": volume_id,
            "from_instance": origin,
            "to_instance": None,
            "group": entry["group"],
            "availability_zone": volume.get("AvailabilityZone") or entry["availability_zone"],
            "device_name": entry["device_name"],
            "set_tag": _tag(volume, FROM_TAG) != origin,
        }
        if attachment is None:
            item.update(action="attach", state="pending")
        elif attached_to == origin:
            detaching = attachment.get("State") == "detaching"
            item.update(action="attach" if detaching else "detach", state="pending")
        elif (
            attached_to in members.get(entry["group"], set())
            and attached_at is not None
            and same_device(attached_at, entry["device_name"])
        ):
            item.update(action="none", state="unchanged", to_instance=attached_to)
        else:
            skipped.append(
                _skip(
                    str(origin),
                    volume_id,
                    f"volume is attached to {attached_to} at {attached_at}, "
                    f"not a replacement in group {entry['group']!r}",
                )
            )
            continue
        planned.append(item)
    planned.sort(key=lambda item: (item["from_instance"], item["volume_id"]))
    return planned, skipped


def candidates(
    members: dict[str, dict[str, str]],
    ec2_instances: dict[str, dict[str, Any]],
    retiring: set[str],
) -> list[dict[str, Any]]:
    """The group members that could receive a kept volume, oldest launch first.

    ``members`` maps instance id to ``{"group", "zone", "lifecycle"}`` (Auto Scaling's view). Retiring
    instances and members not pending or in service are left out. Each candidate carries ``ready``
    (running: a volume can be attached now) and its mapped ``devices``.
    """
    found: list[dict[str, Any]] = []
    for instance_id, member in members.items():
        if instance_id in retiring or not member["lifecycle"].startswith(GROUP_STATES):
            continue
        instance = ec2_instances.get(instance_id)
        if instance is None:
            continue
        state = instance.get("State", {}).get("Name")
        if state not in READY_STATES | COMING_STATES:
            continue
        found.append(
            {
                "instance_id": instance_id,
                "group": member["group"],
                "availability_zone": instance.get("Placement", {}).get("AvailabilityZone") or member["zone"],
                "launch_time": str(instance.get("LaunchTime", "")),
                "ready": state in READY_STATES,
                "devices": sorted(
                    str(mapping.get("DeviceName")) for mapping in instance.get("BlockDeviceMappings", [])
                ),
            }
        )
    found.sort(key=lambda item: (item["launch_time"], item["instance_id"]))
    return found


def choose(to_place: list[dict[str, Any]], available: list[dict[str, Any]], taken: set[str]) -> dict[str, str]:
    """Volume id to replacement instance id: one volume per replacement, oldest launch first.

    A replacement is in the volume's group and zone, ready, has nothing at the volume's device and is not
    in ``taken`` (chosen already). Volumes are served in the given order; those without one are absent.
    """
    chosen: dict[str, str] = {}
    used = set(taken)
    for volume in to_place:
        for candidate in available:
            if (
                candidate["instance_id"] in used
                or not candidate["ready"]
                or candidate["group"] != volume["group"]
                or candidate["availability_zone"] != volume["availability_zone"]
                or any(same_device(device, volume["device_name"]) for device in candidate["devices"])
            ):
                continue
            chosen[volume["volume_id"]] = candidate["instance_id"]
            used.add(candidate["instance_id"])
            break
    return chosen


def pending_message(pending: list[dict[str, Any]], wait_timeout: int) -> str:
    """The failure message naming the volumes left without a replacement (or not yet attached to it)."""
    listed = "; ".join(
        f"{item['volume_id']} from {item['from_instance']} (group {item['group']}, zone {item['availability_zone']}"
        + (f", attaching to {item['to_instance']})" if item.get("to_instance") else ")")
        for item in pending
    )
    return (
        f"{len(pending)} volume(s) not handed over within wait_timeout ({wait_timeout} s), no running replacement "
        f"with nothing at the device being found: {listed}; they are kept (DeleteOnTermination false, tag {FROM_TAG}) "
        "and a later run with the same instances attaches them"
    )
