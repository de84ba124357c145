"""Scaling activities as DescribeScalingActivities reports them, stamped with the virtual clock."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup

from . import events
from .clock import iso_seconds
from .runtime import RUNTIME
from .state import backend_ext

SUCCESSFUL = "Successful"
FAILED = "Failed"
IN_PROGRESS = "InProgress"
MID_LIFECYCLE = "MidLifecycleAction"
CANCELLED = "Cancelled"


class ScalingActivity:
    """One ``Activity``; attribute names follow the botocore shape (moto serialises them)."""

    def __init__(
        self,
        group: FakeAutoScalingGroup,
        description: str,
        cause: str,
        status_code: str = IN_PROGRESS,
        details: dict[str, str] | None = None,
    ) -> None:
        self.activity_id = str(uuid.uuid4())
        self.auto_scaling_group_name = group.name
        self.auto_scaling_group_arn = group.arn
        self.description = description
        self.cause = cause
        self.start_time: datetime = RUNTIME.clock.now()
        self.end_time: datetime | None = None
        self.status_code = status_code
        self.status_message: str | None = None
        self.progress = 0
        self.details = json.dumps(details or {})
        if status_code in (SUCCESSFUL, FAILED, CANCELLED):
            self.finish(status_code)

    def finish(self, status_code: str = SUCCESSFUL, message: str | None = None) -> None:
        self.status_code = status_code
        self.status_message = message
        self.end_time = RUNTIME.clock.now()
        self.progress = 100

    def as_started(self) -> ScalingActivity:
        """A copy as the API returns it at the moment the activity began."""
        started = ScalingActivity.__new__(ScalingActivity)
        started.__dict__.update(self.__dict__)
        started.status_code, started.status_message, started.end_time, started.progress = IN_PROGRESS, None, None, 0
        return started


def now_text() -> str:
    return iso_seconds(RUNTIME.clock.now())


def record(
    group: FakeAutoScalingGroup,
    description: str,
    cause: str,
    status_code: str = IN_PROGRESS,
    details: dict[str, str] | None = None,
) -> ScalingActivity:
    activity = ScalingActivity(group, description, cause, status_code, details)
    backend_ext(group.autoscaling_backend).activities.append(activity)
    return activity


def describe(
    backend: AutoScalingBackend,
    group_name: str | None,
    activity_ids: list[str],
    max_records: int,
    next_token: str | None,
) -> dict[str, Any]:
    """Newest first, paginated with an opaque token (the index of the next record)."""
    found = [
        a
        for a in reversed(backend_ext(backend).activities)
        if (not group_name or a.auto_scaling_group_name == group_name)
        and (not activity_ids or a.activity_id in activity_ids)
    ]
    start = int(next_token) if next_token and next_token.isdigit() else 0
    page = found[start : start + max_records]
    result: dict[str, Any] = {"Activities": page}
    if start + max_records < len(found):
        result["NextToken"] = str(start + max_records)
    return result


def forget_group(backend: AutoScalingBackend, group_name: str) -> None:
    ext = backend_ext(backend)
    ext.activities = [a for a in ext.activities if a.auto_scaling_group_name != group_name]


LAUNCH_SUCCESSFUL = "EC2 Instance Launch Successful"
LAUNCH_UNSUCCESSFUL = "EC2 Instance Launch Unsuccessful"
TERMINATE_SUCCESSFUL = "EC2 Instance Terminate Successful"


def announce(group: FakeAutoScalingGroup, activity: ScalingActivity, detail_type: str, instance_id: str = "") -> None:
    """The EventBridge event Auto Scaling sends when an activity ends."""
    launching = detail_type != TERMINATE_SUCCESSFUL
    detail = {
        "Origin": "EC2" if launching else "AutoScalingGroup",
        "Destination": "AutoScalingGroup" if launching else "EC2",
        "StatusCode": "Failed" if detail_type == LAUNCH_UNSUCCESSFUL else "InProgress",
        "Description": activity.description,
        "AutoScalingGroupName": group.name,
        "ActivityId": activity.activity_id,
        "Details": json.loads(activity.details),
        "RequestId": activity.activity_id,
        "StatusMessage": activity.status_message or "",
        "EndTime": iso_seconds(activity.end_time or RUNTIME.clock.now()),
        "EC2InstanceId": instance_id,
        "StartTime": iso_seconds(activity.start_time),
        "Cause": activity.cause,
    }
    resources = [group.arn]
    if instance_id:
        resources.append(f"arn:aws:ec2:{group.region}:{group.account_id}:instance/{instance_id}")
    events.publish(group.account_id, group.region, "aws.autoscaling", detail_type, resources, detail)
