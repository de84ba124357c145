"""Spot interruption notices and rebalance recommendations, as EC2 sends them to EventBridge."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import Instance, StateReason

from . import capacity, events
from .runtime import RUNTIME, PendingInterruption
from .state import SPOT


def _instance(account_id: str, region: str, instance_id: str) -> Instance | None:
    try:
        instance: Instance = ec2_backends[account_id][region].get_instance(instance_id)
    except InvalidInstanceIdError:
        return None
    return instance


def _resource(instance: Instance) -> str:
    # EC2 names the zone, not the region, in these events' resource ARNs.
    return f"arn:aws:ec2:{instance.placement.zone}:instance/{instance.id}"


def _running_spot(account_id: str, region: str, instance_ids: list[str]) -> tuple[list[Any], list[str]]:
    """The running Spot instances among ``instance_ids``, and the ids that are not (skipped)."""
    running, skipped = [], []
    # One index, not moto's get_instance (a copy of every reservation per look-up) per id.
    reservations = ec2_backends[account_id][region].reservations.values()
    known = {instance.id: instance for reservation in reservations for instance in reservation.instances}
    for instance_id in instance_ids:
        instance = known.get(instance_id)
        if instance is None or instance.lifecycle != SPOT or instance.state != "running":
            skipped.append(instance_id)
        else:
            running.append(instance)
    return running, skipped


def interrupt(account_id: str, region: str, instance_ids: list[str], notice_seconds: float) -> dict[str, Any]:
    """Warn each running Spot instance and schedule its termination ``notice_seconds`` later."""
    warned = []
    due = RUNTIME.clock.now() + timedelta(seconds=notice_seconds)
    instances, skipped = _running_spot(account_id, region, instance_ids)
    for instance in instances:
        events.publish(
            account_id,
            region,
            "aws.ec2",
            "EC2 Spot Instance Interruption Warning",
            [_resource(instance)],
            {"instance-id": instance.id, "instance-action": "terminate"},
        )
        RUNTIME.interruptions.append(PendingInterruption(account_id, region, instance.id, due))
        warned.append(instance.id)
    return {"interrupted": warned, "skipped": skipped, "terminate_at": due.isoformat() + "Z"}


def rebalance(account_id: str, region: str, instance_ids: list[str]) -> dict[str, Any]:
    sent = []
    instances, skipped = _running_spot(account_id, region, instance_ids)
    for instance in instances:
        events.publish(
            account_id,
            region,
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
            [_resource(instance)],
            {"instance-id": instance.id},
        )
        sent.append(instance.id)
    return {"recommended": sent, "skipped": skipped}


def process_due(now: datetime) -> None:
    """Terminate the instances whose notice has run out; their groups then replace them."""
    due = [p for p in RUNTIME.interruptions if p.due <= now]
    RUNTIME.interruptions[:] = [p for p in RUNTIME.interruptions if p.due > now]
    for pending in due:
        instance = _instance(pending.account_id, pending.region, pending.instance_id)
        if instance is None or instance.state == "terminated":
            continue
        ec2_backends[pending.account_id][pending.region].terminate_instances([instance.id])
        instance.state_reason = StateReason(
            "Server.SpotInstanceTermination: Spot instance termination", "Server.SpotInstanceTermination"
        )
        instance._reason = "Service initiated"  # pylint: disable=protected-access
        capacity.handle_ec2_terminated(autoscaling_backends[pending.account_id][pending.region], [instance.id])
