# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decisions about Auto Scaling warm pools, as pure functions over API-shaped dicts."""

from __future__ import annotations

from typing import Any

POOL_STATES = {"stopped": "Stopped", "running": "Running", "hibernated": "Hibernated"}

STANDBY_POOL_HINT = (
    "AWS does not allow warm pools on groups that launch Spot instances; keep warm capacity in a "
    "companion On-Demand group with a warm pool instead (the standby-pool approach)"
)


class WarmPoolError(ValueError):
    """Input or group state that forbids the requested warm pool; the message names the field."""


def wanted_config(
    pool_state: str, min_size: int, max_group_prepared_capacity: int | None, reuse_on_scale_in: bool
) -> dict[str, Any]:
    """The warm pool configuration the user asked for, in the API's shape."""
    if min_size < 0:
        raise WarmPoolError(f"min_size: {min_size} is not allowed; use an integer >= 0")
    if max_group_prepared_capacity is not None:
        if max_group_prepared_capacity < 0:
            raise WarmPoolError(
                f"max_group_prepared_capacity: {max_group_prepared_capacity} is not allowed; use an integer >= 0, "
                "or omit it for AWS's default (the group's max size minus its desired capacity)"
            )
        if min_size > max_group_prepared_capacity:
            raise WarmPoolError(
                f"min_size: {min_size} exceeds max_group_prepared_capacity ({max_group_prepared_capacity}); "
                f"use a min_size between 0 and {max_group_prepared_capacity}"
            )
    if pool_state not in POOL_STATES:
        raise WarmPoolError(f"pool_state: {pool_state!r} is not allowed; use one of {', '.join(POOL_STATES)}")
    return {
        "PoolState": POOL_STATES[pool_state],
        "MinSize": min_size,
        "MaxGroupPreparedCapacity": max_group_prepared_capacity,
        "InstanceReusePolicy": {"ReuseOnScaleIn": reuse_on_scale_in},
    }


def current_config(configuration: dict[str, Any] | None) -> dict[str, Any] | None:
    """Normalise a ``WarmPoolConfiguration`` so it compares with :func:`wanted_config`."""
    if not configuration:
        return None
    prepared = configuration.get("MaxGroupPreparedCapacity")
    return {
        "PoolState": configuration.get("PoolState", "Stopped"),
        "MinSize": configuration.get("MinSize", 0),
        # -1 is how the API spells "not set": max size minus desired capacity.
        "MaxGroupPreparedCapacity": None if prepared is None or prepared < 0 else prepared,
        "InstanceReusePolicy": {
            "ReuseOnScaleIn": bool((configuration.get("InstanceReusePolicy") or {}).get("ReuseOnScaleIn"))
        },
    }


def put_request(name: str, current: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """Arguments of the PutWarmPool call that turns ``current`` into ``wanted``."""
    request: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "PoolState": wanted["PoolState"],
        "MinSize": wanted["MinSize"],
        "InstanceReusePolicy": wanted["InstanceReusePolicy"],
    }
    if wanted["MaxGroupPreparedCapacity"] is not None:
        request["MaxGroupPreparedCapacity"] = wanted["MaxGroupPreparedCapacity"]
    elif current and current["MaxGroupPreparedCapacity"] is not None:
        request["MaxGroupPreparedCapacity"] = -1
    return request


def launch_template_spec(group: dict[str, Any]) -> dict[str, Any] | None:
    """The launch template a group launches from, directly or through its mixed instances policy."""
    if group.get("LaunchTemplate"):
        return dict(group["LaunchTemplate"])
    policy = group.get("MixedInstancesPolicy") or {}
    spec = (policy.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return dict(spec) if spec else None


def spot_reason(
    group: dict[str, Any], template_data: dict[str, Any] | None, launch_configuration: dict[str, Any] | None = None
) -> str | None:
    """Why the group launches Spot instances, or None when it launches On-Demand only."""
    market = ((template_data or {}).get("InstanceMarketOptions") or {}).get("MarketType")
    if market == "spot":
        return "its launch template requests Spot (InstanceMarketOptions.MarketType: spot)"
    policy = group.get("MixedInstancesPolicy")
    if policy:
        distribution = policy.get("InstancesDistribution") or {}
        percentage = distribution.get("OnDemandPercentageAboveBaseCapacity", 100)
        if percentage < 100:
            share = 100 - percentage
            return f"its mixed instances policy launches {share}% of the capacity above the On-Demand base as Spot"
    if launch_configuration and launch_configuration.get("SpotPrice"):
        return "its launch configuration sets a SpotPrice"
    return None


def check_group(
    group: dict[str, Any],
    template_data: dict[str, Any] | None,
    pool_state: str,
    launch_configuration: dict[str, Any] | None = None,
) -> None:
    """Refuse, before any write, a warm pool AWS would refuse or that could not hibernate."""
    name = group["AutoScalingGroupName"]
    reason = spot_reason(group, template_data, launch_configuration)
    if reason:
        raise WarmPoolError(f"name: group {name!r} launches Spot instances: {reason}. {STANDBY_POOL_HINT}")
    if pool_state == "hibernated":
        configured = ((template_data or {}).get("HibernationOptions") or {}).get("Configured")
        if not configured:
            raise WarmPoolError(
                "pool_state: 'hibernated' needs instances that can hibernate, but the launch template of group "
                f"{name!r} "
                "does not set HibernationOptions.Configured: true; enable hibernation in the launch template "
                "(with an encrypted root volume large enough for RAM) or use pool_state 'stopped'"
            )


def warmed_count(instances: list[dict[str, Any]], pool_state: str) -> int:
    """How many pool instances have reached the pool's final state (e.g. ``Warmed:Stopped``)."""
    target = f"Warmed:{pool_state}"
    return sum(1 for instance in instances if instance.get("LifecycleState") == target)


def describe(
    configuration: dict[str, Any] | None, instances: list[dict[str, Any]], status: str | None = None
) -> dict[str, Any]:
    """The module's ``warm_pool`` return value (snake_case); empty when there is no pool."""
    if configuration is None:
        return {}
    return {
        "pool_state": configuration["PoolState"].lower(),
        "min_size": configuration["MinSize"],
        "max_group_prepared_capacity": configuration["MaxGroupPreparedCapacity"],
        "instance_reuse_policy": {"reuse_on_scale_in": configuration["InstanceReusePolicy"]["ReuseOnScaleIn"]},
        "status": status,
        "instances": [
            {
                "instance_id": instance["InstanceId"],
                "lifecycle_state": instance.get("LifecycleState"),
                "instance_type": instance.get("InstanceType"),
                "availability_zone": instance.get("AvailabilityZone"),
            }
            for instance in instances
        ],
    }


def groups_with_pool(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The described groups that have a warm pool, sorted by name."""
    return sorted(
        (group for group in groups if group.get("WarmPoolConfiguration")), key=lambda g: g["AutoScalingGroupName"]
    )


def describe_group_pool(group: dict[str, Any], instances: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``warm_pools`` element of asg_warm_pool_info, from a group description and its pool's instances."""
    configuration = group["WarmPoolConfiguration"]
    return {
        "auto_scaling_group_name": group["AutoScalingGroupName"],
        **describe(current_config(configuration), instances, configuration.get("Status")),
    }
