# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Launch-first renewal of a group's instances, as pure decisions over API-shaped dicts.

A renewal round takes up to ``spotmax:max_num_of_terminated_one_time`` instances of a group out of
service only after their replacements are in service:

1. launch: the instances are marked with ``spotmax:renewing`` (value: the group's desired capacity
   before the round) and the desired capacity is raised by their number;
2. once as many unmarked instances are InService as that recorded capacity, they are drained and
   deregistered (by the caller) and retired with TerminateInstanceInAutoScalingGroup, decrementing
   the desired capacity back (so the group's lifecycle hooks run).

The mark makes a run that was cut short resumable: a later run finds the marked instances and the
capacity they were taken from, and neither raises the capacity twice nor picks other instances.

Two reasons select instances: ``duration`` (older than the group's guarantee, see ``duration``)
and ``on_demand`` (On-Demand instances a group launched while it fell back from Spot, above its
configured On-Demand share, once they have lived ``spotmax:od_least_live_mins``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import DurationError, parse_duration
from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import TagError, group_settings, tag_map

RENEWING_KEY = "spotmax:renewing"
FALLBACK_AT_KEY = "spotmax:od_fallback_at"
FALLBACK_FROM_KEY = "spotmax:od_fallback_from"
REASONS = ("duration", "on_demand")
IN_SERVICE = "InService"


class RenewalError(ValueError):
    """A group whose tags or state do not allow a renewal; the message names the group and the cause."""


def response_time(response: dict[str, Any]) -> datetime:
    """AWS's "now": the Date header of an API response (so the controller's clock does not matter)."""
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not header:
        raise RenewalError("the AWS response carries no Date header to measure instance ages with")
    return parsedate_to_datetime(str(header))


def as_utc(moment: datetime | str) -> datetime:
    """An aware datetime from boto3's datetimes or ISO 8601 text (naive means UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def age_minutes(instance: dict[str, Any], now: datetime) -> float:
    return (as_utc(now) - as_utc(instance["LaunchTime"])).total_seconds() / 60


def is_spot(instance: dict[str, Any]) -> bool:
    return instance.get("InstanceLifecycle") == "spot"


def distribution(group: dict[str, Any]) -> dict[str, Any] | None:
    policy = group.get("MixedInstancesPolicy")
    return None if policy is None else dict(policy.get("InstancesDistribution") or {})


def on_demand_target(desired: int, base: int, percentage: int) -> int:
    """On-Demand capacity a distribution keeps at ``desired`` (Auto Scaling rounds towards On-Demand)."""
    if desired <= base:
        return desired
    return base + math.ceil((desired - base) * percentage / 100)


def parse_fallback_from(name: str, value: str) -> tuple[int, int]:
    """(base, percentage) recorded by the fallback as ``<base>/<percentage>``."""
    parts = value.split("/")
    if len(parts) == 2 and all(part.isdigit() for part in parts) and int(parts[1]) <= 100:
        return int(parts[0]), int(parts[1])
    raise RenewalError(
        f"group {name!r}: tag {FALLBACK_FROM_KEY} has the value {value!r}; "
        "allowed is <OnDemandBaseCapacity>/<OnDemandPercentageAboveBaseCapacity>, e.g. 0/0"
    )


def members(group: dict[str, Any]) -> list[dict[str, Any]]:
    return list(group.get("Instances") or [])


def marked(group: dict[str, Any], instances: dict[str, dict[str, Any]]) -> dict[str, int]:
    """``{instance id: recorded desired capacity}`` of the group's instances in a renewal round."""
    found: dict[str, int] = {}
    for member in members(group):
        if str(member.get("LifecycleState", "")).startswith("Terminating"):
            continue  # retired already; its hooks are running
        instance = instances.get(member["InstanceId"])
        value = tag_map(instance.get("Tags") if instance else None).get(RENEWING_KEY)
        if value is not None and value.isdigit():
            found[member["InstanceId"]] = int(value)
    return found


def settings(group: dict[str, Any]) -> dict[str, Any]:
    """The group's ``spotmax:`` settings; :class:`RenewalError` for a tag that breaks the contract."""
    try:
        found: dict[str, Any] = group_settings(group["AutoScalingGroupName"], group.get("Tags"))
    except TagError as exc:
        raise RenewalError(str(exc)) from exc
    return found


def in_progress(group: dict[str, Any], instances: dict[str, dict[str, Any]]) -> tuple[list[str], int]:
    """(renewed instance ids, desired capacity before the round) of a round in progress; ([], 0) without one."""
    in_flight = marked(group, instances)
    return (sorted(in_flight), min(in_flight.values())) if in_flight else ([], 0)


def _in_service(group: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in members(group) if m.get("LifecycleState") == IN_SERVICE and m.get("HealthStatus") != "Unhealthy"]


def due(group: dict[str, Any], instances: dict[str, dict[str, Any]], now: datetime, reason: str) -> list[str]:
    """Instance ids the ``reason`` selects in ``group``, oldest first (marked ones excluded).

    Raises :class:`RenewalError` for a group whose tags break the contract.
    """
    name = group["AutoScalingGroupName"]
    tags = tag_map(group.get("Tags"))
    in_flight = marked(group, instances)
    candidates = [
        instances[m["InstanceId"]]
        for m in _in_service(group)
        if m["InstanceId"] in instances and m["InstanceId"] not in in_flight
    ]
    candidates.sort(key=lambda instance: (as_utc(instance["LaunchTime"]), instance["InstanceId"]))
    if reason == "duration":
        try:
            wanted = parse_duration(name, tags)
        except DurationError as exc:
            raise RenewalError(str(exc)) from exc
        if wanted is None:
            return []
        return [i["InstanceId"] for i in candidates if age_minutes(i, now) >= wanted.guarantee_living_mins]
    least = settings(group)["od_least_live_mins"]
    if FALLBACK_FROM_KEY not in tags:
        return []
    base, percentage = parse_fallback_from(name, tags[FALLBACK_FROM_KEY])
    on_demand = [i for i in candidates if not is_spot(i)]
    excess = excess_on_demand(group, instances, base, percentage)
    old_enough = [i["InstanceId"] for i in on_demand if age_minutes(i, now) >= least]
    return old_enough[: max(0, excess)]


def excess_on_demand(group: dict[str, Any], instances: dict[str, dict[str, Any]], base: int, percentage: int) -> int:
    """In-service On-Demand instances above what the (base, percentage) distribution keeps."""
    serving = [m["InstanceId"] for m in _in_service(group) if m["InstanceId"] in instances]
    on_demand = sum(1 for instance_id in serving if not is_spot(instances[instance_id]))
    return on_demand - on_demand_target(int(group["DesiredCapacity"]), base, percentage)


def launch_plan(group: dict[str, Any], instances: dict[str, dict[str, Any]], candidates: list[str]) -> dict[str, Any]:
    """The round for ``group``: the instances it renews, what to mark, the capacity it raises to.

    A round in progress (marked instances) is resumed as it was recorded. A group at its maximum size
    has no room for launch-first replacements and is skipped with the reason, and so is a group keeping
    data volumes (``spotmax:persistence_dev``) in several zones: its replacement could start in another
    zone than the volume it must receive, and the round would wait on that handover.
    """
    name = group["AutoScalingGroupName"]
    desired = int(group["DesiredCapacity"])
    renewing, base = in_progress(group, instances)
    plan: dict[str, Any] = {"group": name, "desired_before": desired, "mark": [], "skipped": None}
    if renewing:
        target = base + len(renewing)
    else:
        room = int(group["MaxSize"]) - desired
        found = settings(group)
        zones = sorted(group.get("AvailabilityZones") or [])
        count = min(int(found["max_num_of_terminated_one_time"]), room, len(candidates))
        if candidates and room <= 0:
            plan["skipped"] = (
                f"no room for launch-first replacements: desired capacity {desired} is the maximum size; "
                "raise max_size above the desired capacity"
            )
        elif candidates and found["persistence_dev"] and len(zones) > 1:
            count = 0
            plan["skipped"] = (
                f"spotmax:persistence_dev in {len(zones)} zones ({', '.join(zones)}): a launch-first replacement "
                "may start in another zone than the data volume it must receive; run the group in one zone"
            )
        base, renewing, target = desired, candidates[:count], desired + count
        plan["mark"] = list(renewing)
    plan.update({"base": base, "renewing": renewing, "desired": max(desired, target) if renewing else desired})
    return plan


def ready(group: dict[str, Any], renewing: list[str], base: int) -> bool:
    """Whether the replacements are in: as many unmarked instances InService as the recorded capacity."""
    serving = [m for m in _in_service(group) if m["InstanceId"] not in renewing]
    return len(serving) >= base


def is_spot_capacity_failure(activity: dict[str, Any]) -> bool:
    """A scaling activity that failed for lack of Spot capacity."""
    message = str(activity.get("StatusMessage", ""))
    return activity.get("StatusCode") == "Failed" and "InsufficientInstanceCapacity" in message and "Spot" in message


def spot_failures(activities: list[dict[str, Any]], since: datetime) -> list[dict[str, Any]]:
    """Failed launch activities since ``since`` for lack of Spot capacity."""
    return [
        activity
        for activity in activities
        if is_spot_capacity_failure(activity) and as_utc(activity["StartTime"]) >= as_utc(since) - timedelta(seconds=1)
    ]
