"""Timing of one enforce_duration run over many groups whose instances are all due (a measurement, not a test).

    PYTHONPATH=tests/world .venv/bin/python tests/bench/renewal.py --groups 20 --instances 5

Builds a fresh world in-process, creates ``groups`` Spot groups of ``instances`` instances with duration tags
(``spotmax:max_num_of_terminated_one_time`` = instances, so one round renews a whole group), advances the
virtual clock past the guarantee, runs ``ansible-playbook spotmax.maxgroup.enforce_duration`` once and reports
its wall time, the instances renewed, the fewest in-service instances seen in any group during the run (read
every 0.5 s; it must stay at the group's size) and the AWS calls by action. Prints one JSON document;
docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from spotmax_world.pipeline import install_collection
from spotmax_world.world import World

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
AMI = "ami-12c6146b"


def create_groups(world: World, groups: int, instances: int) -> list[str]:
    ec2, autoscaling = world.aws.client("ec2"), world.aws.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="renewal-bench", LaunchTemplateData={"ImageId": AMI})
    names = [f"renew-{number:03d}" for number in range(groups)]
    tags = {
        "spotmax:instance_duration_hours": "1",
        "spotmax:gurantee_living_mins": "50",
        "spotmax:max_num_of_terminated_one_time": str(instances),
    }
    for name in names:
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=0,
            MaxSize=instances * 2,
            DesiredCapacity=instances,
            AvailabilityZones=["us-east-1a", "us-east-1b"],
            LaunchTemplate={"LaunchTemplateName": "renewal-bench", "Version": "$Latest"},
            Tags=[
                {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v}
                for k, v in {"spotmax:group": name, **tags}.items()
            ],
        )
    return names


def in_service(world: World) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for page in world.aws.client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate():
        for group in page["AutoScalingGroups"]:
            found[group["AutoScalingGroupName"]] = {
                m["InstanceId"] for m in group["Instances"] if m["LifecycleState"] == "InService"
            }
    return found


def measure(groups: int, instances: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch, World(pathlib.Path(scratch) / "world") as world:
        collections = install_collection(ROOT, scratch)
        names = create_groups(world, groups, instances)
        before = in_service(world)
        world.aws.advance_clock(51 * 60)
        world.aws.clear_requests()
        fewest = {"value": instances}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                counts = [len(ids) for name, ids in in_service(world).items() if name in names]
                fewest["value"] = min([fewest["value"], *counts])
                stop.wait(0.5)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        env = {**os.environ, **world.environment(), "ANSIBLE_COLLECTIONS_PATH": str(collections)}
        started = time.monotonic()
        run = subprocess.run(
            [str(BIN / "ansible-playbook"), "spotmax.maxgroup.enforce_duration"],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        seconds = time.monotonic() - started
        stop.set()
        watcher.join(timeout=10)
        if run.returncode != 0:
            raise SystemExit(run.stdout[-4000:] + run.stderr[-2000:])
        after = in_service(world)
        renewed = sum(len(before[name] - after[name]) for name in names)
        calls = world.aws.requests()
        return {
            "groups": groups,
            "instances_per_group": instances,
            "renewed": renewed,
            "seconds": round(seconds, 1),
            "fewest_in_service_per_group": fewest["value"],
            "aws_calls": sum(calls.values()),
            "aws_calls_by_action": dict(sorted(calls.items())),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--instances", type=int, default=5)
    options = parser.parse_args()
    print(json.dumps(measure(options.groups, options.instances), indent=2))


if __name__ == "__main__":
    main()
