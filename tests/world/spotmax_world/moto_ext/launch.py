"""Launching for Auto Scaling groups: On-Demand/Spot split, instance-type and zone choice, Spot faults.

Also wraps EC2 ``RunInstances`` so a launch template that asks for Spot yields a Spot instance
(with a Spot instance request, as EC2 creates one) and a faulted Spot pool fails with
``InsufficientInstanceCapacity``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, cast

from moto.autoscaling.models import ASG_NAME_TAG, FakeAutoScalingGroup, InstanceState
from moto.ec2.models import EC2Backend
from moto.ec2.models.instances import Instance, InstanceBackend, Reservation
from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.models.spot_requests import SpotInstanceRequest
from moto.ec2.utils import random_spot_request_id

from ._patch import original, patch
from .faults import InsufficientCapacityError
from .runtime import RUNTIME
from .state import ON_DEMAND, SPOT, capacity, counted, market_of

# Strategies that spread Spot capacity over all overrides rather than the first few pools.
_DIVERSIFYING = frozenset({"capacity-optimized", "price-capacity-optimized", "lowest-price"})


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to launch one instance for a group."""

    market: str
    instance_type: str
    zone: str
    subnet_id: str | None
    weight: int
    weighted: bool
    template: LaunchTemplate | None
    template_version: str | None


@dataclass(frozen=True)
class _TypeOption:
    instance_type: str
    weight: int
    template: LaunchTemplate | None
    template_version: str | None


def _version_data(template: LaunchTemplate | None, version: str | None) -> dict[str, Any]:
    if template is None:
        return {}
    data: dict[str, Any] = template.get_version(version or "$Default").data
    return data


def template_data(group: FakeAutoScalingGroup) -> dict[str, Any]:
    """The launch template version data the group launches with ({} for launch configurations)."""
    return _version_data(group.ec2_launch_template, getattr(group, "launch_template_version", None))


def data_requests_spot(data: dict[str, Any]) -> bool:
    return str((data.get("InstanceMarketOptions") or {}).get("MarketType", "")).lower() == SPOT


def mixed_policy(group: FakeAutoScalingGroup) -> dict[str, Any] | None:
    policy = group.mixed_instances_policy
    return policy if policy else None


def _distribution(group: FakeAutoScalingGroup) -> dict[str, Any]:
    policy = mixed_policy(group) or {}
    result: dict[str, Any] = policy.get("InstancesDistribution") or {}
    return result


def on_demand_percentage(group: FakeAutoScalingGroup) -> int:
    value = _distribution(group).get("OnDemandPercentageAboveBaseCapacity")
    return 100 if value is None else int(value)


def spot_request_reason(group: FakeAutoScalingGroup) -> str | None:
    """Why the group would launch Spot: ``launch-configuration``, ``launch-template``, ``mixed-instances-policy``."""
    if group.launch_config is not None and group.launch_config.spot_price:
        return "launch-configuration"
    if data_requests_spot(template_data(group)):
        return "launch-template"
    if mixed_policy(group) is not None and on_demand_percentage(group) < 100:
        return "mixed-instances-policy"
    return None


def on_demand_target(group: FakeAutoScalingGroup, desired: int) -> int:
    """Capacity units the group keeps On-Demand at ``desired`` (fractions round towards On-Demand)."""
    if mixed_policy(group) is None:
        return 0 if spot_request_reason(group) else desired
    base = int(_distribution(group).get("OnDemandBaseCapacity") or 0)
    if desired <= base:
        return desired
    return base + math.ceil((desired - base) * on_demand_percentage(group) / 100)


def next_market(group: FakeAutoScalingGroup, desired: int) -> str:
    if mixed_policy(group) is None:
        return SPOT if spot_request_reason(group) else ON_DEMAND
    return ON_DEMAND if capacity(group, ON_DEMAND) < on_demand_target(group, desired) else SPOT


def zones_of(group: FakeAutoScalingGroup) -> list[tuple[str, str | None]]:
    """(zone, subnet) pairs in the group's order, one subnet per zone."""
    pairs: list[tuple[str, str | None]] = []
    if group.vpc_zone_identifier:
        ec2: EC2Backend = group.autoscaling_backend.ec2_backend
        for subnet_id in group.vpc_zone_identifier.split(","):
            zone = ec2.get_subnet(subnet_id.strip()).availability_zone
            if zone not in [pair[0] for pair in pairs]:
                pairs.append((zone, subnet_id.strip()))
        return pairs
    return [(zone, None) for zone in dict.fromkeys(group.availability_zones)]


def _override_template(
    group: FakeAutoScalingGroup, override: dict[str, Any]
) -> tuple[LaunchTemplate | None, str | None]:
    spec = override.get("LaunchTemplateSpecification")
    if not spec:
        return group.ec2_launch_template, getattr(group, "launch_template_version", None)
    ec2: EC2Backend = group.autoscaling_backend.ec2_backend
    if spec.get("LaunchTemplateId"):
        template = ec2.get_launch_template(spec["LaunchTemplateId"])
    else:
        template = ec2.get_launch_template_by_name(spec["LaunchTemplateName"])
    return template, spec.get("Version") or "$Default"


def type_options(group: FakeAutoScalingGroup, market: str) -> list[_TypeOption]:
    policy = mixed_policy(group)
    overrides = ((policy or {}).get("LaunchTemplate") or {}).get("Overrides") or []
    options: list[_TypeOption] = []
    for override in overrides:
        if not override.get("InstanceType"):
            continue  # attribute-based selection is not modelled
        template, version = _override_template(group, override)
        options.append(
            _TypeOption(override["InstanceType"], int(override.get("WeightedCapacity") or 1), template, version)
        )
    if not options:
        options.append(
            _TypeOption(
                group.instance_type or "m1.small",
                1,
                group.ec2_launch_template,
                getattr(group, "launch_template_version", None),
            )
        )
    if market == SPOT and policy is not None:
        strategy = _distribution(group).get("SpotAllocationStrategy") or "lowest-price"
        if strategy == "lowest-price":
            # Override order stands in for price order: diversify over the N cheapest pools.
            options = options[: max(1, int(_distribution(group).get("SpotInstancePools") or 2))]
    return options


def is_weighted(group: FakeAutoScalingGroup) -> bool:
    policy = mixed_policy(group) or {}
    overrides = (policy.get("LaunchTemplate") or {}).get("Overrides") or []
    return any(o.get("WeightedCapacity") for o in overrides)


def choose(
    group: FakeAutoScalingGroup,
    market: str,
    failed: set[tuple[str, str]],
    population: list[InstanceState] | None = None,
) -> LaunchSpec | None:
    """Pick the pool for the next instance: the least used zone, then the instance type.

    ``failed`` holds (instance type, zone) pools that already refused this round.
    ``population`` is what zone balance is computed over (the group's counted instances by default).
    """
    members = counted(group) if population is None else population
    options = type_options(group, market)
    zones = [(z, s) for z, s in zones_of(group) if any((o.instance_type, z) not in failed for o in options)]
    if not zones:
        return None
    zone_load = Counter(s.availability_zone for s in members)
    order = [pair[0] for pair in zones]
    zone, subnet = min(zones, key=lambda zs: (zone_load[zs[0]], order.index(zs[0])))
    usable = [o for o in options if (o.instance_type, zone) not in failed]
    strategy = _distribution(group).get("SpotAllocationStrategy") or "lowest-price"
    if market == SPOT and len(usable) > 1 and strategy in _DIVERSIFYING:
        type_load = Counter(s.instance_type for s in members if market_of(s) == SPOT)
        choice = min(usable, key=lambda o: (type_load[o.instance_type], usable.index(o)))
    else:
        choice = usable[0]  # prioritized: the first override that can launch
    return LaunchSpec(
        market=market,
        instance_type=choice.instance_type,
        zone=zone,
        subnet_id=subnet,
        weight=choice.weight,
        weighted=is_weighted(group),
        template=choice.template,
        template_version=choice.template_version,
    )


def launch(group: FakeAutoScalingGroup, spec: LaunchSpec) -> Instance:
    """Run one instance for ``group``; raises :class:`InsufficientCapacityError` for a faulted Spot pool."""
    tags = {t["Key"]: t["Value"] for t in group.tags if t.get("PropagateAtLaunch")}
    tags[ASG_NAME_TAG] = group.name
    tags.update(group.instance_tags)
    kwargs: dict[str, Any] = {
        "instance_type": spec.instance_type,
        "is_instance_type_default": False,
        "tags": {"instance": tags},
        "placement": spec.zone,
        "subnet_id": spec.subnet_id,
        "launch_config": group.launch_config,
        "associate_public_ip": group.launch_config.associate_public_ip_address if group.launch_config else None,
        "lifecycle": SPOT if spec.market == SPOT else None,
    }
    if spec.template is not None:
        kwargs["launch_template"] = {
            "LaunchTemplateId": spec.template.id,
            "Version": spec.template_version or "$Default",
        }
        data = _version_data(spec.template, spec.template_version)
        image_id, user_data, security_groups = (
            data.get("ImageId", ""),
            data.get("UserData"),
            data.get("SecurityGroups", []),
        )
    else:
        image_id, user_data, security_groups = group.image_id, group.user_data, group.security_groups
    ec2: EC2Backend = group.autoscaling_backend.ec2_backend
    reservation = ec2.run_instances(image_id, 1, user_data, security_groups, **kwargs)
    instance: Instance = reservation.instances[0]
    instance.autoscaling_group = group  # type: ignore[attr-defined]
    return instance


def new_state(
    group: FakeAutoScalingGroup, instance: Instance, spec: LaunchSpec | None, lifecycle_state: str
) -> InstanceState:
    state = InstanceState(
        instance,
        lifecycle_state=lifecycle_state,
        protected_from_scale_in=group.new_instances_protected_from_scale_in,
        autoscaling_group=group,
    )
    state.weighted_capacity = str(spec.weight) if spec is not None and spec.weighted else None  # type: ignore[attr-defined]
    return state


# -- EC2 RunInstances --------------------------------------------------------------------------


def _zone_for(backend: InstanceBackend, kwargs: dict[str, Any]) -> str:
    subnet_id = kwargs.get("subnet_id") or next(
        (n.get("SubnetId") for n in kwargs.get("nics") or [] if n.get("SubnetId")), None
    )
    if subnet_id:
        return str(backend.get_subnet(subnet_id).availability_zone)  # type: ignore[attr-defined]
    return str(kwargs.get("placement") or f"{backend.region_name}a")  # type: ignore[attr-defined]


class _FulfilledSpotRequest(SpotInstanceRequest):
    """A Spot request already fulfilled by an instance that was launched elsewhere."""

    preset_instance: Instance

    def launch_instance(self) -> Instance:
        return self.preset_instance


def _record_spot_request(backend: InstanceBackend, instance: Instance, zone: str) -> None:
    request = cast(_FulfilledSpotRequest, _FulfilledSpotRequest.__new__(_FulfilledSpotRequest))
    request.preset_instance = instance
    SpotInstanceRequest.__init__(
        request,
        ec2_backend=backend,
        spot_request_id=random_spot_request_id(),
        price="",
        image_id=instance.image_id,
        spot_instance_type="one-time",
        valid_from=None,
        valid_until=None,
        launch_group=None,
        availability_zone_group=None,
        key_name=instance.key_name or "",
        security_groups=[],
        user_data=None,
        instance_type=instance.instance_type,
        placement=zone,
        kernel_id=None,
        ramdisk_id=None,
        monitoring_enabled=False,
        subnet_id=instance.subnet_id or "",
        tags={},
        spot_fleet_id=None,
        instance_interruption_behaviour="terminate",
    )
    backend.spot_instance_requests[request.id] = request  # type: ignore[attr-defined]
    instance.spot_instance_request_id = request.id  # type: ignore[attr-defined]


class InstanceBackendExtensions(InstanceBackend):
    """Never instantiated: ``run_instances`` is grafted onto moto's ``InstanceBackend``."""

    def run_instances(
        self, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
    ) -> Reservation:
        template: dict[str, Any] = {}
        if kwargs.get("launch_template"):
            template = self._get_template_from_args(kwargs["launch_template"]).data
        market = kwargs.get("instance_market_options")
        spot = kwargs.get("lifecycle") == SPOT or bool(market) or data_requests_spot(template)
        # moto's own Spot requests and fleets keep their request objects and are not faulted.
        own_request = "spot_fleet_id" in kwargs or "fleet_id" in kwargs
        zone = ""
        if spot and not own_request:
            kwargs["lifecycle"] = SPOT
            instance_type = kwargs.get("instance_type") or "m1.small"
            if kwargs.get("is_instance_type_default") and template.get("InstanceType"):
                instance_type = template["InstanceType"]
            zone = _zone_for(self, kwargs)
            if RUNTIME.faults.spot_blocked(instance_type, zone):
                raise InsufficientCapacityError(instance_type, zone)
        reservation: Reservation = original(InstanceBackend, "run_instances")(
            self, image_id, count, user_data, security_group_names, **kwargs
        )
        if spot and not own_request:
            for instance in reservation.instances:
                _record_spot_request(self, instance, instance.placement.zone or zone)
        return reservation


def install() -> None:
    patch(InstanceBackend, "run_instances", InstanceBackendExtensions.run_instances)
