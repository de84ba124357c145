"""Keeping a group at its desired capacity: scale-out (warm pool first), scale-in, replacements."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState

from . import activities, launch, lifecycle, warm_pool
from .faults import SPOT_CAPACITY_MESSAGE, InsufficientCapacityError
from .runtime import RUNTIME
from .state import (
    COUNTED_STATES,
    IN_SERVICE,
    ON_DEMAND,
    PENDING,
    SPOT,
    TERMINATING,
    capacity,
    counted,
    group_ext,
    is_registered,
    market_of,
    suspended,
    weight_of,
)

# Virtual seconds between the ticker's retries of a launch that failed for lack of capacity.
RETRY_SECONDS = 60
_LOOP_BOUND = 1000
SPOT_FAILURE = (
    "Could not launch Spot Instances. InsufficientInstanceCapacity - "
    + SPOT_CAPACITY_MESSAGE
    + " Launching EC2 instance failed."
)


class ResourceInUseError(AutoscalingClientError):
    code = "ResourceInUse"


def reconcile(group: FakeAutoScalingGroup, from_ticker: bool = False) -> None:
    """Launch or remove instances until the group's counted capacity equals its desired capacity."""
    if not is_registered(group):
        return
    desired = int(group.desired_capacity or 0)
    current = capacity(group)
    if current < desired and not suspended(group, "Launch") and (not from_ticker or _retry_due(group)):
        scale_out(group, desired)
    elif current > desired and not suspended(group, "Terminate"):
        scale_in(group, desired)
    if not suspended(group, "Launch"):
        warm_pool.refill(group)
    backend = group.autoscaling_backend
    backend.update_attached_elbs(group.name)
    backend.update_attached_target_groups(group.name)


def _retry_due(group: FakeAutoScalingGroup) -> bool:
    ext = group_ext(group)
    if ext.last_failure_at is None or ext.last_failure_generation != RUNTIME.faults.generation:
        return True
    return RUNTIME.clock.now() - ext.last_failure_at >= timedelta(seconds=RETRY_SECONDS)


def _launch_cause(before: int, desired: int) -> str:
    return (
        f"At {activities.now_text()} an instance was started in response to a difference between desired "
        f"and actual capacity, increasing the capacity from {before} to {desired}."
    )


def _enter_service(
    group: FakeAutoScalingGroup, state: InstanceState, activity: activities.ScalingActivity, origin: str
) -> None:
    if not lifecycle.start_wait(group, state, lifecycle.LAUNCHING, activity, origin, "AutoScalingGroup"):
        state.lifecycle_state = IN_SERVICE
        activity.finish(activities.SUCCESSFUL)
        activities.announce(group, activity, activities.LAUNCH_SUCCESSFUL, state.instance.id)


def scale_out(group: FakeAutoScalingGroup, desired: int) -> None:
    before = capacity(group)
    while capacity(group) < desired:
        state = warm_pool.take(group, counted(group))
        if state is None:
            break
        state.lifecycle_state = PENDING
        group.instance_states.append(state)
        activity = activities.record(
            group,
            f"Launching a new EC2 instance from warm pool: {state.instance.id}",
            _launch_cause(before, desired),
            details={"Subnet ID": state.instance.subnet_id or "", "Availability Zone": state.availability_zone or ""},
        )
        _enter_service(group, state, activity, "WarmPool")
    failed: set[tuple[str, str]] = set()
    for _round in range(_LOOP_BOUND):
        if capacity(group) >= desired:
            break
        market = launch.next_market(group, desired)
        spec = launch.choose(group, market, failed)
        if spec is None:
            break
        try:
            instance = launch.launch(group, spec)
        except InsufficientCapacityError:
            failed.add((spec.instance_type, spec.zone))
            continue
        state = launch.new_state(group, instance, spec, PENDING)
        group.instance_states.append(state)
        activity = activities.record(
            group,
            f"Launching a new EC2 instance: {instance.id}",
            _launch_cause(before, desired),
            details={"Subnet ID": instance.subnet_id or "", "Availability Zone": spec.zone},
        )
        _enter_service(group, state, activity, "EC2")
    ext = group_ext(group)
    if capacity(group) < desired and failed:
        failure = activities.record(
            group,
            f"Launching a new EC2 instance.  Status Reason: {SPOT_FAILURE}",
            _launch_cause(before, desired),
            details={"Availability Zone": ",".join(sorted({pool[1] for pool in failed}))},
        )
        failure.finish(activities.FAILED, SPOT_FAILURE)
        activities.announce(group, failure, activities.LAUNCH_UNSUCCESSFUL)
        ext.last_failure_at = RUNTIME.clock.now()
        ext.last_failure_generation = RUNTIME.faults.generation
    elif capacity(group) >= desired:
        ext.last_failure_at = None


def choose_victim(group: FakeAutoScalingGroup, desired: int, excess: int) -> InstanceState | None:
    """Default termination policy: rebalance purchase options, then zones, then the oldest instance."""
    candidates = [s for s in counted(group) if not s.protected_from_scale_in and weight_of(s) <= excess]
    if not candidates:
        return None
    if launch.mixed_policy(group) is not None:
        od_target = launch.on_demand_target(group, desired)
        prefer = None
        if capacity(group, ON_DEMAND) > od_target:
            prefer = ON_DEMAND
        elif capacity(group, SPOT) > desired - od_target:
            prefer = SPOT
        candidates = [s for s in candidates if market_of(s) == prefer] or candidates
    zone_load = Counter(s.availability_zone for s in counted(group))
    busiest = max(zone_load[s.availability_zone] for s in candidates)
    candidates = [s for s in candidates if zone_load[s.availability_zone] == busiest]
    policies = group.termination_policies or ["Default"]
    if policies[0] == "NewestInstance":
        return max(candidates, key=lambda s: s.instance.launch_time)
    return min(candidates, key=lambda s: s.instance.launch_time)


def scale_in(group: FakeAutoScalingGroup, desired: int) -> None:
    for _round in range(_LOOP_BOUND):
        current = capacity(group)
        if current <= desired:
            return
        victim = choose_victim(group, desired, current - desired)
        if victim is None:
            return
        cause = (
            f"At {activities.now_text()} an instance was taken out of service in response to a difference "
            f"between desired and actual capacity, shrinking the capacity from {current} to {desired}."
        )
        if warm_pool.reuses_on_scale_in(group):
            warm_pool.park(group, victim)
            activities.record(
                group, f"Moving EC2 instance to warm pool: {victim.instance.id}", cause, activities.SUCCESSFUL
            )
        else:
            begin_termination(group, victim, cause)


def begin_termination(group: FakeAutoScalingGroup, state: InstanceState, cause: str) -> activities.ScalingActivity:
    """Terminating, through ``Terminating:Wait`` when the group has a terminating hook."""
    activity = activities.record(group, f"Terminating EC2 instance: {state.instance.id}", cause)
    state.lifecycle_state = TERMINATING
    if not lifecycle.start_wait(group, state, lifecycle.TERMINATING_TRANSITION, activity, "AutoScalingGroup", "EC2"):
        lifecycle.finish_termination(group, state)
    return activity


def replace_unhealthy(group: FakeAutoScalingGroup) -> None:
    if suspended(group, "ReplaceUnhealthy") or not is_registered(group):
        return
    for state in [s for s in counted(group) if s.health_status == "Unhealthy"]:
        begin_termination(
            group,
            state,
            f"At {activities.now_text()} an instance was taken out of service in response to an EC2 health "
            "check indicating it has been terminated or stopped.",
        )


def find_member(backend: AutoScalingBackend, instance_id: str) -> tuple[FakeAutoScalingGroup, InstanceState]:
    for group in backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return group, state
    raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")


def terminate_in_group(
    backend: AutoScalingBackend, instance_id: str, should_decrement: bool
) -> activities.ScalingActivity:
    """TerminateInstanceInAutoScalingGroup."""
    group, state = find_member(backend, instance_id)
    if state.lifecycle_state not in COUNTED_STATES | {"Standby"}:
        raise ValidationError(f"The instance {instance_id} is already terminating.")
    before = int(group.desired_capacity or 0)
    cause = f"At {activities.now_text()} instance {instance_id} was taken out of service in response to a user request"
    if should_decrement and state.lifecycle_state != "Standby":
        after = before - weight_of(state)
        if after < int(group.min_size or 0):
            raise ValidationError(
                f"Currently, desiredCapacity={before} and minSize={group.min_size}. Decrementing desired capacity "
                f"by {weight_of(state)} would violate the group's min size constraint."
            )
        group.desired_capacity = after
        cause += f", shrinking the capacity from {before} to {after}."
    else:
        cause += "."
    activity = begin_termination(group, state, cause)
    reconcile(group)
    return activity.as_started()


def handle_ec2_terminated(backend: AutoScalingBackend, instance_ids: list[str]) -> None:
    """Instances terminated through EC2 (or interrupted) fail their health check and are replaced."""
    for group in list(backend.autoscaling_groups.values()):
        hit = warm_pool.forget_instances(group, instance_ids)
        for state in list(group.instance_states):
            if state.instance.id not in instance_ids:
                continue
            hit = True
            if state.lifecycle_state in COUNTED_STATES:
                state.health_status = "Unhealthy"
            elif state.lifecycle_state == "Standby":
                group.instance_states.remove(state)
        if hit:
            replace_unhealthy(group)
            reconcile(group)


def delete_group(backend: AutoScalingBackend, group_name: str, force: bool) -> FakeAutoScalingGroup:
    """Checks and clean-up before moto drops the group."""
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found")
    if not force and (group.instance_states or warm_pool.instances(group)):
        raise ResourceInUseError(
            "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) "
            "still in the group."
        )
    ec2 = backend.ec2_backend
    live = [
        s.instance.id for s in group.instance_states + warm_pool.instances(group) if s.instance.state != "terminated"
    ]
    if live:
        ec2.terminate_instances(live)
    group.instance_states = []
    group_ext(group).warm_instances = []
    group.warm_pool = None
    lifecycle.forget_group(backend, group_name)
    activities.forget_group(backend, group_name)
    return group
