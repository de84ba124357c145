# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared fixtures: an in-process moto account and a way to run a module's main() as Ansible would."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args
from moto import mock_aws

# The world's moto extension for CapacityRebalance, loaded alone: the rest of the world (test support outside
# the collection's plugins) needs packages the unit test environment does not have.
WORLD_CAPACITY_REBALANCE = (
    pathlib.Path(__file__).resolve().parents[3] / "world" / "spotmax_world" / "moto_ext" / "capacity_rebalance.py"
)

REGION = "us-east-1"
CONNECTION = {"region": REGION, "access_key": "testing", "secret_key": "testing"}


@pytest.fixture(name="aws")
def aws_fixture(monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with mock_aws():
        yield {
            "autoscaling": boto3.client("autoscaling", region_name=REGION),
            "ec2": boto3.client("ec2", region_name=REGION),
        }


@pytest.fixture(name="capacity_rebalance_aws")
def capacity_rebalance_aws_fixture(aws):
    """``aws`` whose UpdateAutoScalingGroup stores CapacityRebalance, as AWS does (moto alone drops it)."""
    spec = importlib.util.spec_from_file_location("spotmax_world_capacity_rebalance", WORLD_CAPACITY_REBALANCE)
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    extension.install()
    return aws


@pytest.fixture(name="run_module")
def run_module_fixture(capsys):
    """``run_module(module, args, check_mode=False, diff=False)`` returns the module's JSON result."""

    def run(module, args, check_mode=False, diff=False):
        module_args = {**CONNECTION, **args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(module_args), pytest.raises(SystemExit):
            module.main()
        return json.loads(capsys.readouterr().out)

    return run


@pytest.fixture(name="make_group")
def make_group_fixture(aws):
    """``make_group(name, template_data, **create_args)``: a group (min 0, max 4, desired 0) with its own template."""

    def make(name="web-standby", template_data=None, **extra):
        create_group(aws, name, template_data, **extra)

    return make


def create_group(aws, name, template_data, **extra):
    image = aws["ec2"].describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    data = {"ImageId": image, "InstanceType": "m5.large", **(template_data or {})}
    aws["ec2"].create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    spec = {"LaunchTemplateName": name, "Version": "$Latest"}
    group_args = {"LaunchTemplate": spec} if "MixedInstancesPolicy" not in extra else {}
    sizes = {"MinSize": 0, "MaxSize": 4, "DesiredCapacity": 0}
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=name, AvailabilityZones=[f"{REGION}a"], **{**sizes, **group_args, **extra}
    )
