"""Lifecycle hooks that hold instances in ``Pending:Wait`` / ``Terminating:Wait``.

An action per (instance, hook) carries a token; ``CompleteLifecycleAction`` or the hook's
``HeartbeatTimeout`` on the virtual clock (then ``DefaultResult``) releases it. Each wait is
announced as AWS does: a JSON message to an SQS notification target and an EventBridge event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, InstanceState, LifecycleHook

from . import activities, events
from .clock import iso_millis
from .runtime import RUNTIME
from .state import (
    IN_SERVICE,
    PENDING_WAIT,
    TERMINATING,
    TERMINATING_WAIT,
    backend_ext,
    find_state,
    instance_ext,
)

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"
CONTINUE, ABANDON = "CONTINUE", "ABANDON"
MAX_GLOBAL_TIMEOUT = 172800  # 48 hours
DETAIL_TYPES = {
    LAUNCHING: "EC2 Instance-launch Lifecycle Action",
    TERMINATING_TRANSITION: "EC2 Instance-terminate Lifecycle Action",
}


@dataclass
class LifecycleAction:
    token: str
    group_name: str
    hook_name: str
    instance_id: str
    transition: str
    heartbeat_timeout: int
    default_result: str
    started: datetime
    deadline: datetime

    @property
    def global_deadline(self) -> datetime:
        return self.started + timedelta(seconds=global_timeout(self.heartbeat_timeout))


def global_timeout(heartbeat_timeout: int) -> int:
    return min(100 * heartbeat_timeout, MAX_GLOBAL_TIMEOUT)


def hooks_for(backend: AutoScalingBackend, group_name: str, transition: str) -> list[LifecycleHook]:
    return [
        h
        for h in backend.lifecycle_hooks.values()
        if h.auto_scaling_group_name == group_name and h.lifecycle_transition == transition
    ]


def hook_message(
    group: FakeAutoScalingGroup,
    hook: LifecycleHook,
    action: LifecycleAction,
    origin: str,
    destination: str,
    request_id: str,
) -> dict[str, str]:
    message = {
        "Origin": origin,
        "Destination": destination,
        "LifecycleHookName": hook.name,
        "AccountId": group.account_id,
        "RequestId": request_id,
        "LifecycleTransition": action.transition,
        "AutoScalingGroupName": group.name,
        "Service": "AWS Auto Scaling",
        "Time": iso_millis(RUNTIME.clock.now()),
        "EC2InstanceId": action.instance_id,
        "LifecycleActionToken": action.token,
    }
    metadata = getattr(hook, "notification_metadata", None)
    if metadata:
        message["NotificationMetadata"] = metadata
    return message


def test_message(group: FakeAutoScalingGroup) -> dict[str, str]:
    return {
        "AccountId": group.account_id,
        "RequestId": str(uuid.uuid4()),
        "AutoScalingGroupARN": group.arn,
        "AutoScalingGroupName": group.name,
        "Service": "AWS Auto Scaling",
        "Event": "autoscaling:TEST_NOTIFICATION",
        "Time": iso_millis(RUNTIME.clock.now()),
    }


def start_wait(
    group: FakeAutoScalingGroup,
    state: InstanceState,
    transition: str,
    activity: activities.ScalingActivity | None,
    origin: str,
    destination: str,
) -> bool:
    """Put ``state`` into the transition's wait state if the group has hooks for it."""
    backend = group.autoscaling_backend
    hooks = hooks_for(backend, group.name, transition)
    cancel(group, state)
    ext = instance_ext(state)
    ext.activity = activity
    if not hooks:
        return False
    state.lifecycle_state = PENDING_WAIT if transition == LAUNCHING else TERMINATING_WAIT
    if activity is not None:
        activity.status_code = activities.MID_LIFECYCLE
        activity.progress = 50
    now = RUNTIME.clock.now()
    for hook in hooks:
        action = LifecycleAction(
            token=str(uuid.uuid4()),
            group_name=group.name,
            hook_name=hook.name,
            instance_id=state.instance.id,
            transition=transition,
            heartbeat_timeout=hook.heartbeat_timeout,
            default_result=hook.default_result,
            started=now,
            deadline=now + timedelta(seconds=hook.heartbeat_timeout),
        )
        backend_ext(backend).actions[action.token] = action
        ext.pending_tokens.add(action.token)
        request_id = activity.activity_id if activity is not None else str(uuid.uuid4())
        message = hook_message(group, hook, action, origin, destination, request_id)
        events.send_to_target(getattr(hook, "notification_target_arn", None), message)
        detail = {k: message[k] for k in _EVENT_DETAIL_KEYS if k in message}
        events.publish(group.account_id, group.region, "aws.autoscaling", DETAIL_TYPES[transition], [group.arn], detail)
    return True


_EVENT_DETAIL_KEYS = (
    "LifecycleActionToken",
    "AutoScalingGroupName",
    "LifecycleHookName",
    "EC2InstanceId",
    "LifecycleTransition",
    "NotificationMetadata",
    "Origin",
    "Destination",
)


def cancel(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    """Drop the instance's outstanding actions (it moved on, e.g. terminated while still launching)."""
    ext = instance_ext(state)
    actions = backend_ext(group.autoscaling_backend).actions
    for token in ext.pending_tokens:
        actions.pop(token, None)
    ext.pending_tokens.clear()
    ext.abandoned, ext.abandon_token = False, ""


def find_action(
    backend: AutoScalingBackend, group_name: str, hook_name: str, token: str | None, instance_id: str | None
) -> LifecycleAction:
    for action in backend_ext(backend).actions.values():
        if action.group_name != group_name or action.hook_name != hook_name:
            continue
        if (token and action.token == token) or (not token and instance_id and action.instance_id == instance_id):
            return action
    if token:
        raise ValidationError(f"No active Lifecycle Action found with token {token}")
    if instance_id:
        raise ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")
    raise ValidationError("Either LifecycleActionToken or InstanceId must be specified.")


def heartbeat(action: LifecycleAction) -> None:
    action.deadline = min(RUNTIME.clock.now() + timedelta(seconds=action.heartbeat_timeout), action.global_deadline)


def complete(backend: AutoScalingBackend, action: LifecycleAction, result: str) -> None:
    """Release one action; the instance moves on once all of its actions are released."""
    if result not in (CONTINUE, ABANDON):
        raise ValidationError("LifecycleActionResult must be either CONTINUE or ABANDON")
    backend_ext(backend).actions.pop(action.token, None)
    group = backend.autoscaling_groups.get(action.group_name)
    state = find_state(group, action.instance_id) if group is not None else None
    if group is None or state is None:
        return
    ext = instance_ext(state)
    ext.pending_tokens.discard(action.token)
    if result == ABANDON:
        ext.abandoned = True
        ext.abandon_token = action.token
    if ext.pending_tokens:
        return
    if action.transition == LAUNCHING:
        finish_launch(group, state)
    else:
        finish_termination(group, state)


def finish_launch(group: FakeAutoScalingGroup, state: InstanceState) -> None:
    ext = instance_ext(state)
    if not ext.abandoned:
        state.lifecycle_state = IN_SERVICE
        if ext.activity is not None:
            ext.activity.finish(activities.SUCCESSFUL)
            activities.announce(group, ext.activity, activities.LAUNCH_SUCCESSFUL, state.instance.id)
        return
    if ext.activity is not None:
        ext.activity.finish(
            activities.CANCELLED,
            "Instance failed to complete user's Lifecycle Action: Lifecycle Action with token "
            f"{ext.abandon_token} was abandoned: Lifecycle Action Completed with ABANDON Result",
        )
    state.lifecycle_state = TERMINATING
    finish_termination(group, state, finish_activity=False)


def finish_termination(group: FakeAutoScalingGroup, state: InstanceState, finish_activity: bool = True) -> None:
    """Terminate the EC2 instance and drop it from the group."""
    ec2 = group.autoscaling_backend.ec2_backend
    if state.instance.state != "terminated":
        ec2.terminate_instances([state.instance.id])
    group.instance_states = [s for s in group.instance_states if s is not state]
    ext = instance_ext(state)
    for token in list(ext.pending_tokens):
        backend_ext(group.autoscaling_backend).actions.pop(token, None)
    ext.pending_tokens.clear()
    if finish_activity and ext.activity is not None:
        ext.activity.finish(activities.SUCCESSFUL)
        activities.announce(group, ext.activity, activities.TERMINATE_SUCCESSFUL, state.instance.id)


def expire(backend: AutoScalingBackend, now: datetime) -> None:
    """Apply ``DefaultResult`` to actions whose heartbeat timeout has passed."""
    for action in [a for a in backend_ext(backend).actions.values() if a.deadline <= now]:
        complete(backend, action, action.default_result)


def release_hook(backend: AutoScalingBackend, group_name: str, hook_name: str) -> None:
    """A deleted hook lets its waiting instances go on (launching: ABANDON, terminating: CONTINUE)."""
    for action in list(backend_ext(backend).actions.values()):
        if action.group_name == group_name and action.hook_name == hook_name:
            complete(backend, action, ABANDON if action.transition == LAUNCHING else CONTINUE)


def forget_group(backend: AutoScalingBackend, group_name: str) -> None:
    ext = backend_ext(backend)
    ext.actions = {t: a for t, a in ext.actions.items() if a.group_name != group_name}
    for key in [k for k, h in backend.lifecycle_hooks.items() if h.auto_scaling_group_name == group_name]:
        del backend.lifecycle_hooks[key]
