"""Extension state hung on moto's own objects, so moto's reset discards it with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState

if TYPE_CHECKING:
    from .activities import ScalingActivity
    from .lifecycle import LifecycleAction

IN_SERVICE = "InService"
PENDING = "Pending"
PENDING_WAIT = "Pending:Wait"
TERMINATING = "Terminating"
TERMINATING_WAIT = "Terminating:Wait"
# Lifecycle states that count towards the group's desired capacity.
COUNTED_STATES = frozenset({PENDING, PENDING_WAIT, "Pending:Proceed", IN_SERVICE})
SPOT = "spot"
ON_DEMAND = "on-demand"

_ATTR = "_spotmax_ext"


@dataclass
class GroupExt:
    warm_instances: list[InstanceState] = field(default_factory=list)
    warm_pool_deleting: bool = False
    # Last failed launch (virtual time) and the fault generation it saw, to pace retries.
    last_failure_at: datetime | None = None
    last_failure_generation: int = -1


@dataclass
class BackendExt:
    actions: dict[str, LifecycleAction] = field(default_factory=dict)
    activities: list[ScalingActivity] = field(default_factory=list)


@dataclass
class InstanceExt:
    pending_tokens: set[str] = field(default_factory=set)
    abandoned: bool = False
    abandon_token: str = ""
    activity: ScalingActivity | None = None


def _ext(obj: Any, factory: type[Any]) -> Any:
    ext = obj.__dict__.get(_ATTR)
    if ext is None:
        ext = factory()
        obj.__dict__[_ATTR] = ext
    return ext


def group_ext(group: FakeAutoScalingGroup) -> GroupExt:
    result: GroupExt = _ext(group, GroupExt)
    return result


def backend_ext(backend: AutoScalingBackend) -> BackendExt:
    result: BackendExt = _ext(backend, BackendExt)
    return result


def instance_ext(state: InstanceState) -> InstanceExt:
    result: InstanceExt = _ext(state, InstanceExt)
    return result


def backend_of(group: FakeAutoScalingGroup) -> AutoScalingBackend:
    return group.autoscaling_backend


def is_registered(group: FakeAutoScalingGroup) -> bool:
    """False while moto is still constructing the group (before the backend stores it)."""
    return group.autoscaling_backend.autoscaling_groups.get(group.name) is group


def weight_of(state: InstanceState) -> int:
    value = getattr(state, "weighted_capacity", None)
    return int(value) if value else 1


def counted(group: FakeAutoScalingGroup) -> list[InstanceState]:
    return [s for s in group.instance_states if s.lifecycle_state in COUNTED_STATES]


def capacity(group: FakeAutoScalingGroup, market: str | None = None) -> int:
    return sum(weight_of(s) for s in counted(group) if market is None or market_of(s) == market)


def market_of(state: InstanceState) -> str:
    return SPOT if getattr(state.instance, "lifecycle", None) == SPOT else ON_DEMAND


def find_state(group: FakeAutoScalingGroup, instance_id: str) -> InstanceState | None:
    return next((s for s in group.instance_states if s.instance.id == instance_id), None)


def suspended(group: FakeAutoScalingGroup, process: str) -> bool:
    return any(p["ProcessName"] == process for p in group.suspended_processes)
