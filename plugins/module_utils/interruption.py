# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What to do with a batch of interruption events, as a pure plan over plain and API-shaped data.

The events are the normalised events of ``docs/design/interruptions.md``. The plan says, per
instance, what the handle_interruption playbook does (cordon, replace, drain, deregister, retire,
cleanup, complete the lifecycle action), grouped the way the playbook's modules take their input,
and which SQS messages may be acknowledged once that is done.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.group_tags import (
    MEMBERSHIP_KEY,
    group_settings_or_error,
    tag_map,
)
from ansible_collections.spotmax.maxgroup.plugins.module_utils.volume_handover import DEVICE_TAG, device_error

# Kinds of the notices the event source delivers (and the Interruptions metric counts by Kind).
NOTICE_KINDS = ("spot_interruption", "rebalance", "lifecycle_terminate", "state_change", "scheduled_change")
# renewal: an instance renewed launch-first (duration guarantee, return to Spot) whose replacement is in service.
KINDS = (*NOTICE_KINDS, "renewal")
# Kinds that act only when the group opts in with spotmax:is_to_handle_rebalance_event.
OPT_IN_KINDS = ("rebalance", "scheduled_change")
# Kinds an operator may give with instance_ids (the others need a state or a lifecycle token).
STANDALONE_KINDS = ("spot_interruption", "rebalance", "scheduled_change", "renewal")
HANDLED_KEY = "spotmax:interruption_handled"
GROUP_TAG = "aws:autoscaling:groupName"
RUNNING_STATES = ("pending", "running")
# EC2 states after which the instance's node and agent are gone (or going): clean up after it.
GONE_STATES = ("stopping", "stopped", "shutting-down", "terminated")
ID_FORMAT = "i- and 8 to 17 hex digits"
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
ACTIONS = ("cordon", "replace", "drain", "deregister", "handover", "retire", "cleanup", "complete_lifecycle")
# Kinds whose instance this pipeline (or a renewal round) replaces: a group's kept volume (spotmax:persistence_dev)
# moves to the replacement. Lifecycle actions (a scale-in has no replacement) and state changes are left alone.
HANDOVER_KINDS = ("spot_interruption", *OPT_IN_KINDS, "renewal")
LIFECYCLE_FIELDS = ("hook_name", "token", "group")


def valid_instance_id(value: Any) -> bool:
    return isinstance(value, str) and INSTANCE_ID.match(value) is not None


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it has no zone); None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_error(event: Any) -> str | None:
    """Why ``event`` is not a normalised event, naming the field, the value and what is allowed; None if it is."""
    if not isinstance(event, dict):
        return f"event: {event!r} is not allowed; use a normalised event (a dict)"
    kind = event.get("kind")
    if kind not in KINDS:
        return f"kind: {kind!r} is not allowed; use one of {', '.join(KINDS)}"
    instance_id = event.get("instance_id")
    if not valid_instance_id(instance_id):
        return f"instance_id: {instance_id!r} is not allowed; use an EC2 instance id ({ID_FORMAT})"
    for name in ("time", "deadline"):
        value = event.get(name)
        if value is not None and parse_time(value) is None:
            return f"{name}: {value!r} is not allowed; use an ISO 8601 time or null"
    for name in ("group", "receipt_handle", "message_id"):
        value = event.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            return f"{name}: {value!r} is not allowed; use a non-empty string or null"
    if kind == "state_change":
        state = event.get("state")
        if state not in RUNNING_STATES + GONE_STATES:
            allowed = ", ".join(RUNNING_STATES + GONE_STATES)
            return f"state: {state!r} is not allowed for state_change; use one of {allowed}"
    if kind == "lifecycle_terminate":
        lifecycle = event.get("lifecycle")
        if not isinstance(lifecycle, dict):
            fields = ", ".join(LIFECYCLE_FIELDS)
            return f"lifecycle: {lifecycle!r} is not allowed for lifecycle_terminate; use a dict with {fields}"
        for name in LIFECYCLE_FIELDS:
            value = lifecycle.get(name)
            if not isinstance(value, str) or not value:
                return f"lifecycle.{name}: {value!r} is not allowed; use a non-empty string"
    return None


def standalone_events(instance_ids: list[str], kind: str) -> list[dict[str, Any]]:
    """Events of ``kind`` for instances named by an operator: no message, so nothing to acknowledge."""
    return [
        {
            "kind": kind,
            "instance_id": instance_id,
            "group": None,
            "time": None,
            "deadline": None,
            "state": None,
            "lifecycle": None,
            "message_id": None,
            "receipt_handle": None,
        }
        for instance_id in dict.fromkeys(instance_ids)
    ]


def instances_to_read(events: list[Any]) -> list[str]:
    """Instance ids of the well-formed events that need EC2's view (all but pending/running state changes)."""
    ids = [
        event["instance_id"]
        for event in events
        if event_error(event) is None and not (event["kind"] == "state_change" and event["state"] in RUNNING_STATES)
    ]
    return sorted(set(ids))


def group_of(event: dict[str, Any], instance: dict[str, Any] | None) -> str | None:
    """The event's Auto Scaling group: named by the event (lifecycle actions), else by the instance's tags.

    An instance detached from its group (by a run that stopped before marking it handled) has lost
    ``aws:autoscaling:groupName`` but keeps ``spotmax:group``: the group it came from, so a later run
    finishes the drain and deregistration (its replacement is then a no-op).
    """
    lifecycle = event.get("lifecycle") or {}
    named = event.get("group") or lifecycle.get("group")
    if named:
        return str(named)
    if instance is None:
        return None
    tags = tag_map(instance.get("Tags"))
    found = tags.get(GROUP_TAG) or tags.get(MEMBERSHIP_KEY)
    return str(found) if found else None


def groups_to_read(events: list[Any], instances: list[dict[str, Any]]) -> list[str]:
    by_id = {instance["InstanceId"]: instance for instance in instances}
    names = {group_of(event, by_id.get(event["instance_id"])) for event in events if event_error(event) is None}
    return sorted(name for name in names if name)


def lifecycle_groups(events: list[Any]) -> list[str]:
    """Groups whose lifecycle hooks must be read (for their heartbeat and global timeouts)."""
    names = {
        event["lifecycle"]["group"]
        for event in events
        if event_error(event) is None and event["kind"] == "lifecycle_terminate"
    }
    return sorted(names)


def handled_kinds(instance: dict[str, Any] | None) -> list[str]:
    """The kinds listed in the instance's ``spotmax:interruption_handled`` tag."""
    if instance is None:
        return []
    return str(tag_map(instance.get("Tags")).get(HANDLED_KEY, "")).split()


def handled_value(existing: list[str], kinds: list[str]) -> str:
    """The tag value recording ``kinds`` on top of ``existing``: space-separated, in the order of KINDS."""
    known = set(existing) | set(kinds)
    ordered = [kind for kind in KINDS if kind in known]
    ordered.extend(sorted(kind for kind in known if kind not in KINDS))
    return " ".join(ordered)


def actions_for(event: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The actions one event asks for on an instance of a group with ``settings``."""
    kind = event["kind"]
    if kind == "spot_interruption":
        wanted = ["cordon", "replace", "drain", "deregister"]
    elif kind in OPT_IN_KINDS:
        wanted = ["replace", "drain", "deregister", "retire"]
    elif kind == "lifecycle_terminate":
        wanted = ["drain", "deregister", "complete_lifecycle"]
    elif kind == "renewal":  # replaced and retired by asg_renew_instances
        wanted = ["cordon", "drain", "deregister"]
    else:  # state_change to a gone state
        wanted = ["cleanup", "deregister"]
    if kind in HANDOVER_KINDS and settings.get("persistence_dev"):
        wanted.append("handover")
    kubernetes = bool(settings.get("k8s_config_file_path") or settings.get("eks_cluster_name"))
    consul = settings.get("consul_port") is not None
    dropped: set[str] = set()
    if not kubernetes:
        dropped |= {"cordon", "drain", "cleanup"}
    if not consul:
        dropped.add("deregister")
    return [action for action in wanted if action not in dropped]


def _skip(event: Any, reason: str) -> dict[str, Any]:
    return {"instance_id": event.get("instance_id"), "kind": event.get("kind"), "reason": reason}


def _error(event: Any, group: str | None, message: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {"instance_id": None, "kind": None, "group": None, "message": message}
    return {"instance_id": event.get("instance_id"), "kind": event.get("kind"), "group": group, "message": message}


# AWS ends a lifecycle action at the latest after 100 heartbeat timeouts or 48 hours, heartbeats or not.
MAX_GLOBAL_TIMEOUT = 172800


def global_timeout(hook: dict[str, Any]) -> int | None:
    """Seconds a lifecycle action may be kept alive by heartbeats (DescribeLifecycleHooks' GlobalTimeout)."""
    if hook.get("GlobalTimeout") is not None:
        return int(hook["GlobalTimeout"])
    if hook.get("HeartbeatTimeout") is not None:
        return min(100 * int(hook["HeartbeatTimeout"]), MAX_GLOBAL_TIMEOUT)
    return None


def _event_deadline(event: dict[str, Any], hook: dict[str, Any] | None) -> datetime | None:
    """The notice's deadline; for a lifecycle action the hook's global timeout (heartbeats bridge the gap)."""
    deadline = parse_time(event.get("deadline"))
    if deadline is None and hook is not None and hook.get("global_timeout") is not None:
        start = parse_time(event.get("time"))
        if start is not None:
            deadline = start + timedelta(seconds=hook["global_timeout"])
    return deadline


def _earliest(moments: list[datetime | None]) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def plan(
    events: list[Any],
    ignored: list[dict[str, Any]],
    instances: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    hooks: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """The plan for a batch.

    ``instances`` is EC2 DescribeInstances output (instances, not reservations), ``groups``
    DescribeAutoScalingGroups output and ``hooks`` DescribeLifecycleHooks output by group name.
    """
    by_id = {instance["InstanceId"]: instance for instance in instances}
    settings: dict[str, tuple[dict[str, Any] | None, str | None]] = {
        group["AutoScalingGroupName"]: group_settings_or_error(group["AutoScalingGroupName"], group.get("Tags"))
        for group in groups
    }
    hook_by_name = {
        (name, hook["LifecycleHookName"]): {
            "heartbeat_timeout": hook.get("HeartbeatTimeout"),
            "global_timeout": global_timeout(hook),
        }
        for name, found in hooks.items()
        for hook in found
    }
    skipped: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    acting: dict[str, dict[str, Any]] = {}  # instance id -> merged entry
    held: set[str] = set()
    handles: list[str] = []  # every receipt handle, in order of first appearance

    for event in events:
        handle = event.get("receipt_handle") if isinstance(event, dict) else None
        if isinstance(handle, str) and handle and handle not in handles:
            handles.append(handle)
        outcome = _decide(event, by_id, settings, hook_by_name)
        if outcome[0] == "error":
            errors.append(outcome[1])
            if isinstance(handle, str) and handle:
                held.add(handle)
        elif outcome[0] == "skip":
            skipped.append(outcome[1])
        else:
            _merge(acting, event, outcome[1])

    entries = [acting[instance_id] for instance_id in sorted(acting)]
    acknowledge = [str(item["receipt_handle"]) for item in ignored if item.get("receipt_handle")]
    acknowledge.extend(handles)
    acknowledge = [handle for handle in acknowledge if handle not in held]
    return {
        "instances": [_public(entry) for entry in entries],
        "skipped": skipped,
        "errors": errors,
        "kubernetes": _kubernetes(entries),
        "consul": _consul(entries),
        "replace": [entry["instance_id"] for entry in entries if "replace" in entry["actions"]],
        "retire": [entry["instance_id"] for entry in entries if "retire" in entry["actions"]],
        "handover": [
            {
                "instance_id": entry["instance_id"],
                "group": entry["group"],
                "device_name": entry["settings"]["persistence_dev"],
            }
            for entry in entries
            if "handover" in entry["actions"]
        ],
        "lifecycle": [entry["lifecycle"] for entry in entries if entry["lifecycle"] is not None],
        "receipt_handles": list(dict.fromkeys(acknowledge)),
        "held": [handle for handle in handles if handle in held],
        "handled_tags": {
            entry["instance_id"]: handled_value(entry["handled"], entry["kinds"])
            for entry in entries
            if entry["state"] != "terminated"
        },
        "groups": _group_counts(entries),
    }


def _decide(
    event: Any,
    by_id: dict[str, dict[str, Any]],
    settings: dict[str, tuple[dict[str, Any] | None, str | None]],
    hook_by_name: dict[tuple[str, str], dict[str, Any]],
) -> tuple[str, dict[str, Any]]:
    """("error", entry), ("skip", entry) or ("act", details) for one event."""
    problem = event_error(event)
    if problem is not None:
        return "error", _error(event, event.get("group") if isinstance(event, dict) else None, problem)
    kind, instance_id = event["kind"], event["instance_id"]
    if kind == "state_change" and event["state"] in RUNNING_STATES:
        return "skip", _skip(event, f"the instance is {event['state']}: not an interruption")
    instance = by_id.get(instance_id)
    if instance is None:
        return "skip", _skip(event, "unknown to EC2 (gone or never existed)")
    if MEMBERSHIP_KEY not in tag_map(instance.get("Tags")):
        return "skip", _skip(event, f"not managed: the instance has no {MEMBERSHIP_KEY} tag")
    handled = handled_kinds(instance)
    if kind in handled:
        return "skip", _skip(event, f"already handled: {HANDLED_KEY} lists {kind}")
    group = group_of(event, instance)
    if group is None:
        return "skip", _skip(event, f"in no Auto Scaling group (no {GROUP_TAG} tag, empty {MEMBERSHIP_KEY})")
    if group not in settings:
        return "skip", _skip(event, f"group {group!r} does not exist")
    found, problem = settings[group]
    if found is None:
        return "error", _error(event, group, str(problem))
    if kind in OPT_IN_KINDS and not found["is_to_handle_rebalance_event"]:
        return "skip", _skip(event, f"group {group!r} does not opt in: spotmax:is_to_handle_rebalance_event is false")
    actions = actions_for(event, found)
    if "handover" in actions and (
        problem := device_error(f"group {group!r} tag {DEVICE_TAG}", found["persistence_dev"])
    ):
        return "error", _error(event, group, problem)
    hook = None
    if kind == "lifecycle_terminate":
        hook = hook_by_name.get((event["lifecycle"]["group"], event["lifecycle"]["hook_name"]))
    state = (instance.get("State") or {}).get("Name")
    return "act", {
        "group": group,
        "settings": found,
        "instance": instance,
        "handled": handled,
        "state": state,
        "actions": actions,
        "deadline": _event_deadline(event, hook),
        "hook": hook,
    }


def _merge(acting: dict[str, dict[str, Any]], event: dict[str, Any], details: dict[str, Any]) -> None:
    instance_id = event["instance_id"]
    instance = details["instance"]
    entry = acting.setdefault(
        instance_id,
        {
            "instance_id": instance_id,
            "kinds": [],
            "group": details["group"],
            "private_ip": instance.get("PrivateIpAddress"),
            "availability_zone": (instance.get("Placement") or {}).get("AvailabilityZone"),
            "actions": [],
            "deadline": None,
            "settings": details["settings"],
            "handled": details["handled"],
            "state": details["state"],
            "lifecycle": None,
        },
    )
    if event["kind"] not in entry["kinds"]:
        entry["kinds"].append(event["kind"])
    entry["actions"] = [action for action in ACTIONS if action in set(entry["actions"]) | set(details["actions"])]
    entry["deadline"] = _earliest([entry["deadline"], details["deadline"]])
    if event["kind"] == "lifecycle_terminate":
        lifecycle = event["lifecycle"]
        hook = details["hook"] or {}
        entry["lifecycle"] = {
            "instance_id": instance_id,
            "group": lifecycle["group"],
            "hook_name": lifecycle["hook_name"],
            "token": lifecycle["token"],
            "heartbeat_timeout": hook.get("heartbeat_timeout"),
        }
    if not entry["private_ip"] and "deregister" in entry["actions"]:
        # The Consul node is found by the private IP: without one there is nothing to deregister.
        entry["actions"].remove("deregister")


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "instance_id": entry["instance_id"],
        "kinds": list(entry["kinds"]),
        "group": entry["group"],
        "private_ip": entry["private_ip"],
        "availability_zone": entry["availability_zone"],
        "actions": list(entry["actions"]),
        "deadline": iso(entry["deadline"]),
        "persistence_dev": entry["settings"]["persistence_dev"],
    }


def _kubernetes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    moments: dict[tuple[Any, ...], list[datetime | None]] = {}
    for entry in entries:
        wanted = {action for action in ("cordon", "drain", "cleanup") if action in entry["actions"]}
        if not wanted:
            continue
        settings = entry["settings"]
        key = (
            settings["k8s_config_file_path"],
            settings["eks_cluster_name"],
            settings["k8s_delay_draining_secs"],
            settings["k8s_node_drain_grace_second"],
        )
        item = found.setdefault(
            key,
            {
                "kubeconfig": key[0],
                "eks_cluster_name": key[1],
                "cordon": [],
                "drain": [],
                "cleanup": [],
                "delay_seconds": key[2],
                "grace_seconds": key[3],
                "deadline": None,
            },
        )
        for action in sorted(wanted):
            item[action].append(entry["instance_id"])
        moments.setdefault(key, []).append(entry["deadline"])
    for key, item in found.items():
        item["deadline"] = iso(_earliest(moments[key]))
    return [found[key] for key in sorted(found, key=lambda k: tuple(str(part) for part in k))]


def _consul(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[tuple[int, int, str], dict[str, Any]] = {}
    for entry in entries:
        if "deregister" not in entry["actions"]:
            continue
        settings = entry["settings"]
        # A stopped or terminated instance has no agent left: only the catalog can deregister it.
        mode = "catalog" if "cleanup" in entry["actions"] or "state_change" in entry["kinds"] else "auto"
        key = (settings["consul_port"], settings["sd_delay_detach_secs"], mode)
        item = found.setdefault(key, {"agent_port": key[0], "delay_seconds": key[1], "mode": mode, "instances": []})
        item["instances"].append(
            {"instance_id": entry["instance_id"], "private_ip": entry["private_ip"], "agent_port": key[0]}
        )
    return [found[key] for key in sorted(found)]


def _group_counts(entries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for entry in entries:
        per_kind = counts.setdefault(entry["group"], {})
        for kind in entry["kinds"]:
            per_kind[kind] = per_kind.get(kind, 0) + 1
    return counts
