"""The demo playbook leaves a managed Spot group with warm standby capacity in the world."""

from __future__ import annotations

import re

from conftest import ROOT, run_playbook


def tags_of(group):
    return {tag["Key"]: tag["Value"] for tag in group["Tags"]}


def test_demo_sets_up_spot_group_and_warm_standby(world, aws, collections_path):
    result = run_playbook(world, collections_path, ROOT / "demo" / "demo.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ready to replace interrupted Spot capacity" in result.stdout

    autoscaling, ec2 = aws("autoscaling"), aws("ec2")
    groups = {g["AutoScalingGroupName"]: g for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]}
    spot = groups["web-spot"]
    assert tags_of(spot)["spotmax:group"] == "web-spot"
    assert tags_of(spot)["spotmax:gurantee_living_mins"] == "50"
    assert len(spot["Instances"]) == 3
    ids = [i["InstanceId"] for i in spot["Instances"]]
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert {i.get("InstanceLifecycle") for i in instances} == {"spot"}
    assert {i["InstanceType"] for i in instances} <= {"m5.large", "m5a.large", "m4.large"}
    # Tags propagated at launch mark the instances as managed.
    assert all({"Key": "spotmax:group", "Value": "web-spot"} in i["Tags"] for i in instances)

    assert "WarmPoolConfiguration" not in autoscaling.describe_warm_pool(AutoScalingGroupName="web-spot")
    pool = autoscaling.describe_warm_pool(AutoScalingGroupName="web-spot-standby")
    assert pool["WarmPoolConfiguration"]["MinSize"] == 2
    assert [i["LifecycleState"] for i in pool["Instances"]] == ["Warmed:Stopped", "Warmed:Stopped"]


def test_demo_is_idempotent(world, collections_path):
    assert run_playbook(world, collections_path, ROOT / "demo" / "demo.yml").returncode == 0
    second = run_playbook(world, collections_path, ROOT / "demo" / "demo.yml")
    assert second.returncode == 0, second.stdout + second.stderr
    recap = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)", second.stdout)
    assert recap, second.stdout
    assert recap.group(1) == "0", second.stdout
