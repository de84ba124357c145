"""``spotmax_world.fleet``: a managed Spot fleet seeded into a running world, checked through the real APIs."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from spotmax_world.fleet import GUARDED_LABEL, Fleet, seed_fleet
from spotmax_world.world import World

SIZE = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("fleet-world")) as started:
        yield started


@pytest.fixture(scope="module")
def fleet(world: World) -> Fleet:
    return seed_fleet(world, SIZE, name="bench", standby_size=1)


def core(world: World) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(world.kubeconfig)))


def consul_get(address: str, path: str) -> Any:
    assert address.startswith("127.0.0.1:"), "the world's agents listen on the loopback only"
    with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as reply:
        return json.loads(reply.read())


def test_the_group_is_all_spot_managed_and_tagged(world: World, fleet: Fleet) -> None:
    autoscaling, ec2 = world.aws.client("autoscaling"), world.aws.client("ec2")
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["bench", "bench-standby"])
    by_name = {g["AutoScalingGroupName"]: g for g in groups["AutoScalingGroups"]}
    group = by_name["bench"]
    assert sorted(i["InstanceId"] for i in group["Instances"]) == sorted(fleet.instance_ids)
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert tags["spotmax:group"] == "bench"
    assert tags["spotmax:k8s_config_file_path"] == str(world.kubeconfig)
    assert tags["spotmax:consul_port"] == "8500"
    for key in ("spotmax:k8s_delay_draining_secs", "spotmax:detaching_delay_seconds", "spotmax:sd_delay_detach_secs"):
        assert tags[key] == "0"
    reply = ec2.describe_instances(InstanceIds=fleet.instance_ids)
    described = [i for r in reply["Reservations"] for i in r["Instances"]]
    assert {i.get("InstanceLifecycle") for i in described} == {"spot"}
    assert all({"Key": "spotmax:group", "Value": "bench"} in i["Tags"] for i in described)
    standby = by_name["bench-standby"]
    assert {"spotmax:standby_for": "bench"}.items() <= {t["Key"]: t["Value"] for t in standby["Tags"]}.items()
    assert len(standby["Instances"]) == 1
    assert fleet.standby_group == "bench-standby"


def test_a_spot_warning_reaches_the_queue_through_eventbridge(world: World, fleet: Fleet) -> None:
    sqs = world.aws.client("sqs")
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=fleet.queue_url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    assert policy["deadLetterTargetArn"].endswith(":bench-interruptions-dlq")
    rules = world.aws.client("events").list_rules(NamePrefix="bench-")["Rules"]
    assert len(rules) == len(fleet.rules) == 5
    victim = fleet.instance_ids[0]
    assert world.aws.interrupt([victim])["interrupted"] == [victim]
    messages = sqs.receive_message(QueueUrl=fleet.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    [event] = [json.loads(m["Body"]) for m in messages]
    assert event["detail-type"] == "EC2 Spot Instance Interruption Warning"
    assert event["detail"]["instance-id"] == victim
    sqs.purge_queue(QueueUrl=fleet.queue_url)


def test_every_instance_is_a_node_with_five_pods_and_guarded_pods_have_a_budget(world: World, fleet: Fleet) -> None:
    api = core(world)
    nodes = {n.metadata.name: n for n in api.list_node().items}
    assert len(nodes) == SIZE
    for instance in fleet.instances:
        assert nodes[instance.node_name].spec.provider_id == f"aws:///{instance.zone}/{instance.instance_id}"
        pods = api.list_namespaced_pod("default", field_selector=f"spec.nodeName={instance.node_name}").items
        assert sorted(p.metadata.name for p in pods) == sorted(instance.pods)
        assert {p.metadata.owner_references[0].kind for p in pods} == {"ReplicaSet"}
    guarded = api.list_namespaced_pod("default", label_selector=f"{GUARDED_LABEL}=true").items
    assert len(guarded) == (SIZE * 5) // 3  # every third pod
    budgets = client.PolicyV1Api(config.new_client_from_config(str(world.kubeconfig)))
    by_name = {b.metadata.name: b for b in budgets.list_namespaced_pod_disruption_budget("default").items}
    assert sorted(by_name) == sorted(fleet.pdbs)
    for pdb in by_name.values():
        assert pdb.spec.max_unavailable == 1
        assert pdb.status.disruptions_allowed == 1
    covered = sum(b.status.expected_pods for b in by_name.values())
    assert covered == len(guarded), "each guarded pod is under exactly one budget"


def test_every_node_has_a_consul_agent_with_two_services(world: World, fleet: Fleet) -> None:
    assert sorted(fleet.consul_agent_addresses) == sorted(i.node_name for i in fleet.instances)
    for instance in fleet.instances:
        services = consul_get(fleet.consul_agent_addresses[instance.node_name], "/v1/agent/services")
        assert sorted(services) == sorted(instance.services)
        assert len(services) == 2
        [node] = [
            n
            for n in consul_get(world.consul.url.removeprefix("http://"), "/v1/catalog/nodes")
            if n["Node"] == instance.node_name
        ]
        assert node["Address"] == instance.private_ip


def test_pollers_see_state_without_requests(world: World, fleet: Fleet) -> None:
    world.kubernetes.reset_request_counts()
    states = world.kubernetes.node_states()
    assert {n: s["pods"] for n, s in states.items()} == {i.node_name: 5 for i in fleet.instances}
    assert {s["providerID"] for s in states.values()} == {i.provider_id for i in fleet.instances}
    assert not any(s["unschedulable"] for s in states.values())
    services = world.consul.services_by_agent()
    assert {i.node_name: services[i.node_name] for i in fleet.instances} == {
        i.node_name: sorted(i.services) for i in fleet.instances
    }
    assert world.kubernetes.request_counts() == {}


def test_seed_fleet_rejects_bad_sizes(world: World) -> None:
    with pytest.raises(ValueError, match="size: 0 is not allowed"):
        seed_fleet(world, 0)
    with pytest.raises(ValueError, match="services_per_node: 9 is not allowed"):
        seed_fleet(world, 1, services_per_node=9)
    with pytest.raises(ValueError, match="zones: \\('us-west-2a',\\) is not allowed"):
        seed_fleet(world, 1, zones=("us-west-2a",))


def test_seed_fleet_in_one_zone_places_every_instance_there(world: World) -> None:
    fleet = seed_fleet(world, 3, name="one-zone", pods_per_node=0, zones=("us-east-1c",))
    assert {instance.zone for instance in fleet.instances} == {"us-east-1c"}


def test_register_services_validates_like_the_agent_api(world: World, fleet: Fleet) -> None:
    node = fleet.instances[0].node_name
    with pytest.raises(ValueError, match="Missing service name"):
        world.consul.register_services(node, [{"ID": "nameless"}])
    with pytest.raises(KeyError, match="no agent for node"):
        world.consul.register_services("no-such-node", [{"Name": "web"}])
    assert world.consul.services_by_agent()[node] == sorted(fleet.instances[0].services)
