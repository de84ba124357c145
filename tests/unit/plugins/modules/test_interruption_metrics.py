# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""interruption_metrics against moto's in-process AWS: the metrics CloudWatch holds after the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import interruption_metrics

PLAN = {
    "instances": [{"instance_id": "i-0000000000000000a", "group": "web-spot"}],
    "groups": {"web-spot": {"spot_interruption": 1}},
}
DRAIN = [
    {
        "nodes": [
            {
                "name": "node-a",
                "instance_id": "i-0000000000000000a",
                "evicted": [],
                "not_evicted": [{"pod": "db-0", "reason": "PodDisruptionBudget"}],
                "seconds": 42.0,
            }
        ]
    }
]


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(interruption_metrics, args, **kwargs)


@pytest.fixture(name="cloudwatch")
def cloudwatch_fixture(aws):
    return boto3.client("cloudwatch", region_name="us-east-1")


def statistic(cloudwatch, name, statistic_name, **dimensions):
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="SpotMax",
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
        Period=3600,
        Statistics=[statistic_name],
    )["Datapoints"]
    return sum(point[statistic_name] for point in points)


def test_publishes_per_group(aws, run, cloudwatch):
    # Size 0: nothing is launched, the template's image is never looked up.
    aws["ec2"].create_launch_template(LaunchTemplateName="standby", LaunchTemplateData={"ImageId": "ami-12c6146b"})
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName="web-spot-standby",
        LaunchTemplate={"LaunchTemplateName": "standby"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=0,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "spotmax:standby_for", "Value": "web-spot"}],
    )
    replacement = {
        "detached": {"web-spot": ["i-0000000000000000a"]},
        "standby": {"web-spot-standby": {"from": 0, "to": 1, "capped": False}},
        "skipped": [],
    }
    deregistrations = [{"instance_id": "i-0000000000000000a", "services": ["web"], "changed": True, "error": None}]
    result = run({"plan": PLAN, "drain": DRAIN, "replacement": replacement, "deregistrations": deregistrations})
    assert result["changed"] is True
    assert result["metrics"]["calls"] == 1
    group = {"AutoScalingGroupName": "web-spot"}
    dimension_sets = {
        tuple((d["Name"], d["Value"]) for d in metric["Dimensions"])
        for metric in cloudwatch.list_metrics(Namespace="SpotMax", MetricName="Interruptions")["Metrics"]
    }
    assert dimension_sets == {
        (("AutoScalingGroupName", "web-spot"),),
        (("AutoScalingGroupName", "web-spot"), ("Kind", "spot_interruption")),
    }
    assert statistic(cloudwatch, "Interruptions", "Sum", **group, Kind="spot_interruption") == 1
    assert statistic(cloudwatch, "Replacements", "Sum", **group) == 1
    assert statistic(cloudwatch, "WarmPoolHits", "Sum", **group) == 1
    assert statistic(cloudwatch, "DrainSeconds", "Maximum", **group) == 42.0
    assert statistic(cloudwatch, "DrainTimeouts", "Sum", **group) == 1
    assert statistic(cloudwatch, "Deregistrations", "Sum", **group) == 1


def test_check_mode_sends_nothing(run, cloudwatch):
    result = run({"plan": PLAN}, check_mode=True)
    assert result["changed"] is True
    assert [d["metric_name"] for d in result["metrics"]["datums"]] == ["Interruptions", "Interruptions"]
    assert cloudwatch.list_metrics(Namespace="SpotMax")["Metrics"] == []


def test_nothing_to_send_is_no_change(run, cloudwatch):
    result = run({"plan": {"instances": [], "groups": {}}})
    assert result["changed"] is False
    assert result["metrics"]["calls"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"namespace": "AWS/EC2"}, "namespace: 'AWS/EC2' is not allowed"),
        ({"plan": {"groups": []}}, "plan.groups: [] is not allowed"),
        ({"drain": [{"nodes": 5}]}, "drain[0].nodes: 5 is not allowed"),
    ],
)
def test_bad_input_fails_before_any_call(run, args, message):
    result = run(args)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
