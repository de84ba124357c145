# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""CloudWatch metrics of an interruption batch, aggregated per Auto Scaling group: pure functions.

Inputs are the results of the batch's modules: interruption_plan's ``plan``, k8s_drain_nodes'
results, asg_replace_instances' ``replacement`` and consul_deregister's ``consul_deregistrations``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

DEFAULT_NAMESPACE = "SpotMax"
GROUP_DIMENSION = "AutoScalingGroupName"
KIND_DIMENSION = "Kind"
# PutMetricData: at most 1000 datums and 1 MB of request per call.
MAX_DATUMS = 1000
MAX_BYTES = 1_000_000
# The query protocol spells every field with its member path (MetricData.member.N.Dimensions.member.M.Name=...):
# a request is several times the datum's JSON. This factor keeps the estimate on the safe side.
ENCODING_FACTOR = 4
NAMESPACE = re.compile(r"^[0-9A-Za-z.\-_/#:]{1,255}$")


class MetricsError(ValueError):
    """An input that is not what the batch's modules return."""


def namespace_error(namespace: str) -> str | None:
    if not NAMESPACE.match(namespace) or namespace.startswith("AWS/"):
        return (
            f"namespace: {namespace!r} is not allowed; use 1 to 255 characters of letters, digits and . - _ / # :"
            " not starting with AWS/"
        )
    return None


def _count(group: str, name: str, value: float, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metric_name": name,
        "dimensions": {GROUP_DIMENSION: group, **(extra or {})},
        "value": value,
        "statistic_values": None,
        "unit": "Count",
    }


def _statistics(group: str, name: str, values: list[float], unit: str) -> dict[str, Any]:
    return {
        "metric_name": name,
        "dimensions": {GROUP_DIMENSION: group},
        "value": None,
        "statistic_values": {
            "sample_count": len(values),
            "sum": sum(values),
            "minimum": min(values),
            "maximum": max(values),
        },
        "unit": unit,
    }


def _dict(value: Any, field: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetricsError(f"{field}: {value!r} is not allowed; use {what}")
    return value


def _list(value: Any, field: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise MetricsError(f"{field}: {value!r} is not allowed; use {what}")
    return value


def standby_served(groups: list[dict[str, Any]], standby_key: str) -> dict[str, str]:
    """``{standby group: served group}`` from DescribeAutoScalingGroups output of the standby groups."""
    served: dict[str, str] = {}
    for group in groups:
        for tag in group.get("Tags") or []:
            if tag.get("Key") == standby_key and tag.get("Value"):
                served[group["AutoScalingGroupName"]] = tag["Value"]
    return served


def aggregate(
    plan: Any = None,
    drain: Any = None,
    replacement: Any = None,
    deregistrations: Any = None,
    served: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(datums, instance ids that could not be attributed to a group).

    ``served`` maps a standby group to the group it serves (see :func:`standby_served`). Raises
    :class:`MetricsError` for an input of the wrong shape.
    """
    plan = _dict(plan, "plan", "the plan returned by spotmax.maxgroup.interruption_plan")
    replacement = _dict(
        replacement, "replacement", "the replacement returned by spotmax.maxgroup.asg_replace_instances"
    )
    drain_results = _list(drain, "drain", "a list of spotmax.maxgroup.k8s_drain_nodes results")
    deregistered = _list(
        deregistrations, "deregistrations", "the consul_deregistrations list of spotmax.maxgroup.consul_deregister"
    )
    group_of = {
        entry["instance_id"]: entry["group"]
        for entry in _list(plan.get("instances"), "plan.instances", "a list of instance entries")
        if entry.get("instance_id") and entry.get("group")
    }
    unattributed: list[str] = []

    def group_for(instance_id: Any) -> str | None:
        group = group_of.get(instance_id) if isinstance(instance_id, str) else None
        if group is None:
            unattributed.append(str(instance_id))
        return group

    datums: list[dict[str, Any]] = []
    for group, given in sorted(_dict(plan.get("groups"), "plan.groups", "{group: {kind: count}}").items()):
        per_kind = _dict(given, f"plan.groups.{group}", "{kind: count}")
        datums.append(_count(group, "Interruptions", sum(int(n) for n in per_kind.values())))
        datums.extend(
            _count(group, "Interruptions", int(n), {KIND_DIMENSION: kind}) for kind, n in sorted(per_kind.items())
        )

    if replacement:
        detached = _dict(replacement.get("detached"), "replacement.detached", "{group: [instance ids]}")
        hits: dict[str, int] = {}
        for standby, given in _dict(replacement.get("standby"), "replacement.standby", "{group: change}").items():
            change = _dict(given, f"replacement.standby.{standby}", "{from, to, capped}")
            target = (served or {}).get(standby, standby)
            hits[target] = hits.get(target, 0) + max(int(change.get("to", 0)) - int(change.get("from", 0)), 0)
        for name in sorted(set(detached) | set(hits)):
            datums.append(_count(name, "Replacements", len(detached.get(name) or [])))
            datums.append(_count(name, "WarmPoolHits", hits.get(name, 0)))

    seconds: dict[str, list[float]] = {}
    timeouts: dict[str, int] = {}
    for index, result in enumerate(drain_results):
        for node in _list(result.get("nodes"), f"drain[{index}].nodes", "a list of node results"):
            owner = group_for(node.get("instance_id"))
            if owner is None:
                continue
            timeouts[owner] = timeouts.get(owner, 0) + (1 if node.get("not_evicted") else 0)
            if node.get("seconds") is not None:
                seconds.setdefault(owner, []).append(float(node["seconds"]))
    for group in sorted(timeouts):
        if group in seconds:
            datums.append(_statistics(group, "DrainSeconds", seconds[group], "Seconds"))
        datums.append(_count(group, "DrainTimeouts", timeouts[group]))

    counted: dict[str, int] = {}
    for entry in deregistered:
        owner = group_for(entry.get("instance_id"))
        if owner is None:
            continue
        done = bool(entry.get("services")) and not entry.get("error")
        counted[owner] = counted.get(owner, 0) + (1 if done else 0)
    datums.extend(_count(group, "Deregistrations", counted[group]) for group in sorted(counted))
    return datums, unattributed


def to_api(datum: dict[str, Any], timestamp: datetime) -> dict[str, Any]:
    """A datum as PutMetricData's ``MetricData`` entry."""
    entry: dict[str, Any] = {
        "MetricName": datum["metric_name"],
        "Dimensions": [{"Name": name, "Value": value} for name, value in datum["dimensions"].items()],
        "Timestamp": timestamp,
        "Unit": datum["unit"],
    }
    if datum["statistic_values"] is not None:
        stats = datum["statistic_values"]
        entry["StatisticValues"] = {
            "SampleCount": float(stats["sample_count"]),
            "Sum": float(stats["sum"]),
            "Minimum": float(stats["minimum"]),
            "Maximum": float(stats["maximum"]),
        }
    else:
        entry["Value"] = float(datum["value"])
    return entry


def calls(
    datums: list[dict[str, Any]], max_datums: int = MAX_DATUMS, max_bytes: int = MAX_BYTES
) -> list[list[dict[str, Any]]]:
    """Datums split into PutMetricData calls: one call unless the API's datum or size limit needs more."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for datum in datums:
        cost = len(json.dumps(datum, default=str)) * ENCODING_FACTOR
        if current and (len(current) >= max_datums or size + cost > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(datum)
        size += cost
    if current:
        batches.append(current)
    return batches


def capacity(groups: list[dict[str, Any]], instances: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``InServiceSpot`` and ``InServiceOnDemand`` per group (DescribeAutoScalingGroups + DescribeInstances output)."""
    datums: list[dict[str, Any]] = []
    for group in sorted(groups, key=lambda found: str(found["AutoScalingGroupName"])):
        serving = [m["InstanceId"] for m in group.get("Instances") or [] if m.get("LifecycleState") == "InService"]
        spot = sum(1 for i in serving if (instances.get(i) or {}).get("InstanceLifecycle") == "spot")
        datums.append(_count(group["AutoScalingGroupName"], "InServiceSpot", spot))
        datums.append(_count(group["AutoScalingGroupName"], "InServiceOnDemand", len(serving) - spot))
    return datums
