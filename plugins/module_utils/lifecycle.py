# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which lifecycle actions still wait for a call, as a pure function over API-shaped dicts."""

from __future__ import annotations

from typing import Any

WAITING = {"Pending:Wait", "Terminating:Wait", "Warmed:Pending:Wait", "Warmed:Terminating:Wait"}


def plan(actions: list[dict[str, Any]], described: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Per action: its result entry, with ``reason`` set when no call is needed.

    ``described`` is DescribeAutoScalingInstances output for the actions' instances.
    """
    by_id = {instance["InstanceId"]: instance for instance in described}
    planned = []
    for action in actions:
        instance = by_id.get(action["instance_id"]) or {}
        state = instance.get("LifecycleState")
        entry: dict[str, Any] = {
            "instance_id": action["instance_id"],
            "group": action.get("group") or instance.get("AutoScalingGroupName"),
            "lifecycle_state": state,
            "done": False,
            "reason": None,
        }
        if not instance:
            entry["reason"] = "not in an Auto Scaling group"
        elif state not in WAITING:
            entry["reason"] = f"not waiting in a lifecycle hook (state {state})"
        planned.append((action, entry))
    return planned
