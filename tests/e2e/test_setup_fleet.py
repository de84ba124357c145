"""setup_fleet: 50 Spot groups, standby groups, queue and EKS access in one run; a re-run writes nothing."""

from __future__ import annotations

import re
import time

import pytest
import yaml
from conftest import aws_calls, aws_writes, run_playbook

GROUPS = 50
CONTROLLER_ROLE = "arn:aws:iam::123456789012:role/setup-fleet-controller"


def fleet_vars(image_id: str, cache_dir: str) -> dict:
    """The seed's two node group shapes, 25 groups each, two of them with a standby group."""
    selectors = {
        "4vcpus-16gb": {"base_instance_type": "m5.xlarge"},
        "2vcpus-8gb": {"base_instance_type": "m5.large"},
    }
    groups = []
    for number in range(GROUPS):
        shape = "4vcpus-16gb" if number % 2 == 0 else "2vcpus-8gb"
        groups.append(
            {
                "name": f"setup-{number:02d}-{shape}",
                "instance_selector": {
                    **selectors[shape],
                    "usage_class": "spot",
                    "burst_support": False,
                    "gpus_max": 0,
                    "deny_list": "^?[1-3].*\\..*",
                    "cache_dir": cache_dir,
                },
                "availability_zones": ["us-east-1a", "us-east-1b"],
                "min_size": 0,
                "max_size": 5,
                "launch_template": {"image_id": image_id, "user_data": "#!/bin/bash\necho node\n"},
            }
        )
    return {
        "interruption_queue_name": "setup-fleet-interruptions",
        "fleet_groups": groups,
        "fleet_cluster_name": "spotmax-world",
        "fleet_spotmax_tags": {"eks_cluster_name": "spotmax-world", "consul_port": 8500},
        "fleet_duration": {"instance_duration_hours": 2, "guarantee_living_mins": 100},
        "standby_pool_groups": [{"for": groups[0]["name"]}, {"for": groups[1]["name"], "warm_pool": {"min_size": 2}}],
        "eks_access_role_arn": CONTROLLER_ROLE,
        "eks_access_cluster_name": "spotmax-world",
    }


@pytest.mark.timeout(1500)  # two playbook runs of up to 900 s each are bounded by run_playbook's own timeout
def test_setup_fleet_configures_50_groups_and_a_second_run_writes_nothing(world, aws, collections_path, tmp_path):
    image_id = aws("ec2").describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    variables = tmp_path / "fleet.yml"
    # The catalog cache (shared by the four selections) stays in the test's directory.
    variables.write_text(yaml.safe_dump(fleet_vars(image_id, str(tmp_path / "cache"))))
    started = time.monotonic()
    first = run_playbook(world, collections_path, "spotmax.maxgroup.setup_fleet", "-e", f"@{variables}", timeout=900)
    first_seconds = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]

    autoscaling = aws("autoscaling")
    groups = {
        group["AutoScalingGroupName"]: group
        for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate()
        for group in page["AutoScalingGroups"]
    }
    spot = {name: group for name, group in groups.items() if not name.endswith("-standby")}
    assert len(spot) == GROUPS
    for name, group in spot.items():
        tags = {tag["Key"]: tag["Value"] for tag in group["Tags"]}
        policy = group["MixedInstancesPolicy"]
        types = [override["InstanceType"] for override in policy["LaunchTemplate"]["Overrides"]]
        assert ("m5.xlarge" if "4vcpus" in name else "m5.large") in types, name
        assert policy["InstancesDistribution"]["SpotAllocationStrategy"] == "price-capacity-optimized"
        assert tags["spotmax:group"] == name
        assert tags["spotmax:instance_duration_hours"] == "2"
        assert tags["k8s.io/cluster-autoscaler/spotmax-world"] == "owned"
    hooks = autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="setup-49-2vcpus-8gb")["LifecycleHooks"]
    assert [hook["LifecycleTransition"] for hook in hooks] == ["autoscaling:EC2_INSTANCE_TERMINATING"]

    standby = {name: group for name, group in groups.items() if name.endswith("-standby")}
    assert sorted(standby) == ["setup-00-4vcpus-16gb-standby", "setup-01-2vcpus-8gb-standby"]
    for name, group in standby.items():
        tags = {tag["Key"]: tag["Value"] for tag in group["Tags"]}
        assert tags["spotmax:standby_for"] == name.removesuffix("-standby")
        assert group["MixedInstancesPolicy"]["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
        pool = autoscaling.describe_warm_pool(AutoScalingGroupName=name)["WarmPoolConfiguration"]
        assert pool["PoolState"] == "Hibernated"

    queue_url = aws("sqs").get_queue_url(QueueName="setup-fleet-interruptions")["QueueUrl"]
    assert queue_url
    rules = aws("events").list_rules(NamePrefix="setup-fleet-interruptions")["Rules"]
    assert len(rules) == 5
    aws_auth = world.kubernetes.get_object("configmaps", "aws-auth", "kube-system")
    assert CONTROLLER_ROLE in aws_auth["data"]["mapRoles"]

    aws_calls(world, "DELETE")
    started = time.monotonic()
    second = run_playbook(world, collections_path, "spotmax.maxgroup.setup_fleet", "-e", f"@{variables}", timeout=900)
    second_seconds = time.monotonic() - started
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    assert aws_calls(world).get("autoscaling:DescribeAutoScalingGroups", 0) > 0
    writes = aws_writes(world)
    changed = re.findall(r"^changed: .*$|^TASK \[.*$", second.stdout, re.MULTILINE)
    assert writes == {}, f"{writes}\n" + "\n".join(changed)[-4000:]
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0\s", second.stdout), second.stdout[-3000:]
    print(f"setup_fleet {GROUPS} groups: first run {first_seconds:.1f} s, second run {second_seconds:.1f} s")
