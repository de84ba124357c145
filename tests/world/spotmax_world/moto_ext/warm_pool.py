"""Warm pools: pre-initialised instances kept stopped, hibernated or running beside the group."""

from __future__ import annotations

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import FakeAutoScalingGroup, FakeWarmPool, InstanceState

from . import activities, launch, lifecycle
from .state import ON_DEMAND, group_ext

WARMED = {"Stopped": "Warmed:Stopped", "Running": "Warmed:Running", "Hibernated": "Warmed:Hibernated"}
READY_STATES = frozenset(WARMED.values())
PENDING_DELETE = "PendingDelete"
# AWS refuses warm pools for groups that launch Spot (API reference of PutWarmPool; the
# mixed-instances part was lifted in Nov 2025 for policies without a Spot share).
SPOT_REFUSALS = {
    "launch-template": "You can't add a warm pool to an Auto Scaling group that has a launch template "
    "that requests Spot Instances.",
    "launch-configuration": "You can't add a warm pool to an Auto Scaling group that has a launch "
    "configuration that requests Spot Instances.",
    "mixed-instances-policy": "You can't add a warm pool to an Auto Scaling group that has a mixed instances "
    "policy that requests Spot Instances. Set OnDemandPercentageAboveBaseCapacity to 100 to use a warm pool.",
}


def config(group: FakeAutoScalingGroup) -> FakeWarmPool | None:
    return group.warm_pool


def target_size(group: FakeAutoScalingGroup) -> int:
    """MaxGroupPreparedCapacity (default: MaxSize) minus desired capacity, at least MinSize."""
    pool = config(group)
    if pool is None or group_ext(group).warm_pool_deleting:
        return 0
    prepared = pool.max_group_prepared_capacity
    if prepared is None or int(prepared) < 0:
        prepared = group.max_size or 0
    return max(int(prepared) - int(group.desired_capacity or 0), int(pool.min_size or 0))


def warmed_state(group: FakeAutoScalingGroup) -> str:
    pool = config(group)
    state = WARMED.get(pool.pool_state if pool else "Stopped", WARMED["Stopped"])
    if state == WARMED["Hibernated"] and not (launch.template_data(group).get("HibernationOptions") or {}).get(
        "Configured"
    ):
        # Hibernation needs HibernationOptions.Configured in the launch template.
        return WARMED["Stopped"]
    return state


def instances(group: FakeAutoScalingGroup) -> list[InstanceState]:
    return group_ext(group).warm_instances


def put(
    group: FakeAutoScalingGroup,
    max_group_prepared_capacity: int | None,
    min_size: int | None,
    pool_state: str | None,
    instance_reuse_policy: dict[str, bool] | None,
) -> None:
    reason = launch.spot_request_reason(group)
    if reason is not None:
        raise ValidationError(SPOT_REFUSALS[reason])
    if group_ext(group).warm_pool_deleting:
        raise ValidationError(f"The warm pool for Auto Scaling group {group.name} is being deleted.")
    group.warm_pool = FakeWarmPool(  # type: ignore[abstract]
        max_group_prepared_capacity=max_group_prepared_capacity,
        min_size=min_size,
        pool_state=pool_state,
        instance_reuse_policy=instance_reuse_policy,
    )
    group.warm_pool.status = None  # type: ignore[attr-defined]
    target = warmed_state(group)
    for state in instances(group):
        if state.lifecycle_state in READY_STATES and state.lifecycle_state != target:
            _settle(group, state)
    refill(group)


def _settle(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    """Bring a pool instance to the pool's state (EC2 stopped for Stopped/Hibernated)."""
    target = warmed_state(group)
    ec2 = group.autoscaling_backend.ec2_backend
    if target == WARMED["Running"]:
        if state.instance.state == "stopped":
            ec2.start_instances([state.instance.id])
    elif state.instance.state == "running":
        ec2.stop_instances([state.instance.id])
    state.lifecycle_state = target


def refill(group: FakeAutoScalingGroup) -> None:
    """Launch into, or trim, the pool until it has its target size."""
    if config(group) is None or group_ext(group).warm_pool_deleting:
        return
    pool = instances(group)
    target = target_size(group)
    while len(pool) < target:
        spec = launch.choose(group, ON_DEMAND, set(), population=pool)
        if spec is None:
            return
        instance = launch.launch(group, spec)
        state = launch.new_state(group, instance, spec, "Warmed:Pending")
        pool.append(state)
        _settle(group, state)
        activities.record(
            group,
            f"Launching a new EC2 instance into warm pool: {instance.id}",
            f"At {activities.now_text()} an instance was launched into the warm pool in response to a "
            f"difference between the warm pool size and its target size of {target}.",
            activities.SUCCESSFUL,
            {"Subnet ID": instance.subnet_id or "", "Availability Zone": spec.zone},
        )
    while len(pool) > target:
        state = max(pool, key=lambda s: s.instance.launch_time)
        _terminate(group, state, "the warm pool is larger than its target size")


def _terminate(group: FakeAutoScalingGroup, state: InstanceState, why: str) -> None:
    instances(group).remove(state)
    state.lifecycle_state = "Warmed:Terminated"
    if state.instance.state != "terminated":
        group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
    activities.record(
        group,
        f"Terminating EC2 instance: {state.instance.id}",
        f"At {activities.now_text()} instance {state.instance.id} was terminated from the warm pool because {why}.",
        activities.SUCCESSFUL,
    )


def take(group: FakeAutoScalingGroup, members: list[InstanceState]) -> InstanceState | None:
    """Remove a ready instance from the pool (from the least used zone) and start it."""
    ready = [s for s in instances(group) if s.lifecycle_state in READY_STATES]
    if not ready or group_ext(group).warm_pool_deleting:
        return None
    load = {s.availability_zone: 0 for s in ready}
    for member in members:
        if member.availability_zone in load:
            load[member.availability_zone] += 1
    state = min(ready, key=lambda s: (load[s.availability_zone], s.instance.launch_time))
    instances(group).remove(state)
    if state.instance.state == "stopped":
        group.autoscaling_backend.ec2_backend.start_instances([state.instance.id])
    lifecycle.cancel(group, state)
    return state


def reuses_on_scale_in(group: FakeAutoScalingGroup) -> bool:
    pool = config(group)
    policy = (pool.instance_reuse_policy if pool else None) or {}
    return bool(policy.get("ReuseOnScaleIn")) and not group_ext(group).warm_pool_deleting


def park(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    """A scaled-in instance returns to the pool instead of terminating."""
    lifecycle.cancel(group, state)
    group.instance_states = [s for s in group.instance_states if s is not state]
    instances(group).append(state)
    _settle(group, state)


def delete(group: FakeAutoScalingGroup, force: bool) -> None:
    pool = config(group)
    if pool is None:
        raise ValidationError(f"No warm pool found for Auto Scaling group {group.name}.")
    if force:
        finalize_delete(group, force=True)
        return
    group_ext(group).warm_pool_deleting = True
    pool.status = PENDING_DELETE  # type: ignore[attr-defined]
    for state in instances(group):
        state.lifecycle_state = "Warmed:Terminating"


def finalize_delete(group: FakeAutoScalingGroup, force: bool = False) -> None:
    """Terminate the pool's instances and drop it (the ticker completes a non-forced delete)."""
    if not (force or group_ext(group).warm_pool_deleting):
        return
    for state in list(instances(group)):
        _terminate(group, state, "the warm pool was deleted")
    group.warm_pool = None
    group_ext(group).warm_pool_deleting = False


def forget_instances(group: FakeAutoScalingGroup, instance_ids: list[str]) -> bool:
    """Instances terminated behind the pool's back leave it (the next refill replaces them)."""
    ext = group_ext(group)
    kept = [s for s in ext.warm_instances if s.instance.id not in instance_ids]
    changed = len(kept) != len(ext.warm_instances)
    ext.warm_instances = kept
    return changed
