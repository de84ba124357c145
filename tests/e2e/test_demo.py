"""`make demo`: the demo playbook leaves a managed Spot group with warm standby capacity in the world; the storm
(demo/storm.py) is handled by the rulebook and summarised."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
import requests
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


# -- the storm (demo/storm.py, the second half of `make demo`) ------------------------------------
PROGRESS = re.compile(
    r"^storm +\d+\.\d s: cordoned (\d+)/(\d+)  drained (\d+)/\d+  deregistered (\d+)/\d+"
    r"  replaced (\d+)/\d+  acknowledged (\d+)/\d+$",
    re.MULTILINE,
)


@pytest.fixture(name="storm", scope="module")
def storm_fixture():
    """demo/storm.py as a module, so its world is the test's (and can be inspected afterwards)."""
    spec = importlib.util.spec_from_file_location("demo_storm", ROOT / "demo" / "storm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_storm_is_handled_and_summarised(world, aws, collections_path, tmp_path, capsys, storm):
    out = tmp_path / "demo"
    args = storm.parse(
        ["--size", "6", "--group", "storm", "--output-dir", str(out), "--collections", str(collections_path)]
    )
    code = storm.run(world, args)
    printed = capsys.readouterr()
    log = (out / "rulebook.log").read_text(errors="replace")[-4000:] if (out / "rulebook.log").exists() else ""
    assert code == 0, printed.out + printed.err + log

    figures = json.loads((out / "storm.json").read_text())
    ids = sorted(figures["instances"])
    assert len(ids) == 6 and figures["complete"]
    reservations = aws("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    node_of = {i["InstanceId"]: i["PrivateDnsName"] for r in reservations for i in r["Instances"]}
    nodes = world.kubernetes.node_states()
    bound = {p["spec"].get("nodeName") for p in world.kubernetes.list_objects("pods")}
    services = world.consul.services_by_agent()
    for instance_id in ids:
        node = node_of[instance_id]
        assert nodes[node]["unschedulable"], node
        assert nodes[node]["pods"] == 0 and node not in bound, node
        assert services[node] == [], (node, services[node])
        reply = requests.get(f"{world.consul.url}/v1/catalog/node/{node}", timeout=5)
        assert not ((reply.json() or {}).get("Services") or {}), reply.text

    autoscaling, sqs = aws("autoscaling"), aws("sqs")
    groups = {
        g["AutoScalingGroupName"]: g
        for g in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["storm", "storm-standby"])[
            "AutoScalingGroups"
        ]
    }
    members = {i["InstanceId"] for i in groups["storm"]["Instances"]}
    assert members.isdisjoint(ids), "every interrupted instance left the group"
    assert groups["storm"]["DesiredCapacity"] == 6 and len(members) == 6, "the group launched replacements"
    assert groups["storm-standby"]["DesiredCapacity"] == 6, "the standby group was scaled out"
    url = sqs.get_queue_url(QueueName="storm-interruptions")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    # Progress lines while it ran, the last one with every step done for all six.
    progress = PROGRESS.findall(printed.out)
    assert progress, printed.out
    assert progress[-1] == ("6", "6", "6", "6", "6", "6"), progress
    # One summary row per instance, with what the world shows.
    for instance_id in ids:
        row = next(line for line in printed.out.splitlines() if line.startswith(instance_id))
        assert node_of[instance_id] in row and "5/5" in row and "2/2" in row and "detached" in row, row
        assert row.split()[2] == "yes", row
    assert "launched 6 instances in place of the detached ones" in printed.out
    assert "queue: 0 of 6 messages left" in printed.out
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out / "timeline.png") in printed.out


def test_demo_storm_fails_clearly_when_not_handled_in_time(world, collections_path, tmp_path, capsys, storm):
    out = tmp_path / "demo"
    args = storm.parse(
        [
            "--size",
            "2",
            "--group",
            "late",
            "--timeout",
            "1",
            "--output-dir",
            str(out),
            "--collections",
            str(collections_path),
        ]
    )
    assert storm.run(world, args) == 1
    printed = capsys.readouterr()
    assert "FAILED: the storm was not handled (within 1 s)" in printed.err, printed.err
    assert f"rulebook log: {out / 'rulebook.log'}" in printed.err
    assert (out / "rulebook.log").is_file()
    # What was done so far is still summarised, per instance.
    assert "per instance (times: seconds after the storm)" in printed.out
    assert not json.loads((out / "storm.json").read_text())["complete"]


def test_demo_storm_refuses_bad_options_before_starting(tmp_path, capsys, storm):
    assert storm.main(["--size", "0", "--collections", str(tmp_path), "--output-dir", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert "--size: 0 is not allowed; use 1 or more" in err
    assert f"--collections: no spotmax.maxgroup under {tmp_path}; run `make install` first" in err
    assert not (tmp_path / "demo").exists()
