# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decisions of a batch node drain, over plain Kubernetes JSON: no I/O, no clock.

:func:`validate_request` checks every option before the first API call; :func:`select_nodes` maps
instance ids (``spec.providerID`` ``aws:///<zone>/<instance-id>``) and names to nodes;
:func:`cordon_patch` says how to cordon and taint a node (nothing when it already is);
:func:`classify_pods` says which pods to evict, which to leave and which block the drain (and why);
:func:`stop_time` is the deadline math; :class:`NodeOutcome` shapes the result and the diff.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

Json = dict[str, Any]

STATES = ("drained", "cordoned", "absent")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
DEFAULT_TAINT: dict[str, str] = {"key": "spotmax.io/interruption", "value": "spot", "effect": "NoSchedule"}
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_GRACE_SECONDS = 30
MAX_CONCURRENCY = 200
# How long to wait before evicting again a pod whose PodDisruptionBudget refused it (HTTP 429).
RETRY_SECONDS = 1.0

_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?")
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


class DrainValidationError(ValueError):
    """Invalid input; the message names the field, the value and what is allowed."""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str

    def describe(self) -> Json:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class DeleteOptions:
    """kubernetes.core.k8s_drain's ``delete_options``."""

    terminate_grace_period: int | None = None
    force: bool = False
    ignore_daemonsets: bool = True
    delete_emptydir_data: bool = False
    disable_eviction: bool = False
    wait_timeout: int | None = None
    wait_sleep: int = 5


@dataclass(frozen=True)
class Request:
    instance_ids: tuple[str, ...]
    node_names: tuple[str, ...]
    state: str = "drained"
    taint: Taint | None = Taint(**DEFAULT_TAINT)
    delete: DeleteOptions = DeleteOptions()
    delay_seconds: float = 0.0
    drain_timeout: float = 90.0
    deadline: float | None = None  # seconds since the epoch
    concurrency: int = 20


def _refuse(name: str, value: Any, allowed: str) -> DrainValidationError:
    return DrainValidationError(f"{name}: {value!r} is not allowed; use {allowed}")


def _valid_taint_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _NODE_NAME.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and _QUALIFIED_NAME.fullmatch(name) is not None


def validate_taint(add_taint: bool, raw: Mapping[str, Any] | None) -> Taint | None:
    if not add_taint:
        return None
    values = {**DEFAULT_TAINT, **{k: v for k, v in (raw or {}).items() if v is not None}}
    taint = Taint(str(values["key"]), str(values["value"]), str(values["effect"]))
    if not _valid_taint_key(taint.key):
        raise _refuse("taint.key", taint.key, "a label key such as spotmax.io/interruption ([prefix/]name, name <= 63)")
    if len(taint.value) > 63 or not _LABEL_VALUE.fullmatch(taint.value):
        raise _refuse("taint.value", taint.value, "a label value (<= 63 letters, digits, '-', '_', '.')")
    if taint.effect not in TAINT_EFFECTS:
        raise _refuse("taint.effect", taint.effect, " or ".join(TAINT_EFFECTS))
    return taint


def validate_delete_options(raw: Mapping[str, Any] | None) -> DeleteOptions:
    values = {k: v for k, v in (raw or {}).items() if v is not None}
    options = DeleteOptions(**values)
    if options.terminate_grace_period is not None and options.terminate_grace_period < 0:
        raise _refuse(
            "delete_options.terminate_grace_period", options.terminate_grace_period, "a number of seconds >= 0"
        )
    if options.wait_timeout is not None and options.wait_timeout <= 0:
        raise _refuse("delete_options.wait_timeout", options.wait_timeout, "a number of seconds > 0")
    if options.wait_sleep <= 0:
        raise _refuse("delete_options.wait_sleep", options.wait_sleep, "a number of seconds > 0")
    return options


def parse_deadline(text: str) -> float:
    """An ISO 8601 timestamp (``Z`` or an offset; none means UTC) as seconds since the epoch."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value)
    except ValueError:
        raise _refuse("deadline", text, "an ISO 8601 UTC timestamp such as 2024-05-01T12:02:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # noqa: UP017 - modules run on Python 3.9
    return moment.timestamp()


def validate_request(
    instance_ids: Sequence[str] | None,
    node_names: Sequence[str] | None,
    state: str = "drained",
    add_taint: bool = True,
    taint: Mapping[str, Any] | None = None,
    delete_options: Mapping[str, Any] | None = None,
    delay_seconds: float = 0.0,
    drain_timeout: float = 90.0,
    deadline: str | None = None,
    concurrency: int = 20,
) -> Request:
    """Check every option; raise :class:`DrainValidationError` naming the first bad one."""
    ids, names = list(instance_ids or []), list(node_names or [])
    if not ids and not names:
        raise DrainValidationError(
            "instance_ids, node_names: both are empty; give at least one EC2 instance id or node name"
        )
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not _INSTANCE_ID.fullmatch(value):
            raise _refuse(f"instance_ids[{index}]", value, "an EC2 instance id such as i-0123456789abcdef0")
    for index, value in enumerate(names):
        if not isinstance(value, str) or len(value) > 253 or not _NODE_NAME.fullmatch(value):
            raise _refuse(f"node_names[{index}]", value, "a Kubernetes node name (lower-case DNS subdomain)")
    if state not in STATES:
        raise _refuse("state", state, " or ".join(STATES))
    if math.isnan(delay_seconds) or delay_seconds < 0:
        raise _refuse("delay_seconds", delay_seconds, "a number of seconds >= 0")
    if math.isnan(drain_timeout) or drain_timeout <= 0:
        raise _refuse("drain_timeout", drain_timeout, "a number of seconds > 0")
    if isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise _refuse("concurrency", concurrency, f"1 to {MAX_CONCURRENCY} threads")
    return Request(
        instance_ids=tuple(dict.fromkeys(ids)),
        node_names=tuple(dict.fromkeys(names)),
        state=state,
        taint=validate_taint(add_taint, taint),
        delete=validate_delete_options(delete_options),
        delay_seconds=float(delay_seconds),
        drain_timeout=float(drain_timeout),
        deadline=None if deadline is None else parse_deadline(deadline),
        concurrency=concurrency,
    )


# -- nodes ------------------------------------------------------------------------------------
def instance_id(provider_id: str | None) -> str | None:
    """The EC2 instance id at the end of ``aws:///<zone>/<instance-id>``; None for other providers."""
    if not provider_id or not provider_id.startswith("aws://"):
        return None
    last = provider_id.rstrip("/").rsplit("/", 1)[-1]
    return last if _INSTANCE_ID.fullmatch(last) else None


def node_name(node: Mapping[str, Any]) -> str:
    return str((node.get("metadata") or {}).get("name", ""))


def node_instance_id(node: Mapping[str, Any]) -> str | None:
    return instance_id((node.get("spec") or {}).get("providerID"))


def select_nodes(
    nodes: Iterable[Mapping[str, Any]], instance_ids: Sequence[str], node_names: Sequence[str]
) -> tuple[list[Mapping[str, Any]], list[str]]:
    """The nodes asked for (by instance id, then by name, each once) and what was asked for but not found."""
    by_instance: dict[str, Mapping[str, Any]] = {}
    by_name: dict[str, Mapping[str, Any]] = {}
    for node in nodes:
        by_name[node_name(node)] = node
        instance = node_instance_id(node)
        if instance is not None:
            by_instance.setdefault(instance, node)
    chosen: dict[str, Mapping[str, Any]] = {}
    missing: list[str] = []
    for wanted, index in [(i, by_instance) for i in instance_ids] + [(n, by_name) for n in node_names]:
        found = index.get(wanted)
        if found is None:
            missing.append(wanted)
        else:
            chosen.setdefault(node_name(found), found)
    return list(chosen.values()), missing


def _same_taint(existing: Mapping[str, Any], taint: Taint) -> bool:
    return existing.get("key") == taint.key and existing.get("effect") == taint.effect


def has_taint(node: Mapping[str, Any], taint: Taint | None) -> bool:
    if taint is None:
        return False
    return any(
        _same_taint(t, taint) and (t.get("value") or "") == taint.value
        for t in (node.get("spec") or {}).get("taints") or []
    )


def merge_taint(taints: Sequence[Mapping[str, Any]], taint: Taint, now: str) -> list[Json] | None:
    """``taints`` with ``taint`` (a taint with its key and effect gets its value); None when already there."""
    result = [dict(t) for t in taints]
    wanted: Json = taint.describe()
    if taint.effect == "NoExecute":
        wanted["timeAdded"] = now
    for index, existing in enumerate(result):
        if _same_taint(existing, taint):
            if (existing.get("value") or "") == taint.value:
                return None
            result[index] = wanted
            return result
    return [*result, wanted]


def cordon_patch(node: Mapping[str, Any], taint: Taint | None, now: str) -> list[Json] | None:
    """A JSON patch that cordons (and taints) ``node``, guarded by its resourceVersion; None when it already is."""
    spec = node.get("spec") or {}
    operations: list[Json] = []
    if not spec.get("unschedulable"):
        operations.append({"op": "add", "path": "/spec/unschedulable", "value": True})
    if taint is not None:
        taints = merge_taint(spec.get("taints") or [], taint, now)
        if taints is not None:
            operations.append({"op": "add", "path": "/spec/taints", "value": taints})
    if not operations:
        return None
    version = (node.get("metadata") or {}).get("resourceVersion")
    guard = [{"op": "replace", "path": "/metadata/resourceVersion", "value": version}] if version else []
    return guard + operations


def apply_cordon(node: Mapping[str, Any], patch: Sequence[Mapping[str, Any]] | None) -> Json:
    """``node`` as :func:`cordon_patch` leaves it (for check mode and the diff)."""
    result = {**node, "spec": dict(node.get("spec") or {})}
    for operation in patch or []:
        if operation["path"] == "/spec/unschedulable":
            result["spec"]["unschedulable"] = True
        elif operation["path"] == "/spec/taints":
            result["spec"]["taints"] = list(operation["value"])
    return result


# -- pods -------------------------------------------------------------------------------------
def pod_ref(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def controller_kind(pod: Mapping[str, Any]) -> str | None:
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if owner.get("controller"):
            return str(owner.get("kind"))
    return None


def is_mirror(pod: Mapping[str, Any]) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def is_finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def uses_emptydir(pod: Mapping[str, Any]) -> bool:
    return any("emptyDir" in volume for volume in (pod.get("spec") or {}).get("volumes") or [])


@dataclass
class PodPlan:
    """Pods of one node: to evict, and blocked ones (``{pod, reason}``). Left-alone pods are in neither."""

    evict: list[Json] = field(default_factory=list)
    blocked: list[Json] = field(default_factory=list)


def classify_pods(pods: Iterable[Mapping[str, Any]], options: DeleteOptions) -> PodPlan:
    """What ``kubectl drain`` decides: mirror, finished and already terminating pods are left alone,
    DaemonSet pods too with ``ignore_daemonsets``; pods without a controller (unless ``force``) and pods
    with emptyDir volumes (unless ``delete_emptydir_data``) block and are reported."""
    plan = PodPlan()
    for pod in sorted(pods, key=pod_ref):
        if is_mirror(pod) or is_finished(pod) or is_terminating(pod):
            continue
        kind = controller_kind(pod)
        reasons: list[str] = []
        if kind == "DaemonSet":
            if options.ignore_daemonsets:
                continue
            reasons.append("managed by a DaemonSet (set delete_options.ignore_daemonsets=true to leave it)")
        if kind is None and not options.force:
            reasons.append("not managed by a controller (set delete_options.force=true to evict it)")
        if uses_emptydir(pod) and not options.delete_emptydir_data:
            reasons.append("uses emptyDir data (set delete_options.delete_emptydir_data=true to evict it)")
        if reasons:
            plan.blocked.append({"pod": pod_ref(pod), "reason": "; ".join(reasons)})
        else:
            plan.evict.append(dict(pod))
    return plan


def pods_to_delete(pods: Iterable[Mapping[str, Any]]) -> list[Json]:
    """Pods of a node being removed (state=absent): all but DaemonSet pods, which their controller cleans up."""
    return [dict(pod) for pod in sorted(pods, key=pod_ref) if controller_kind(pod) != "DaemonSet"]


def grace_seconds(pod: Mapping[str, Any], cap: int | None) -> int | None:
    """The grace period to evict ``pod`` with: its own (None: the server uses it) capped at ``cap``."""
    if cap is None:
        return None
    own = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    return min(DEFAULT_GRACE_SECONDS if own is None else int(own), cap)


def delete_options_body(pod: Mapping[str, Any], grace: int | None) -> Json:
    """DeleteOptions that only touch this very pod (uid precondition: not a namesake recreated since)."""
    body: Json = {}
    uid = (pod.get("metadata") or {}).get("uid")
    if uid:
        body["preconditions"] = {"uid": uid}
    if grace is not None:
        body["gracePeriodSeconds"] = grace
    return body


def eviction_body(pod: Mapping[str, Any], grace: int | None) -> Json:
    meta = pod.get("metadata") or {}
    return {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "deleteOptions": delete_options_body(pod, grace),
    }


def refusal_reason(message: str) -> str:
    return f"refused by its PodDisruptionBudget until the drain deadline: {message}"


# -- time -------------------------------------------------------------------------------------
def stop_time(start: float, now_epoch: float, drain_timeout: float, deadline: float | None) -> float:
    """When (on the clock ``start`` is read from) evictions stop: the earlier of ``start + drain_timeout``
    and ``deadline`` (seconds since the epoch, ``now_epoch`` being the same moment as ``start``)."""
    seconds = drain_timeout if deadline is None else min(drain_timeout, max(0.0, deadline - now_epoch))
    return start + seconds


def eviction_start(cordoned: float, delay_seconds: float, stop: float) -> float:
    """When the first eviction may go: ``delay_seconds`` after the cordon, never past ``stop``."""
    return max(cordoned, min(cordoned + delay_seconds, stop))


def next_retry(now: float, stop: float, interval: float = RETRY_SECONDS) -> float | None:
    """How long to sleep before the next eviction round; None when there is no time left for one."""
    if now >= stop:
        return None
    return min(interval, stop - now)


# -- result -----------------------------------------------------------------------------------
def node_view(node: Mapping[str, Any], pods: Iterable[str] | None) -> Json:
    spec = node.get("spec") or {}
    view: Json = {"unschedulable": bool(spec.get("unschedulable")), "taints": list(spec.get("taints") or [])}
    if pods is not None:
        view["pods"] = sorted(pods)
    return view


@dataclass
class NodeOutcome:
    """One node's run: filled in by the module as the phases go."""

    name: str
    instance_id: str | None
    before: Json
    after: Json | None = None
    cordoned: bool = False
    tainted: bool = False
    evicted: list[str] = field(default_factory=list)
    not_evicted: list[Json] = field(default_factory=list)
    terminating: list[str] = field(default_factory=list)
    deleted: bool = False
    seconds: float = 0.0
    changed: bool = False
    error: str | None = None

    def describe(self) -> Json:
        return {
            "name": self.name,
            "instance_id": self.instance_id,
            "cordoned": self.cordoned,
            "tainted": self.tainted,
            "evicted": sorted(self.evicted),
            "not_evicted": sorted(self.not_evicted, key=lambda entry: str(entry["pod"])),
            "terminating": sorted(self.terminating),
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
        }


def diff(outcomes: Iterable[NodeOutcome]) -> Json:
    """Before/after views per node name; a deleted node has no ``after``."""
    before: Json = {}
    after: Json = {}
    for outcome in outcomes:
        before[outcome.name] = outcome.before
        if outcome.after is not None:
            after[outcome.name] = outcome.after
    return {"before": before, "after": after}


def failure_message(outcomes: Iterable[NodeOutcome]) -> str | None:
    errors = [f"node {o.name}: {o.error}" for o in outcomes if o.error]
    if not errors:
        return None
    return "Failed to drain: " + "; ".join(errors)
