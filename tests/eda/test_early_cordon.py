"""The source's early cordon against the whole world: Spot-warned managed nodes are cordoned on receipt."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import instances, run_source

from spotmax_world.fleet import seed_fleet
from spotmax_world.world import World

AMI = "ami-12c6146b"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("world")) as started:
        yield started


def source_args(world: World, queue_url: str, **overrides: Any) -> dict[str, Any]:
    env = world.environment()
    return {
        "queue_url": queue_url,
        "region": env["AWS_REGION"],
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "access_key": "testing",
        "secret_key": "testing",
        "batch_window": 0.5,
        "wait_time": 1,
        "cordon_kubeconfig": str(world.kubeconfig),
        **overrides,
    }


def unmanaged_instance_with_node(world: World) -> tuple[str, str]:
    """A Spot instance without spotmax:group whose node is in the same cluster."""
    ec2 = world.aws.client("ec2")
    [instance] = ec2.run_instances(
        ImageId=AMI, InstanceType="m5.large", MinCount=1, MaxCount=1, InstanceMarketOptions={"MarketType": "spot"}
    )["Instances"]
    node = instance["PrivateDnsName"]
    zone = instance["Placement"]["AvailabilityZone"]
    world.kubernetes.add_node(node, provider_id=f"aws:///{zone}/{instance['InstanceId']}")
    return instance["InstanceId"], node


def test_spot_warned_managed_nodes_are_cordoned_before_the_batch_is_emitted(world: World) -> None:
    fleet = seed_fleet(world, 4, name="early", pods_per_node=1, services_per_node=1)
    other_id, other_node = unmanaged_instance_with_node(world)
    warned = fleet.instance_ids[:3]
    spared = fleet.instances[3]
    # EventBridge delivers the warnings of the managed and the unmanaged instance to the fleet's queue.
    assert sorted(world.aws.interrupt([*warned, other_id])["interrupted"]) == sorted([*warned, other_id])
    cordoned_when: dict[str, float] = {}
    emitted_when: list[float] = []

    def cordoned() -> set[str]:
        return {name for name, state in world.kubernetes.node_states().items() if state["unschedulable"]}

    def whole_batch(events: list[dict[str, Any]]) -> bool:
        for name in cordoned():
            cordoned_when.setdefault(name, time.monotonic())
        return len(instances(events)) >= 4

    # The batch window holds the notices for 5 s: the nodes must be cordoned before the batch leaves.
    events = run_source(
        source_args(world, fleet.queue_url, batch_window=5),
        until=whole_batch,
        timeout=30,
        on_event=lambda _event: emitted_when.append(time.monotonic()),
    )
    warned_nodes = {i.node_name for i in fleet.instances[:3]}
    assert warned_nodes <= set(cordoned_when), cordoned_when
    assert emitted_when, "the batch was emitted"
    assert max(cordoned_when[n] for n in warned_nodes) < emitted_when[0]
    assert other_node not in cordoned(), "not managed: left alone"
    assert spared.node_name not in cordoned(), "not warned: left alone"
    # The batch still carries every notice for the playbook.
    assert sorted(instances(events)) == sorted([*warned, other_id])


def test_a_kubeconfig_that_cannot_be_loaded_stops_the_source_naming_the_argument(
    world: World, tmp_path: pathlib.Path
) -> None:
    fleet_queue = world.aws.client("sqs").create_queue(QueueName="early-bad-kubeconfig")["QueueUrl"]
    missing = tmp_path / "missing-kubeconfig"
    with pytest.raises(ValueError, match=f"^cordon_kubeconfig: '{missing}' cannot be loaded"):
        run_source(source_args(world, fleet_queue, cordon_kubeconfig=str(missing)), until=lambda e: False, timeout=10)
