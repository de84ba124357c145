# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""On-Demand fallback and the way back to Spot, as pure decisions over API-shaped dicts.

Fallback: a group (``spotmax:is_enable_od_fallback``, default true) whose latest launch failed for
lack of Spot capacity and that is short of its desired capacity gets an On-Demand share of 100 %,
so Auto Scaling meets the desired capacity with On-Demand instances. The group records when
(``spotmax:od_fallback_at``) and the distribution it had (``spotmax:od_fallback_from``,
``<base>/<percentage>``).

Revert: once some fallback instances have lived ``spotmax:od_least_live_mins``, the recorded
distribution is restored (later launches are Spot again) and the instances above the configured
On-Demand share are renewed launch-first (see ``renewal``); when none are left the two tags go.
A standby group (``spotmax:standby_for``) that served its group is scaled back in once its group
is at full capacity again and its instances have lived ``spotmax:od_least_live_mins``.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import tag_map
from ansible_collections.spotmax.maxgroup.plugins.module_utils.renewal import (
    FALLBACK_AT_KEY,
    FALLBACK_FROM_KEY,
    age_minutes,
    as_utc,
    distribution,
    excess_on_demand,
    is_spot,
    is_spot_capacity_failure,
    members,
    parse_fallback_from,
    settings,
)

LAUNCH_DESCRIPTION = "Launching a new EC2 instance"


def _in_service_count(group: dict[str, Any]) -> int:
    return sum(1 for m in members(group) if m.get("LifecycleState") == "InService")


def short_of_spot(group: dict[str, Any], activities: list[dict[str, Any]]) -> bool:
    """Short of desired capacity, and the latest launch activity failed for lack of Spot capacity."""
    if _in_service_count(group) >= int(group["DesiredCapacity"]):
        return False
    launches = [a for a in activities if str(a.get("Description", "")).startswith(LAUNCH_DESCRIPTION)]
    if not launches:
        return False
    latest_failed: bool = is_spot_capacity_failure(max(launches, key=lambda activity: as_utc(activity["StartTime"])))
    return latest_failed


def with_distribution(group: dict[str, Any], base: int, percentage: int) -> dict[str, Any]:
    """The group's mixed instances policy with another On-Demand base and share, ready to send back."""
    policy: dict[str, Any] = copy.deepcopy(group["MixedInstancesPolicy"])
    spec = policy.get("LaunchTemplate", {}).get("LaunchTemplateSpecification", {})
    if spec.get("LaunchTemplateId"):
        spec.pop("LaunchTemplateName", None)  # UpdateAutoScalingGroup takes the id or the name, not both
    policy.setdefault("InstancesDistribution", {}).update(
        {"OnDemandBaseCapacity": base, "OnDemandPercentageAboveBaseCapacity": percentage}
    )
    return policy


def _current(group: dict[str, Any]) -> tuple[int, int]:
    found = distribution(group) or {}
    return int(found.get("OnDemandBaseCapacity") or 0), int(found.get("OnDemandPercentageAboveBaseCapacity", 100))


def fallback(group: dict[str, Any], activities: list[dict[str, Any]], now: datetime, force: bool) -> dict[str, Any]:
    """What falling back means for ``group``: ``action`` is ``fallback`` or ``none`` with a ``reason``."""
    name = group["AutoScalingGroupName"]
    decision: dict[str, Any] = {"group": name, "action": "none", "reason": "", "policy": None, "tags": {}}
    if distribution(group) is None:
        decision["reason"] = "no mixed instances policy: the group has no Spot share to fall back from"
        return decision
    if not settings(group)["is_enable_od_fallback"]:
        decision["reason"] = "spotmax:is_enable_od_fallback is false"
        return decision
    base, percentage = _current(group)
    if percentage == 100:
        decision["reason"] = "already On-Demand (100 % above base)"
        return decision
    if not force and not short_of_spot(group, activities):
        decision["reason"] = "Spot launches are not failing for lack of capacity"
        return decision
    tags = tag_map(group.get("Tags"))
    wanted = {FALLBACK_AT_KEY: now.strftime("%Y-%m-%dT%H:%M:%SZ"), FALLBACK_FROM_KEY: f"{base}/{percentage}"}
    if FALLBACK_FROM_KEY in tags:  # back to On-Demand after a revert that found no Spot: keep the record
        wanted = {}
    decision.update({"action": "fallback", "reason": "", "policy": with_distribution(group, base, 100), "tags": wanted})
    return decision


def revert(group: dict[str, Any], instances: dict[str, dict[str, Any]], now: datetime) -> dict[str, Any]:
    """What returning ``group`` to Spot means now: ``action`` is ``restore``, ``finish`` or ``none``.

    ``restore`` puts the recorded distribution back (fallback instances old enough to be renewed);
    ``finish`` also removes the fallback tags (no On-Demand instance above the configured share).
    """
    name = group["AutoScalingGroupName"]
    tags = tag_map(group.get("Tags"))
    decision: dict[str, Any] = {"group": name, "action": "none", "reason": "", "policy": None, "excess": 0}
    if FALLBACK_FROM_KEY not in tags:
        decision["reason"] = "not in On-Demand fallback"
        return decision
    base, percentage = parse_fallback_from(name, tags[FALLBACK_FROM_KEY])
    least = settings(group)["od_least_live_mins"]
    excess = excess_on_demand(group, instances, base, percentage)
    decision["excess"] = max(0, excess)
    serving = [m["InstanceId"] for m in members(group) if m.get("LifecycleState") == "InService"]
    old_enough = [
        instance_id
        for instance_id in serving
        if instance_id in instances
        and not is_spot(instances[instance_id])
        and age_minutes(instances[instance_id], now) >= least
    ]
    if excess > 0 and not old_enough:
        decision["reason"] = f"the fallback instances have not lived spotmax:od_least_live_mins ({least}) yet"
        return decision
    policy = with_distribution(group, base, percentage) if _current(group) != (base, percentage) else None
    decision.update({"action": "restore" if excess > 0 else "finish", "policy": policy})
    return decision


def scale_in_standby(
    group: dict[str, Any], served: dict[str, Any] | None, instances: dict[str, dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """A standby group's way back: fewer instances once its group is whole again (None: nothing to do)."""
    name = group["AutoScalingGroupName"]
    decision: dict[str, Any] = {"group": name, "action": "none", "reason": "", "desired": int(group["DesiredCapacity"])}
    if served is None:
        decision["reason"] = "the group it stands by for does not exist"
        return decision
    if _in_service_count(served) < int(served["DesiredCapacity"]):
        decision["reason"] = f"{served['AutoScalingGroupName']} is not at its desired capacity yet"
        return decision
    least = settings(group)["od_least_live_mins"]
    serving = [m["InstanceId"] for m in members(group) if m.get("LifecycleState") == "InService"]
    old_enough = [i for i in serving if i in instances and age_minutes(instances[i], now) >= least]
    desired = max(int(group["MinSize"]), int(group["DesiredCapacity"]) - len(old_enough))
    if desired < int(group["DesiredCapacity"]):
        decision.update({"action": "scale_in", "desired": desired})
    return decision
