"""The patches that wire the extensions into moto's Auto Scaling backend and responses.

Backend methods are replaced where moto's behaviour is wrong for the project (capacity,
termination, hooks, warm pools); response methods are added for actions moto lacks.
"""

from __future__ import annotations

import contextvars
import copy
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import (
    AutoScalingBackend,
    FakeAutoScalingGroup,
    FakeWarmPool,
    InstanceState,
    LifecycleHook,
)
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import activities, capacity, events, lifecycle, warm_pool
from ._patch import add_property, original, patch, set_value

# Hooks given to CreateAutoScalingGroup must exist before the first instances launch.
_HOOK_SPECS: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "spotmax_hook_specs", default=None
)


def _group(backend: AutoScalingBackend, name: str | None) -> FakeAutoScalingGroup:
    group = backend.autoscaling_groups.get(name or "")
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def _check_sizes(min_size: int | None, max_size: int | None, desired: int | None) -> None:
    if min_size is not None and max_size is not None and min_size > max_size:
        raise ValidationError(f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}")
    if desired is not None and (
        (min_size is not None and desired < min_size) or (max_size is not None and desired > max_size)
    ):
        raise ValidationError(
            f"Desired capacity:{desired} must be between the specified min size:{min_size} and max size:{max_size}"
        )


# -- FakeAutoScalingGroup ----------------------------------------------------------------------


class _TagsByKey:
    """AWS lists a group's tags sorted by key; moto keeps insertion order (moto always assigns lists)."""

    def __get__(self, group: Any, owner: type | None = None) -> Any:
        if group is None:
            return self
        return group.__dict__.get("_spotmax_tags", [])

    def __set__(self, group: Any, tags: list[dict[str, Any]] | None) -> None:
        group.__dict__["_spotmax_tags"] = sorted(tags or [], key=lambda tag: str(tag["Key"]))


def _set_desired_capacity(self: FakeAutoScalingGroup, new_capacity: int | None) -> None:
    self.desired_capacity = self.min_size if new_capacity is None else new_capacity
    capacity.reconcile(self)


def _replace_instances(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
    del count_needed, propagated_tags
    capacity.reconcile(self)


def _update(self: FakeAutoScalingGroup, *args: Any, **kwargs: Any) -> None:
    names = ("availability_zones", "desired_capacity", "max_size", "min_size", "launch_config_name", "launch_template")
    kwargs.update(zip(names, args, strict=False))
    desired, min_size, max_size = kwargs.get("desired_capacity"), kwargs.get("min_size"), kwargs.get("max_size")
    new_min = self.min_size if min_size is None else min_size
    new_max = self.max_size if max_size is None else max_size
    if desired is None:
        current = int(self.desired_capacity or 0)
        if min_size is not None and min_size > current:
            kwargs["desired_capacity"] = min_size
        elif max_size is not None and max_size < current:
            kwargs["desired_capacity"] = max_size
    _check_sizes(new_min, new_max, kwargs.get("desired_capacity"))
    # moto drops the mixed instances policy on any update that does not repeat it.
    repeats = kwargs.get("mixed_instances_policy") or kwargs.get("launch_template") or kwargs.get("launch_config_name")
    if not repeats and self.mixed_instances_policy:
        kept = copy.deepcopy(self.mixed_instances_policy)
        spec = kept["LaunchTemplate"]["LaunchTemplateSpecification"]
        if spec.get("LaunchTemplateId"):
            spec.pop("LaunchTemplateName", None)  # moto accepts the id or the name, not both
        kwargs["mixed_instances_policy"] = kept
    original(FakeAutoScalingGroup, "update")(self, **kwargs)
    # A changed policy (e.g. a larger On-Demand share) is acted on at once, as Auto Scaling does.
    capacity.reconcile(self)


def _warm_pool_size(self: FakeAutoScalingGroup) -> int | None:
    return len(warm_pool.instances(self)) if self.warm_pool is not None else None


# -- AutoScalingBackend ------------------------------------------------------------------------


def _create_group(self: AutoScalingBackend, *args: Any, **kwargs: Any) -> FakeAutoScalingGroup:
    names = ("name", "availability_zones", "desired_capacity", "max_size", "min_size")
    kwargs.update(zip(names, args, strict=False))
    as_int = {
        k: (None if kwargs.get(k) is None else int(kwargs[k])) for k in ("min_size", "max_size", "desired_capacity")
    }
    _check_sizes(as_int["min_size"], as_int["max_size"], as_int["desired_capacity"])
    group: FakeAutoScalingGroup = original(AutoScalingBackend, "create_auto_scaling_group")(self, **kwargs)
    for spec in _HOOK_SPECS.get() or []:
        _create_hook(
            self,
            name=spec["LifecycleHookName"],
            as_name=group.name,
            transition=spec.get("LifecycleTransition"),
            timeout=spec.get("HeartbeatTimeout"),
            result=spec.get("DefaultResult"),
            role_arn=spec.get("RoleARN"),
            notification_target_arn=spec.get("NotificationTargetARN"),
            notification_metadata=spec.get("NotificationMetadata"),
        )
    capacity.reconcile(group)
    return group


def _delete_group(self: AutoScalingBackend, group_name: str, force: bool = True) -> None:
    capacity.delete_group(self, group_name, force)
    original(AutoScalingBackend, "delete_auto_scaling_group")(self, group_name)


def _terminate_instance(self: AutoScalingBackend, instance_id: str, should_decrement: bool) -> Any:
    return capacity.terminate_in_group(self, instance_id, should_decrement)


def _notify_terminate(self: AutoScalingBackend, instance_ids: list[str]) -> None:
    capacity.handle_ec2_terminated(self, instance_ids)


def _create_hook(
    self: AutoScalingBackend,
    name: str,
    as_name: str,
    transition: str | None,
    timeout: int | None,
    result: str | None,
    role_arn: str | None = None,
    notification_target_arn: str | None = None,
    notification_metadata: str | None = None,
) -> LifecycleHook:
    """PutLifecycleHook: creates, or updates only the given fields, and tests the notification target."""
    group = _group(self, as_name)
    key = f"{as_name}_{name}"
    hook = self.lifecycle_hooks.get(key)
    if hook is None:
        if not transition:
            raise ValidationError("LifecycleTransition is required when creating a lifecycle hook.")
        hook = LifecycleHook(name, as_name, transition, timeout, result)
        hook.role_arn = hook.notification_target_arn = None  # type: ignore[assignment]
        hook.notification_metadata = None  # type: ignore[attr-defined]
    else:
        hook.lifecycle_transition = transition or hook.lifecycle_transition
        hook.heartbeat_timeout = timeout or hook.heartbeat_timeout
        hook.default_result = result or hook.default_result
    if role_arn is not None:
        hook.role_arn = role_arn or None  # type: ignore[assignment]
    if notification_metadata is not None:
        hook.notification_metadata = notification_metadata or None  # type: ignore[attr-defined]
    if notification_target_arn is not None:
        target = notification_target_arn or None
        if target and events.is_sqs_arn(target) and not events.sqs_queue_exists(target):
            raise ValidationError(
                f"Unable to publish test message to notification target {target} using IAM role {hook.role_arn}. "
                "Please check your target and role configuration and try to put lifecycle hook again."
            )
        hook.notification_target_arn = target  # type: ignore[assignment]
        if target:
            events.send_to_target(target, lifecycle.test_message(group))
    hook.global_timeout = lifecycle.global_timeout(hook.heartbeat_timeout)
    self.lifecycle_hooks[key] = hook
    return hook


def _delete_hook(self: AutoScalingBackend, as_name: str, name: str) -> None:
    lifecycle.release_hook(self, as_name, name)
    original(AutoScalingBackend, "delete_lifecycle_hook")(self, as_name, name)
    group = self.autoscaling_groups.get(as_name)
    if group is not None:
        capacity.reconcile(group)


def _put_warm_pool(
    self: AutoScalingBackend,
    group_name: str,
    max_group_prepared_capacity: int | None,
    min_size: int | None,
    pool_state: str | None,
    instance_reuse_policy: dict[str, bool] | None,
) -> None:
    warm_pool.put(_group(self, group_name), max_group_prepared_capacity, min_size, pool_state, instance_reuse_policy)


def _describe_warm_pool(self: AutoScalingBackend, group_name: str) -> FakeWarmPool | None:
    return _group(self, group_name).warm_pool


def _delete_warm_pool(self: AutoScalingBackend, group_name: str, force: bool = False) -> None:
    warm_pool.delete(_group(self, group_name), force)


# -- AutoScalingResponse -----------------------------------------------------------------------


class ResponseExtensions(AutoScalingResponse):
    """Never instantiated: its methods are grafted onto moto's ``AutoScalingResponse``."""

    def create_auto_scaling_group(self) -> ActionResult:
        token = _HOOK_SPECS.set(self._get_param("LifecycleHookSpecificationList", []) or [])
        try:
            result: ActionResult = original(AutoScalingResponse, "create_auto_scaling_group")(self)
        finally:
            _HOOK_SPECS.reset(token)
        return result

    def set_desired_capacity(self) -> ActionResult:
        backend = self.autoscaling_backend
        group = _group(backend, self._get_param("AutoScalingGroupName"))
        desired = int(self._get_int_param("DesiredCapacity"))
        if group.max_size is not None and desired > group.max_size:
            raise ValidationError(
                f"New SetDesiredCapacity value {desired} is above max value {group.max_size} for the AutoScalingGroup."
            )
        if group.min_size is not None and desired < group.min_size:
            raise ValidationError(
                f"New SetDesiredCapacity value {desired} is below min value {group.min_size} for the AutoScalingGroup."
            )
        backend.set_desired_capacity(group.name, desired)
        return EmptyResult()

    def delete_auto_scaling_group(self) -> ActionResult:
        force = bool(self._get_bool_param("ForceDelete", False))
        _delete_group(self.autoscaling_backend, self._get_param("AutoScalingGroupName"), force=force)
        return EmptyResult()

    def put_lifecycle_hook(self) -> ActionResult:
        _create_hook(
            self.autoscaling_backend,
            name=self._get_param("LifecycleHookName"),
            as_name=self._get_param("AutoScalingGroupName"),
            transition=self._get_param("LifecycleTransition"),
            timeout=self._get_int_param("HeartbeatTimeout"),
            result=self._get_param("DefaultResult"),
            role_arn=self._get_param("RoleARN"),
            notification_target_arn=self._get_param("NotificationTargetARN"),
            notification_metadata=self._get_param("NotificationMetadata"),
        )
        return EmptyResult()

    def _lifecycle_action(self) -> lifecycle.LifecycleAction:
        return lifecycle.find_action(
            self.autoscaling_backend,
            self._get_param("AutoScalingGroupName"),
            self._get_param("LifecycleHookName"),
            self._get_param("LifecycleActionToken"),
            self._get_param("InstanceId"),
        )

    def complete_lifecycle_action(self) -> ActionResult:
        backend = self.autoscaling_backend
        action = ResponseExtensions._lifecycle_action(self)
        lifecycle.complete(backend, action, str(self._get_param("LifecycleActionResult")))
        group = backend.autoscaling_groups.get(action.group_name)
        if group is not None:
            capacity.reconcile(group)
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self) -> ActionResult:
        lifecycle.heartbeat(ResponseExtensions._lifecycle_action(self))
        return EmptyResult()

    def describe_scaling_activities(self) -> ActionResult:
        return ActionResult(
            activities.describe(
                self.autoscaling_backend,
                self._get_param("AutoScalingGroupName"),
                self._get_param("ActivityIds", []) or [],
                int(self._get_int_param("MaxRecords") or 100),
                self._get_param("NextToken"),
            )
        )

    def describe_warm_pool(self) -> ActionResult:
        group = _group(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        pool: list[InstanceState] = warm_pool.instances(group) if group.warm_pool is not None else []
        result: dict[str, Any] = {"Instances": pool}
        if group.warm_pool is not None:
            result["WarmPoolConfiguration"] = group.warm_pool
        return ActionResult(result)

    def disable_metrics_collection(self) -> ActionResult:
        # amazon.aws's autoscaling_group calls it on every update; no metrics listed means all.
        group = _group(self.autoscaling_backend, self._get_param("AutoScalingGroupName"))
        disabled = set(self._get_param("Metrics", []) or [])
        group.metrics = [metric for metric in group.metrics if disabled and metric not in disabled]
        return EmptyResult()

    def delete_warm_pool(self) -> ActionResult:
        force = bool(self._get_bool_param("ForceDelete", False))
        _delete_warm_pool(self.autoscaling_backend, self._get_param("AutoScalingGroupName"), force=force)
        return EmptyResult()


# Grafted onto AutoScalingResponse; moto dispatches an action to the method of its snake_case name.
_RESPONSE_METHODS = (
    "create_auto_scaling_group",
    "set_desired_capacity",
    "delete_auto_scaling_group",
    "put_lifecycle_hook",
    "complete_lifecycle_action",
    "record_lifecycle_action_heartbeat",
    "describe_scaling_activities",
    "describe_warm_pool",
    "delete_warm_pool",
    "disable_metrics_collection",
)


def install() -> None:
    patch(FakeAutoScalingGroup, "set_desired_capacity", _set_desired_capacity)
    patch(FakeAutoScalingGroup, "replace_autoscaling_group_instances", _replace_instances)
    patch(FakeAutoScalingGroup, "update", _update)
    add_property(FakeAutoScalingGroup, "warm_pool_size", _warm_pool_size)
    if not isinstance(FakeAutoScalingGroup.__dict__.get("tags"), _TagsByKey):
        set_value(FakeAutoScalingGroup, "tags", _TagsByKey())
    set_value(FakeWarmPool, "status", None)
    patch(AutoScalingBackend, "create_auto_scaling_group", _create_group)
    patch(AutoScalingBackend, "delete_auto_scaling_group", _delete_group)
    patch(AutoScalingBackend, "terminate_instance", _terminate_instance)
    patch(AutoScalingBackend, "notify_terminate_instances", _notify_terminate)
    patch(AutoScalingBackend, "create_lifecycle_hook", _create_hook)
    patch(AutoScalingBackend, "delete_lifecycle_hook", _delete_hook)
    patch(AutoScalingBackend, "put_warm_pool", _put_warm_pool)
    patch(AutoScalingBackend, "describe_warm_pool", _describe_warm_pool)
    patch(AutoScalingBackend, "delete_warm_pool", _delete_warm_pool)
    for name in _RESPONSE_METHODS:
        patch(AutoScalingResponse, name, getattr(ResponseExtensions, name), create=True)
