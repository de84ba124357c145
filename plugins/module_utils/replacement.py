# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What to do to replace interrupted instances at once, as a pure plan over API-shaped dicts.

An instance is detached without decrementing its group's desired capacity, so the group starts a
replacement now (from its own warm pool when it has one) instead of after the instance is gone.
When the group has a standby group (an On-Demand group tagged ``spotmax:standby_for: <group>``
with a warm pool), the standby group is scaled out by as many instances, so warm capacity serves
in seconds while the group's own replacements boot.

An instance of a renewal round in progress (tagged ``spotmax:renewing``) has its replacement launched
already: it is detached with the desired capacity decremented, and no standby capacity is added for it.
Otherwise the round's retirement, which decrements once per instance it terminates, would leave the
group one instance above its capacity for every such instance.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import tag_map

STANDBY_KEY = "spotmax:standby_for"
# AWS lets DetachInstances take instances in these states only.
DETACHABLE = {"InService", "Standby"}


def standby_groups(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{served group name: standby group}`` from groups tagged ``spotmax:standby_for``."""
    found: dict[str, dict[str, Any]] = {}
    for group in sorted(groups, key=lambda g: g["AutoScalingGroupName"]):
        served = tag_map(group.get("Tags")).get(STANDBY_KEY)
        if served and served not in found:
            found[served] = group
    return found


def plan(
    instance_ids: list[str],
    asg_instances: list[dict[str, Any]],
    standby: dict[str, dict[str, Any]],
    use_standby: bool = True,
    renewing: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The detaches and standby scale-outs that replace ``instance_ids``, and what is skipped and why.

    ``asg_instances`` is DescribeAutoScalingInstances output; ids missing from it are in no group
    (already detached or terminated), which makes a repeated run a no-op. ``renewing`` are the instances
    of renewal rounds in progress: ``detach_renewed`` lists them, to detach with a decrement.
    """
    by_id = {instance["InstanceId"]: instance for instance in asg_instances}
    detach: dict[str, list[str]] = {}
    detach_renewed: dict[str, list[str]] = {}
    skipped: list[dict[str, str]] = []
    for instance_id in sorted(set(instance_ids)):
        described = by_id.get(instance_id)
        if described is None:
            skipped.append({"instance_id": instance_id, "reason": "not in an Auto Scaling group"})
            continue
        state = described.get("LifecycleState", "")
        if state not in DETACHABLE:
            skipped.append({"instance_id": instance_id, "reason": f"lifecycle state {state} cannot be detached"})
            continue
        target = detach_renewed if instance_id in renewing else detach
        target.setdefault(described["AutoScalingGroupName"], []).append(instance_id)
    scale_out: dict[str, dict[str, Any]] = {}
    if use_standby:
        for group_name, ids in detach.items():
            spare = standby.get(group_name)
            if spare is None:
                continue
            name = spare["AutoScalingGroupName"]
            entry = scale_out.setdefault(
                name,
                {"from": spare["DesiredCapacity"], "max_size": spare["MaxSize"], "wanted": spare["DesiredCapacity"]},
            )
            entry["wanted"] += len(ids)
    standby_changes = {
        name: {
            "from": entry["from"],
            "to": min(entry["wanted"], entry["max_size"]),
            "capped": entry["wanted"] > entry["max_size"],
        }
        for name, entry in scale_out.items()
        if min(entry["wanted"], entry["max_size"]) != entry["from"]
    }
    return {"detach": detach, "detach_renewed": detach_renewed, "standby": standby_changes, "skipped": skipped}


def detachable(instance_ids: list[str], asg_instances: list[dict[str, Any]]) -> list[str]:
    """The ids among ``instance_ids`` that are group members AWS lets DetachInstances take."""
    wanted = set(instance_ids)
    return sorted(
        i["InstanceId"] for i in asg_instances if i["InstanceId"] in wanted and i.get("LifecycleState") in DETACHABLE
    )
