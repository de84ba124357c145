"""DescribeInstances filters moto lacks."""

from __future__ import annotations

from moto.ec2 import utils as ec2_utils


def install() -> None:
    # On-Demand instances have no InstanceLifecycle, so they never match (as in AWS).
    ec2_utils.filter_dict_attribute_mapping.setdefault("instance-lifecycle", "lifecycle")
