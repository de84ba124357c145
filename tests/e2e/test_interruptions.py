"""The real ansible-rulebook runs the collection's handle_interruptions rulebook against the world.

Every test seeds a managed fleet (Auto Scaling group, Kubernetes nodes with pods and PDBs, Consul
agents with services, the interruption queue and its EventBridge rules), starts the installed
rulebook, fires notices and asserts what AWS, Kubernetes and Consul look like afterwards.
"""

from __future__ import annotations

import copy
import json
import pathlib
import time

import pytest
import requests

from spotmax_world.fleet import GUARDED_LABEL, seed_fleet
from spotmax_world.pipeline import Rulebook, rulebook_variables

HANDLED_TAG = "spotmax:interruption_handled"
TAINT = "spotmax.io/interruption"


def eventbridge(number, detail_type, source, detail):
    """An EventBridge envelope as the interruption queue receives it."""
    return {
        "version": "0",
        "id": f"3a6c3a4e-0000-4000-8000-{number:012d}",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


SPOT_WARNING = eventbridge(
    1, "EC2 Spot Instance Interruption Warning", "aws.ec2", {"instance-id": "", "instance-action": "terminate"}
)
STATE_CHANGE = eventbridge(
    2, "EC2 Instance State-change Notification", "aws.ec2", {"instance-id": "", "state": "terminated"}
)
HEALTH = eventbridge(
    3,
    "AWS Health Event",
    "aws.health",
    {
        "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/1",
        "service": "EC2",
        "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        "eventTypeCategory": "scheduledChange",
        "startTime": "Sun, 22 Nov 2026 12:00:00 GMT",
        "affectedEntities": [],
    },
)


# Short batches and deadlines keep the tests quick; each test may override them.
E2E_VARIABLES = {
    "interruption_batch_window": 0.5,
    "interruption_visibility_timeout": 60,
    "interruption_drain_timeout": 15,
}


def interruption_rulebook(world, collections_path, workdir: pathlib.Path, fleet, **overrides) -> Rulebook:
    """``ansible-rulebook -r spotmax.maxgroup.handle_interruptions`` for ``fleet`` (not started yet)."""
    variables = rulebook_variables(world, fleet, **{**E2E_VARIABLES, **overrides})
    return Rulebook(world, collections_path, workdir, variables)


@pytest.fixture(name="rulebooks")
def rulebooks_fixture():
    started = []
    yield started
    for rulebook in started:
        rulebook.stop()


def wait_until(what, check, timeout, rulebook=None):
    """Poll ``check`` every half second for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    tail = rulebook.output()[-6000:] if rulebook else ""
    pytest.fail(f"timed out after {timeout}s waiting until {what}\n{tail}")


def handled_tags(ec2, instance_ids):
    reply = ec2.describe_tags(
        Filters=[{"Name": "resource-id", "Values": instance_ids}, {"Name": "key", "Values": [HANDLED_TAG]}]
    )
    return {tag["ResourceId"]: tag["Value"] for tag in reply["Tags"]}


def messages_left(sqs, url):
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def group_of(autoscaling, name):
    return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def notice(template, instance_id, **detail):
    body = copy.deepcopy(template)
    body["id"] = f"{body['id'][:-12]}{instance_id[-12:]}"
    body["resources"] = [f"arn:aws:ec2:us-east-1:123456789012:instance/{instance_id}"]
    if "affectedEntities" in body["detail"]:
        body["detail"]["affectedEntities"] = [{"entityValue": instance_id}]
    else:
        body["detail"]["instance-id"] = instance_id
    body["detail"].update(detail)
    return json.dumps(body)


def catalog_services(world, node):
    reply = requests.get(f"{world.consul.url}/v1/catalog/node/{node}", timeout=5)
    reply.raise_for_status()
    return sorted(((reply.json() or {}).get("Services") or {}).keys())


def assert_drained_and_deregistered(world, fleet, instance_ids):
    nodes = world.kubernetes.node_states()
    services = world.consul.services_by_agent()
    pods = world.kubernetes.list_objects("pods")
    for instance in fleet.instances:
        if instance.instance_id not in instance_ids:
            continue
        node = nodes[instance.node_name]
        assert node["unschedulable"], instance.node_name
        assert TAINT in node["taints"], node
        # Pods under a PDB allowing one disruption may outlive the drain timeout; the others are gone.
        left = [p["metadata"] for p in pods if p["spec"].get("nodeName") == instance.node_name]
        assert all(GUARDED_LABEL in (meta.get("labels") or {}) for meta in left), left
        assert services[instance.node_name] == [], (instance.node_name, services[instance.node_name])
        assert catalog_services(world, instance.node_name) == []


def test_spot_storm_with_duplicates_malformed_unmanaged_and_throttling(
    world, aws, collections_path, tmp_path, rulebooks
):
    fleet = seed_fleet(world, 6, name="web")
    sqs, ec2, autoscaling = aws("sqs"), aws("ec2"), aws("autoscaling")
    spot = {"MarketType": "spot"}
    launched = ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1, InstanceMarketOptions=spot
    )["Instances"][0]
    stranger, stranger_node = launched["InstanceId"], launched["PrivateDnsName"]
    # A node in the same cluster: neither the source's early cordon nor the playbook may touch it.
    zone = launched["Placement"]["AvailabilityZone"]
    world.kubernetes.add_node(stranger_node, provider_id=f"aws:///{zone}/{stranger}")
    sqs.send_message(QueueUrl=fleet.queue_url, MessageBody="this is not a notice {")
    ids = fleet.instance_ids
    before = group_of(autoscaling, fleet.group)
    # The handling's first calls are throttled: the modules' retries must ride it out.
    world.aws.set_throttle("autoscaling", ["DetachInstances", "DescribeAutoScalingGroups"], 3)

    rulebook = interruption_rulebook(
        world, collections_path, tmp_path, fleet, interruption_cordon_kubeconfig=str(world.kubeconfig)
    ).start()
    rulebooks.append(rulebook)
    assert sorted(world.aws.interrupt([*ids, stranger])["interrupted"]) == sorted([*ids, stranger])
    wait_until("every managed instance is handled", lambda: len(handled_tags(ec2, ids)) == len(ids), 240, rulebook)
    # Only the malformed message stays, for the queue's redrive policy.
    wait_until("the notices are acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 1, 60, rulebook)
    assert world.aws.faults()["throttle"] == [], "every throttled call was met (and retried)"

    assert_drained_and_deregistered(world, fleet, ids)
    after = group_of(autoscaling, fleet.group)
    members = {instance["InstanceId"] for instance in after["Instances"]}
    assert members.isdisjoint(ids), "interrupted instances were detached"
    assert after["DesiredCapacity"] == before["DesiredCapacity"] == 6, "desired capacity kept: replacements launch now"
    assert len(members) == 6
    assert handled_tags(ec2, [stranger]) == {}, "an unmanaged instance is left alone"
    assert not world.kubernetes.node_states()[stranger_node]["unschedulable"], "its node too"
    metrics = aws("cloudwatch").list_metrics(Namespace="SpotMax", MetricName="Interruptions")["Metrics"]
    assert {"Name": "AutoScalingGroupName", "Value": fleet.group} in [d for m in metrics for d in m["Dimensions"]]
    assert "this is not a notice" in rulebook.output() or "not JSON" in rulebook.output()

    # A redelivered warning for a handled instance is acknowledged without acting again.
    world.aws.clear_requests()
    sqs.send_message(QueueUrl=fleet.queue_url, MessageBody=notice(SPOT_WARNING, ids[0]))
    wait_until("the duplicate is acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 1, 90, rulebook)
    calls = world.aws.requests()
    assert "autoscaling:DetachInstances" not in calls and "autoscaling:SetDesiredCapacity" not in calls, calls
    assert len(group_of(autoscaling, fleet.group)["Instances"]) == 6


def test_rebalance_scheduled_change_lifecycle_and_state_change(world, aws, collections_path, tmp_path, rulebooks):
    fleet = seed_fleet(world, 4, name="api", extra_tags={"spotmax:is_to_handle_rebalance_event": "true"})
    sqs, ec2, autoscaling = aws("sqs"), aws("ec2"), aws("autoscaling")
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=fleet.group,
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=60,
        DefaultResult="ABANDON",
    )
    rebalanced, retiring, hooked, gone = fleet.instances
    rulebook = interruption_rulebook(world, collections_path, tmp_path, fleet).start()
    rulebooks.append(rulebook)

    world.aws.rebalance([rebalanced.instance_id])
    sqs.send_message(QueueUrl=fleet.queue_url, MessageBody=notice(HEALTH, retiring.instance_id))
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=hooked.instance_id, ShouldDecrementDesiredCapacity=False
    )
    world.consul.stop_agent(gone.node_name)
    ec2.terminate_instances(InstanceIds=[gone.instance_id])
    sqs.send_message(QueueUrl=fleet.queue_url, MessageBody=notice(STATE_CHANGE, gone.instance_id))

    ids = [rebalanced.instance_id, retiring.instance_id, hooked.instance_id, gone.instance_id]
    wait_until("every message is acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 0, 240, rulebook)
    # A terminated instance needs no mark: it cannot be interrupted again.
    assert sorted(handled_tags(ec2, ids)) == sorted(ids[:3])

    assert_drained_and_deregistered(world, fleet, ids[:3])
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    }
    # Launch first, then retire: the proactive replacements are terminated after their drain.
    assert states[rebalanced.instance_id] in ("shutting-down", "terminated")
    assert states[retiring.instance_id] in ("shutting-down", "terminated")
    # The lifecycle action was completed (not abandoned by timeout): the instance went on terminating.
    activities = autoscaling.describe_auto_scaling_instances(InstanceIds=[hooked.instance_id])["AutoScalingInstances"]
    assert [a["LifecycleState"] for a in activities] in ([], ["Terminating:Proceed"], ["Terminated"])
    # The terminated instance's node is removed and its services left the catalog.
    assert gone.node_name not in world.kubernetes.node_states()
    assert catalog_services(world, gone.node_name) == []
    group = group_of(autoscaling, fleet.group)
    assert group["DesiredCapacity"] == 4


def lifecycle_states(autoscaling, instance_id):
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return [i["LifecycleState"] for i in found]


def test_lifecycle_hook_notifying_the_queue_directly_is_heartbeated_past_its_timeout_and_completed(
    world, aws, collections_path, tmp_path, rulebooks
):
    fleet = seed_fleet(world, 2, name="jobs")
    sqs, ec2, autoscaling = aws("sqs"), aws("ec2"), aws("autoscaling")
    hooked = fleet.instances[0]
    # A pod no eviction may take: the drain runs to its timeout, past the hook's heartbeat timeout.
    world.kubernetes.add_pod(
        "pinned",
        node_name=hooked.node_name,
        labels={"app": "pinned", GUARDED_LABEL: "true"},
        owner_kind="ReplicaSet",
        owner_name="pinned",
    )
    world.kubernetes.add_pdb("pinned", match_labels={"app": "pinned"}, min_available=1)
    heartbeat_timeout = 30
    autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=fleet.group,
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=heartbeat_timeout,
        DefaultResult="ABANDON",
        NotificationTargetARN=fleet.queue_arn,
        RoleARN="arn:aws:iam::123456789012:role/spotmax-hooks",
    )
    assert messages_left(sqs, fleet.queue_url) == 1, "AWS's test notification for the new hook"
    rulebook = interruption_rulebook(world, collections_path, tmp_path, fleet, interruption_drain_timeout=45).start()
    rulebooks.append(rulebook)
    wait_until("the test notification is acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 0, 90, rulebook)
    assert handled_tags(ec2, fleet.instance_ids) == {}, "the test notification acts on nothing"

    world.aws.clear_requests()
    autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=hooked.instance_id, ShouldDecrementDesiredCapacity=False
    )
    terminated_at = time.monotonic()
    # The hook notifies the queue directly and EventBridge sends its own copy: one notice, handled once.
    assert messages_left(sqs, fleet.queue_url) == 2
    wait_until("the node is cordoned", lambda: world.kubernetes.node_states()[hooked.node_name]["unschedulable"], 60)
    time.sleep(max(0.0, terminated_at + heartbeat_timeout + 8 - time.monotonic()))
    assert lifecycle_states(autoscaling, hooked.instance_id) == ["Terminating:Wait"], "heartbeats kept the action"
    wait_until(
        "the lifecycle action is completed",
        lambda: lifecycle_states(autoscaling, hooked.instance_id) in ([], ["Terminating:Proceed"], ["Terminated"]),
        90,
        rulebook,
    )
    wait_until("both copies are acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 0, 60, rulebook)

    calls = world.aws.requests()
    assert calls.get("autoscaling:RecordLifecycleActionHeartbeat", 0) >= 1, calls
    assert calls.get("autoscaling:CompleteLifecycleAction") == 1, calls
    assert list(handled_tags(ec2, fleet.instance_ids)) == [hooked.instance_id]
    pods = {p["metadata"]["name"]: p for p in world.kubernetes.list_objects("pods")}
    assert pods["pinned"]["spec"]["nodeName"] == hooked.node_name, "the PDB kept its pod: reported, not forced"
    assert_drained_and_deregistered(world, fleet, [hooked.instance_id])
    other = fleet.instances[1]
    assert not world.kubernetes.node_states()[other.node_name]["unschedulable"]
    assert world.consul.services_by_agent()[other.node_name] != []


def test_rulebook_killed_mid_storm_restarts_and_replaces_each_instance_once(
    world, aws, collections_path, tmp_path, rulebooks
):
    fleet = seed_fleet(world, 12, name="batch", standby_size=0)
    sqs, ec2, autoscaling = aws("sqs"), aws("ec2"), aws("autoscaling")
    ids = fleet.instance_ids
    first = interruption_rulebook(world, collections_path, tmp_path, fleet, interruption_visibility_timeout=20).start()
    rulebooks.append(first)
    world.aws.interrupt(ids)
    wait_until(
        "the first node is cordoned",
        lambda: any(state["unschedulable"] for state in world.kubernetes.node_states().values()),
        120,
        first,
    )
    first.kill()
    second = interruption_rulebook(world, collections_path, tmp_path, fleet, interruption_visibility_timeout=20).start()
    rulebooks.append(second)
    wait_until("every instance is handled after the restart", lambda: len(handled_tags(ec2, ids)) == 12, 300, second)
    wait_until("every message is acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 0, 90, second)

    assert_drained_and_deregistered(world, fleet, ids)
    group = group_of(autoscaling, fleet.group)
    assert {i["InstanceId"] for i in group["Instances"]}.isdisjoint(ids)
    assert group["DesiredCapacity"] == 12
    standby = group_of(autoscaling, fleet.standby_group)
    assert standby["DesiredCapacity"] == 12, "the standby group was scaled out once per instance, not twice"


def volume(ec2, volume_id):
    """The volume, or None once it is deleted."""
    found = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"]
    return found[0] if found else None


def data_mapping(ec2, instance_id, device="/dev/sdf"):
    """The instance's mapping at ``device`` (volume and DeleteOnTermination), None without one."""
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping["DeviceName"] == device:
            return {key: mapping["Ebs"][key] for key in ("VolumeId", "DeleteOnTermination")}
    return None


def attachments(found):
    return [(a["InstanceId"], a["Device"], a["State"]) for a in (found or {}).get("Attachments", [])]


def reclaimed(ec2, instance_id):
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return found["State"]["Name"] == "terminated"


@pytest.mark.parametrize("reclaim", ["mid_drain", "after_the_run"])
def test_spot_interruption_hands_the_kept_volume_over_to_the_replacement(
    world, aws, collections_path, tmp_path, rulebooks, reclaim
):
    """EC2 reclaims the instance while it drains (the volume is found again by its tag) or after the run
    (the volume is detached from the running instance)."""
    # Three instances, one per zone, each with a data volume at /dev/sdf deleted on termination; the launch
    # template maps nothing there. The drain waits 10 s first, so the instance can be reclaimed mid-handling.
    fleet = seed_fleet(world, 3, name=f"data-{reclaim}".replace("_", "-"), delays=10, persistence_dev="/dev/sdf")
    sqs, ec2, autoscaling = aws("sqs"), aws("ec2"), aws("autoscaling")
    victim, *others = fleet.instances
    kept = fleet.data_volumes[victim.instance_id]
    assert attachments(volume(ec2, kept)) == [(victim.instance_id, "/dev/sdf", "attached")]
    assert data_mapping(ec2, victim.instance_id) == {"VolumeId": kept, "DeleteOnTermination": True}
    rulebook = interruption_rulebook(world, collections_path, tmp_path, fleet).start()
    rulebooks.append(rulebook)

    notice_seconds = 600
    assert world.aws.interrupt([victim.instance_id], notice_seconds=notice_seconds)["interrupted"] == [
        victim.instance_id
    ]
    # The volume is protected right after the plan, while still attached to the interrupted instance (the drain
    # waits 10 s before it starts, the handover comes after the drain).
    wait_until(
        "the kept volume outlives its instance while still attached to it",
        lambda: data_mapping(ec2, victim.instance_id) == {"VolumeId": kept, "DeleteOnTermination": False},
        120,
        rulebook,
    )
    if reclaim == "mid_drain":
        # EC2 reclaims the instance now: the volume outlives it (DeleteOnTermination was turned off).
        world.aws.advance_clock(notice_seconds)
        wait_until("the interrupted instance is terminated", lambda: reclaimed(ec2, victim.instance_id), 30, rulebook)
        assert volume(ec2, kept) is not None, "the kept volume was deleted with its instance"

    wait_until("the notice is acknowledged", lambda: messages_left(sqs, fleet.queue_url) == 0, 180, rulebook)
    assert_drained_and_deregistered(world, fleet, [victim.instance_id])
    group = group_of(autoscaling, fleet.group)
    members = {i["InstanceId"]: i["AvailabilityZone"] for i in group["Instances"]}
    assert group["DesiredCapacity"] == 3 and len(members) == 3
    assert victim.instance_id not in members
    replacements = sorted(set(members) - set(fleet.instance_ids))
    assert len(replacements) == 1, members
    replacement = replacements[0]
    assert members[replacement] == victim.zone, "the replacement landed in the interrupted instance's zone"

    moved = volume(ec2, kept)
    assert moved is not None, "the kept volume still exists"
    assert moved["AvailabilityZone"] == victim.zone
    assert attachments(moved) == [(replacement, "/dev/sdf", "attached")], moved
    # The instances left alone keep their own volumes where they were.
    for other in others:
        assert attachments(volume(ec2, fleet.data_volumes[other.instance_id])) == [
            (other.instance_id, "/dev/sdf", "attached")
        ]
    assert handled_tags(ec2, [victim.instance_id]) == {victim.instance_id: "spot_interruption"}
    if reclaim == "after_the_run":
        world.aws.advance_clock(notice_seconds)
        wait_until("the interrupted instance is terminated", lambda: reclaimed(ec2, victim.instance_id), 30, rulebook)
        assert attachments(volume(ec2, kept)) == [(replacement, "/dev/sdf", "attached")]
