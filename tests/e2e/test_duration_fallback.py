"""enforce_duration, od_fallback and revert_to_spot against the world, with its virtual clock and Spot faults.

A watcher thread reads the group every 0.2 s while a playbook runs: the renewals are launch-first,
so the group's in-service count never drops below its desired capacity.
"""

from __future__ import annotations

import json
import pathlib
import re
import threading

import pytest
from conftest import aws_calls, run_playbook
from conftest import aws_writes as all_writes

from spotmax_world.fleet import seed_fleet

RENEWAL_TAINT = "spotmax.io/renewal"
AMI = "ami-12c6146b"


def aws_writes(world):
    """Write calls that change the fleet: od_fallback's capacity metrics are observations."""
    return {call: n for call, n in all_writes(world).items() if call != "monitoring:PutMetricData"}


class Watcher:
    """The fewest InService instances a group had while a playbook ran (polled, bounded by the run)."""

    def __init__(self, autoscaling, name):
        self.autoscaling, self.name = autoscaling, name
        self.fewest = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            group = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])
            members = group["AutoScalingGroups"][0]["Instances"]
            serving = sum(1 for member in members if member["LifecycleState"] == "InService")
            self.fewest = serving if self.fewest is None else min(self.fewest, serving)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)


def group(autoscaling, name):
    return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def serving(autoscaling, name):
    return sorted(m["InstanceId"] for m in group(autoscaling, name)["Instances"] if m["LifecycleState"] == "InService")


def lifecycles(ec2, ids):
    reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i.get("InstanceLifecycle", "on-demand") for r in reservations for i in r["Instances"]}


def recap_changed(output):
    found = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", output)
    assert found, output[-3000:]
    return int(found.group(1))


def play(world, collections_path, playbook, *args):
    """Run a collection playbook by its short name, or a playbook file given as a path."""
    name = playbook if isinstance(playbook, pathlib.Path) else f"spotmax.maxgroup.{playbook}"
    result = run_playbook(world, collections_path, name, *args, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return result.stdout


def test_instances_past_their_guarantee_are_renewed_launch_first(world, aws, collections_path):
    tags = {
        "spotmax:instance_duration_hours": "1",
        "spotmax:gurantee_living_mins": "50",
        "spotmax:max_num_of_terminated_one_time": "2",
    }
    fleet = seed_fleet(world, 4, name="renew", pods_per_node=2, extra_tags=tags)
    autoscaling = aws("autoscaling")
    autoscaling.put_lifecycle_hook(
        LifecycleHookName="log-shipping",
        AutoScalingGroupName="renew",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=3600,
    )
    original = serving(autoscaling, "renew")
    extra = ["-e", json.dumps({"renewal_consul_agent_addresses": fleet.consul_agent_addresses})]

    assert recap_changed(play(world, collections_path, "enforce_duration", *extra)) == 0, "nothing is due yet"
    world.aws.advance_clock(51 * 60)
    aws_calls(world, "DELETE")
    checked = play(world, collections_path, "enforce_duration", "--check", *extra)
    assert recap_changed(checked) == 1
    assert aws_writes(world) == {}
    assert serving(autoscaling, "renew") == original

    with Watcher(autoscaling, "renew") as watcher:
        play(world, collections_path, "enforce_duration", *extra)
    assert watcher.fewest >= 4, f"in service dropped to {watcher.fewest}"
    renewed = original[:2]  # same launch time: the lowest ids go first
    after = group(autoscaling, "renew")
    assert after["DesiredCapacity"] == 4
    now_serving = serving(autoscaling, "renew")
    assert len(now_serving) == 4 and set(original[2:]) <= set(now_serving)
    assert not set(renewed) & set(now_serving)
    states = {m["InstanceId"]: m["LifecycleState"] for m in after["Instances"]}
    assert {states[i] for i in renewed} == {"Terminating:Wait"}, "retired through the group: its hook runs"
    nodes = world.kubernetes.node_states()
    services = world.consul.services_by_agent()
    for instance in fleet.instances:
        if instance.instance_id in renewed:
            assert nodes[instance.node_name]["unschedulable"] and RENEWAL_TAINT in nodes[instance.node_name]["taints"]
            assert services[instance.node_name] == []
        else:
            assert not nodes[instance.node_name]["unschedulable"]
            assert services[instance.node_name] != []

    with Watcher(autoscaling, "renew") as watcher:
        play(world, collections_path, "enforce_duration", *extra)
    assert watcher.fewest >= 4
    assert not set(original) & set(serving(autoscaling, "renew")), "the second round renews the other two"
    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "enforce_duration", *extra)) == 0
    assert aws_writes(world) == {}


def attached(ec2, volume_id):
    """(instance, device) pairs the volume is attached to; raises when the volume is gone."""
    found = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    return [(a["InstanceId"], a["Device"]) for a in found["Attachments"] if a["State"] == "attached"]


def test_a_renewed_instance_hands_its_kept_data_volume_to_its_replacement(world, aws, collections_path):
    tags = {
        "spotmax:instance_duration_hours": "1",
        "spotmax:gurantee_living_mins": "50",
        "spotmax:max_num_of_terminated_one_time": "1",
    }
    # EBS volumes live in one zone: a group keeping data volumes runs in one zone.
    fleet = seed_fleet(
        world, 2, name="keep", pods_per_node=1, extra_tags=tags, persistence_dev="/dev/sdf", zones=("us-east-1b",)
    )
    autoscaling, ec2 = aws("autoscaling"), aws("ec2")
    original = serving(autoscaling, "keep")
    extra = ["-e", json.dumps({"renewal_consul_agent_addresses": fleet.consul_agent_addresses})]
    world.aws.advance_clock(51 * 60)

    with Watcher(autoscaling, "keep") as watcher:
        play(world, collections_path, "enforce_duration", *extra)
    assert watcher.fewest >= 2
    renewed, kept = original[0], original[1]
    now_serving = serving(autoscaling, "keep")
    assert renewed not in now_serving and kept in now_serving and len(now_serving) == 2
    [replacement] = set(now_serving) - set(original)
    volume = fleet.data_volumes[renewed]
    assert attached(ec2, volume) == [(replacement, "/dev/sdf")], "the renewed instance's data moved to its replacement"
    assert attached(ec2, fleet.data_volumes[kept]) == [(kept, "/dev/sdf")], "the other instance keeps its own"

    # The renewed instance finishes terminating (its group has no hook): the moved volume is not deleted with it.
    world.aws.advance_clock(60)
    assert attached(ec2, volume) == [(replacement, "/dev/sdf")]


LAUNCH_ONLY = """\
- name: Start a renewal round and stop there
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Launch the replacements first
      spotmax.maxgroup.asg_renew_instances:
        names: [mid]
        step: launch
        wait_timeout: 120
"""


def test_an_interruption_in_the_middle_of_a_round_leaves_the_group_at_its_capacity(
    world, aws, collections_path, tmp_path
):
    tags = {
        "spotmax:instance_duration_hours": "1",
        "spotmax:gurantee_living_mins": "50",
        "spotmax:max_num_of_terminated_one_time": "2",
    }
    fleet = seed_fleet(world, 4, name="mid", pods_per_node=1, extra_tags=tags)
    autoscaling, ec2 = aws("autoscaling"), aws("ec2")
    world.aws.advance_clock(51 * 60)
    launch_only = tmp_path / "launch_only.yml"
    launch_only.write_text(LAUNCH_ONLY)
    play(world, collections_path, launch_only)
    marked = sorted(
        t["ResourceId"]
        for t in ec2.describe_tags(Filters=[{"Name": "key", "Values": ["spotmax:renewing"]}])["Tags"]
        if t["ResourceId"] in fleet.instance_ids
    )
    assert len(marked) == 2 and group(autoscaling, "mid")["DesiredCapacity"] == 6

    # A Spot warning hits one of the instances being renewed: its replacement is already in service.
    play(world, collections_path, "replace", "-e", json.dumps({"interruption_instance_ids": [marked[0]]}))
    assert group(autoscaling, "mid")["DesiredCapacity"] == 5, "detached with a decrement"

    extra = ["-e", json.dumps({"renewal_consul_agent_addresses": fleet.consul_agent_addresses})]
    play(world, collections_path, "enforce_duration", *extra)
    after = group(autoscaling, "mid")
    assert after["DesiredCapacity"] == 4, "the round ends at the capacity the group had before it"
    now_serving = serving(autoscaling, "mid")
    assert len(now_serving) == 4 and not set(marked) & set(now_serving)


def spot_group(aws, name, desired):
    aws("ec2").create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": AMI})
    tags = {"spotmax:group": name, "spotmax:od_least_live_mins": "15", "spotmax:max_num_of_terminated_one_time": "3"}
    aws("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        MinSize=0,
        MaxSize=desired * 2,
        DesiredCapacity=desired,
        AvailabilityZones=["us-east-1a", "us-east-1b"],
        MixedInstancesPolicy={
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateName": name, "Version": "$Latest"},
                "Overrides": [{"InstanceType": "m5.large"}, {"InstanceType": "m5a.large"}],
            },
            "InstancesDistribution": {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0},
        },
        Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": k, "Value": v, "PropagateAtLaunch": False}
            for k, v in tags.items()
        ],
    )


def on_demand_share(autoscaling, name):
    return group(autoscaling, name)["MixedInstancesPolicy"]["InstancesDistribution"][
        "OnDemandPercentageAboveBaseCapacity"
    ]


def fallback_tags(autoscaling, name):
    tags = group(autoscaling, name)["Tags"]
    return {t["Key"]: t["Value"] for t in tags if t["Key"].startswith("spotmax:od_fallback")}


@pytest.mark.timeout(900)
def test_spot_capacity_failures_fall_back_to_on_demand_and_revert_when_spot_returns(world, aws, collections_path):
    autoscaling, ec2 = aws("autoscaling"), aws("ec2")
    world.aws.set_spot_capacity_fault()
    spot_group(aws, "fallback", 3)
    assert serving(autoscaling, "fallback") == []

    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "od_fallback", "--check")) == 1
    assert aws_writes(world) == {}
    play(world, collections_path, "od_fallback")
    fallback_instances = serving(autoscaling, "fallback")
    assert len(fallback_instances) == 3, "desired capacity met with On-Demand"
    assert set(lifecycles(ec2, fallback_instances).values()) == {"on-demand"}
    assert on_demand_share(autoscaling, "fallback") == 100
    tags = fallback_tags(autoscaling, "fallback")
    assert tags["spotmax:od_fallback_from"] == "0/0" and tags["spotmax:od_fallback_at"].endswith("Z")
    sent = aws("cloudwatch").list_metrics(Namespace="SpotMax", MetricName="InServiceOnDemand")["Metrics"]
    assert {"Name": "AutoScalingGroupName", "Value": "fallback"} in [d for m in sent for d in m["Dimensions"]]
    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "od_fallback")) == 0
    assert recap_changed(play(world, collections_path, "revert_to_spot")) == 0, "too young to revert"
    assert aws_writes(world) == {}

    world.aws.advance_clock(16 * 60)
    output = play(world, collections_path, "revert_to_spot", "-e", "renewal_launch_timeout=30")
    assert on_demand_share(autoscaling, "fallback") == 100, output[-5000:]
    assert serving(autoscaling, "fallback") == fallback_instances
    assert group(autoscaling, "fallback")["DesiredCapacity"] == 3
    assert fallback_tags(autoscaling, "fallback") == tags

    world.aws.clear_spot_capacity_fault()
    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "revert_to_spot", "--check")) >= 1
    assert aws_writes(world) == {}
    with Watcher(autoscaling, "fallback") as watcher:
        play(world, collections_path, "revert_to_spot")
    assert watcher.fewest >= 3
    reverted = serving(autoscaling, "fallback")
    assert len(reverted) == 3 and not set(reverted) & set(fallback_instances)
    assert set(lifecycles(ec2, reverted).values()) == {"spot"}
    assert on_demand_share(autoscaling, "fallback") == 0
    assert fallback_tags(autoscaling, "fallback") == {}
    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "revert_to_spot")) == 0
    assert recap_changed(play(world, collections_path, "od_fallback")) == 0
    assert aws_writes(world) == {}


def test_a_standby_group_that_served_is_scaled_back_in_once_its_group_is_whole(world, aws, collections_path):
    autoscaling = aws("autoscaling")
    spot_group(aws, "served", 2)
    aws("ec2").create_launch_template(LaunchTemplateName="served-standby", LaunchTemplateData={"ImageId": AMI})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="served-standby",
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,  # as the interruption pipeline left it after a storm
        AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateName": "served-standby", "Version": "$Latest"},
        Tags=[
            {"ResourceId": "served-standby", "ResourceType": "auto-scaling-group", "Key": k, "Value": v}
            for k, v in {"spotmax:standby_for": "served", "spotmax:od_least_live_mins": "15"}.items()
        ],
    )
    assert len(serving(autoscaling, "served")) == 2 and len(serving(autoscaling, "served-standby")) == 2
    assert recap_changed(play(world, collections_path, "revert_to_spot")) == 0, "the standby instances are young"
    world.aws.advance_clock(16 * 60)
    play(world, collections_path, "revert_to_spot")
    assert group(autoscaling, "served-standby")["DesiredCapacity"] == 0
    assert len(serving(autoscaling, "served")) == 2
    aws_calls(world, "DELETE")
    assert recap_changed(play(world, collections_path, "revert_to_spot")) == 0
    assert aws_writes(world) == {}
