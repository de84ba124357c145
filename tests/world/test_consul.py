"""Tests of the Consul emulator, driven through py-consul (and plain HTTP for the test controls)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import consul
import pytest
import requests
from consul.exceptions import ACLDisabled, ACLPermissionDenied, BadRequest

from spotmax_world.consul import SERVER_NODE, ConsulEmulator

MANAGEMENT = "8d2f5c1e-5a8b-4a43-9f1e-3c0de1e0a001"
DEADLINE = 5.0


def _client(port: int, token: str | None = None) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=port, token=token)


def _eventually(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _nodes_of(entries: list[dict[str, Any]]) -> list[str]:
    return sorted(entry["Node"]["Node"] for entry in entries)


@pytest.fixture(scope="module")
def _plain() -> Iterator[ConsulEmulator]:
    # Background anti-entropy is effectively off here, so nothing races the asserts; tests force a sync instead.
    emulator = ConsulEmulator(sync_interval=3600)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def _secured() -> Iterator[ConsulEmulator]:
    emulator = ConsulEmulator(acl_enabled=True, management_token=MANAGEMENT, sync_interval=3600)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def world(_plain: ConsulEmulator) -> ConsulEmulator:
    """The emulator without ACLs, reset through its control endpoints."""
    assert requests.delete(f"{_plain.url}/_emulator/state", timeout=5).status_code == 204
    assert requests.delete(f"{_plain.url}/_emulator/requests", timeout=5).status_code == 204
    return _plain


@pytest.fixture
def secured(_secured: ConsulEmulator) -> ConsulEmulator:
    """The emulator with ACLs on and the management token ``MANAGEMENT``."""
    _secured.reset()
    return _secured


def test_agent_register_and_deregister(world: ConsulEmulator) -> None:
    port = world.add_agent("web-1", "10.0.1.11")
    agent = _client(port)
    assert agent.agent.service.register(
        "web", service_id="web-1", port=8080, tags=["v1"], meta={"az": "a"}, check=consul.Check.http("http://x", "10s")
    )
    assert agent.agent.services() == {
        "web-1": {
            "ID": "web-1",
            "Service": "web",
            "Tags": ["v1"],
            "Address": "",
            "Meta": {"az": "a"},
            "Port": 8080,
            "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False,
            "Datacenter": "dc1",
        }
    }
    assert agent.agent.service_definition("web-1")["Port"] == 8080
    server = _client(world.port)
    entries = server.catalog.service("web")[1]
    assert [(e["Node"], e["Address"], e["ServiceID"], e["ServicePort"], e["ServiceTags"]) for e in entries] == [
        ("web-1", "10.0.1.11", "web-1", 8080, ["v1"])
    ]
    checks = server.health.checks("web")[1]
    assert [(c["CheckID"], c["Status"], c["Type"], c["ServiceName"]) for c in checks] == [
        ("service:web-1", "passing", "http", "web")
    ]
    assert server.catalog.services()[1] == {"consul": [], "web": ["v1"]}

    assert agent.agent.service.deregister("web-1")
    assert agent.agent.services() == {}
    assert server.catalog.service("web")[1] == []
    assert server.health.checks("web")[1] == []
    assert agent.agent.service_definition("web-1") is None  # 404


def test_requests_are_answered_by_the_agent_of_their_port(world: ConsulEmulator) -> None:
    one, two = world.add_agent("node-a", "10.0.2.1"), world.add_agent("node-b", "10.0.2.2")
    assert world.agent_port("node-a") == one
    assert _client(one).agent.self()["Config"]["NodeName"] == "node-a"
    assert _client(two).agent.self()["Config"]["NodeName"] == "node-b"
    assert _client(world.port).agent.self()["Config"]["Server"] is True
    _client(one).agent.service.register("api", service_id="api-a", port=1)
    assert list(_client(one).agent.services()) == ["api-a"]
    assert _client(two).agent.services() == {}
    members = {m["Name"]: m["Status"] for m in _client(two).agent.members()}
    assert members == {SERVER_NODE: 1, "node-a": 1, "node-b": 1}


def test_service_maintenance_is_filtered_from_passing(world: ConsulEmulator) -> None:
    for number in (1, 2):
        port = world.add_agent(f"web-{number}", f"10.0.3.{number}")
        _client(port).agent.service.register("web", service_id=f"web-{number}", port=80)
    server = _client(world.port)
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-1", "web-2"]

    agent = _client(world.agent_port("web-1"))
    assert agent.agent.service.maintenance("web-1", True, reason="deploy")
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-2"]
    assert _nodes_of(server.health.service("web")[1]) == ["web-1", "web-2"]
    maintenance = {c["CheckID"]: c for c in server.health.node("web-1")[1]}["_service_maintenance:web-1"]
    assert (maintenance["Status"], maintenance["Notes"], maintenance["ServiceID"]) == ("critical", "deploy", "web-1")

    assert agent.agent.service.maintenance("web-1", False)
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-1", "web-2"]
    assert "_service_maintenance:web-1" not in {c["CheckID"] for c in server.health.node("web-1")[1]}


def test_node_maintenance_is_filtered_from_passing(world: ConsulEmulator) -> None:
    for number in (1, 2):
        port = world.add_agent(f"web-{number}", f"10.0.4.{number}")
        _client(port).agent.service.register("web", service_id=f"web-{number}", port=80)
    server = _client(world.port)
    agent = _client(world.agent_port("web-2"))
    assert agent.agent.maintenance(True, reason="patching")
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-1"]
    check = {c["CheckID"]: c for c in server.health.node("web-2")[1]}["_node_maintenance"]
    assert (check["Status"], check["ServiceID"], check["Notes"]) == ("critical", "", "patching")
    assert agent.agent.maintenance(False)
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-1", "web-2"]


def test_ttl_check_status_drives_health(world: ConsulEmulator) -> None:
    agent = _client(world.add_agent("worker-1", "10.0.5.1"))
    agent.agent.service.register("worker", service_id="worker-1", check=consul.Check.ttl("30s"))
    server = _client(world.port)
    assert server.health.service("worker", passing=True)[1] == []  # a TTL check starts critical
    assert agent.agent.check.ttl_pass("service:worker-1", notes="ok")
    assert _nodes_of(server.health.service("worker", passing=True)[1]) == ["worker-1"]
    assert agent.agent.checks()["service:worker-1"]["Output"] == "ok"
    assert agent.agent.check.ttl_warn("service:worker-1")
    assert server.health.service("worker", passing=True)[1] == []  # warning is not passing either
    assert [c["CheckID"] for c in server.health.state("warning")[1]] == ["service:worker-1"]

    # a non-TTL check only changes through the control (the emulator never runs checks)
    agent.agent.service.register("api", service_id="api-1", check=consul.Check.http("http://x", "10s"))
    assert _nodes_of(server.health.service("api", passing=True)[1]) == ["worker-1"]
    reply = requests.put(
        f"{world.url}/_emulator/checks/worker-1/service:api-1", json={"Status": "critical", "Output": "502"}, timeout=5
    )
    assert reply.status_code == 200
    assert server.health.service("api", passing=True)[1] == []
    assert agent.agent.checks()["service:api-1"]["Output"] == "502"


def test_catalog_register_deregister_nodes_and_node(world: ConsulEmulator) -> None:
    server = _client(world.port)
    service = {"Service": "db", "ID": "db-1", "Port": 5432, "Tags": ["primary"]}
    check = {"CheckID": "db-alive", "Name": "db alive", "Status": "passing", "ServiceID": "db-1"}
    assert server.catalog.register("ext-db", "192.168.9.9", service=service, check=check, node_meta={"k": "v"})
    nodes = server.catalog.nodes()[1]
    assert [(n["Node"], n["Address"]) for n in nodes] == [(SERVER_NODE, "127.0.0.1"), ("ext-db", "192.168.9.9")]
    node = server.catalog.node("ext-db")[1]
    assert node["Node"]["Address"] == "192.168.9.9"
    assert node["Services"]["db-1"]["Port"] == 5432
    assert node["Services"]["db-1"]["Tags"] == ["primary"]
    assert _nodes_of(server.health.service("db", passing=True)[1]) == ["ext-db"]

    assert server.catalog.deregister("ext-db", check_id="db-alive")
    assert server.health.checks("db")[1] == []
    assert server.catalog.deregister("ext-db", service_id="db-1")
    assert server.catalog.service("db")[1] == []
    assert server.catalog.node("ext-db")[1]["Services"] == {}
    assert server.catalog.deregister("ext-db")
    assert server.catalog.node("ext-db")[1] is None
    assert [n["Node"] for n in server.catalog.nodes()[1]] == [SERVER_NODE]
    # a catalog-only node has no agent: nothing brings it back
    assert requests.post(f"{world.url}/_emulator/sync", timeout=5).status_code == 200
    assert server.catalog.node("ext-db")[1] is None


def test_health_of_a_service_across_agents_and_a_dead_node(world: ConsulEmulator) -> None:
    for number in (1, 2, 3):
        port = world.add_agent(f"web-{number}", f"10.0.6.{number}")
        _client(port).agent.service.register("web", service_id=f"web-{number}", port=80, tags=[f"n{number}"])
    server = _client(world.port)
    entries = server.health.service("web", passing=True)[1]
    assert _nodes_of(entries) == ["web-1", "web-2", "web-3"]
    assert {e["Node"]["Node"]: e["Node"]["Address"] for e in entries}["web-2"] == "10.0.6.2"
    assert _nodes_of(server.health.service("web", tag="n3")[1]) == ["web-3"]

    dead_port = world.agent_port("web-3")
    world.stop_agent("web-3")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{dead_port}/v1/agent/self", timeout=2)
    assert _nodes_of(server.health.service("web", passing=True)[1]) == ["web-1", "web-2"]
    everything = server.health.service("web")[1]
    serf = {e["Node"]["Node"]: {c["CheckID"]: c["Status"] for c in e["Checks"]}["serfHealth"] for e in everything}
    assert serf == {"web-1": "passing", "web-2": "passing", "web-3": "critical"}
    assert len(server.catalog.service("web")[1]) == 3  # a failed node's entries stay
    assert world.agents()["web-3"]["alive"] is False
    assert {m["Name"]: m["Status"] for m in server.agent.members()}["web-3"] == 4  # serf "failed"


def test_anti_entropy_restores_a_catalog_only_deregistration(world: ConsulEmulator) -> None:
    agent = _client(world.add_agent("web-1", "10.0.7.1"))
    agent.agent.service.register("web", service_id="web-1", port=80, check=consul.Check.tcp("10.0.7.1", 80, "5s"))
    server = _client(world.port)
    assert server.catalog.deregister("web-1", service_id="web-1")
    assert server.catalog.service("web")[1] == []
    assert server.catalog.register("web-1", "10.0.7.1", service={"Service": "stray", "ID": "stray"})
    assert server.catalog.deregister("web-1")  # the whole node

    reply = requests.post(f"{world.url}/_emulator/sync", timeout=5)
    assert reply.status_code == 200
    assert reply.json()["changed"] >= 1
    assert [e["ServiceID"] for e in server.catalog.service("web")[1]] == ["web-1"]
    assert server.catalog.service("stray")[1] == []  # the agent does not know it: anti-entropy removes it
    assert {c["CheckID"] for c in server.health.node("web-1")[1]} == {"serfHealth", "service:web-1"}
    assert world.sync() == 0  # nothing left to fix


def test_background_anti_entropy() -> None:
    emulator = ConsulEmulator(sync_interval=0.05)
    emulator.start()
    try:
        agent = _client(emulator.add_agent("web-1", "10.0.8.1"))
        agent.agent.service.register("web", service_id="web-1")
        server = _client(emulator.port)
        assert server.catalog.deregister("web-1", service_id="web-1")
        assert _eventually(lambda: len(server.catalog.service("web")[1]) == 1)
    finally:
        emulator.stop()


def test_agent_deregistration_and_force_leave_stick(world: ConsulEmulator) -> None:
    one = _client(world.add_agent("web-1", "10.0.9.1"))
    two = _client(world.add_agent("web-2", "10.0.9.2"))
    one.agent.service.register("web", service_id="web-1")
    two.agent.service.register("web", service_id="web-2")
    server = _client(world.port)

    assert one.agent.service.deregister("web-1")
    world.stop_agent("web-2")
    assert server.agent.force_leave("web-2")
    world.sync()
    assert server.catalog.service("web")[1] == []
    assert server.catalog.node("web-2")[1] is None
    assert {m["Name"]: m["Status"] for m in server.agent.members()}["web-2"] == 3  # serf "left"
    assert world.agents()["web-2"]["status"] == "left"

    assert server.agent.force_leave("web-2", prune=True)
    assert "web-2" not in {m["Name"] for m in server.agent.members()}
    with pytest.raises(consul.ConsulException, match="No node found"):
        server.agent.force_leave("nobody")
    with pytest.raises(BadRequest, match="does not implement"):
        server.catalog.nodes(filter_expr="Node == web-1")


def test_acl_rejects_missing_and_unknown_tokens(secured: ConsulEmulator) -> None:
    with pytest.raises(ACLPermissionDenied, match="ACL not found"):
        _client(secured.port).catalog.services()
    with pytest.raises(ACLPermissionDenied, match="ACL not found"):
        _client(secured.port, token="not-a-token").catalog.nodes()
    assert _client(secured.port, token=MANAGEMENT).catalog.services()[1] == {"consul": []}
    bearer = requests.get(
        f"{secured.url}/v1/catalog/services", headers={"Authorization": f"Bearer {MANAGEMENT}"}, timeout=5
    )
    assert bearer.status_code == 200
    query = requests.get(f"{secured.url}/v1/catalog/services", params={"token": MANAGEMENT}, timeout=5)
    assert query.status_code == 200
    reply = requests.get(f"{secured.url}/v1/catalog/services", timeout=5)
    assert (reply.status_code, reply.text) == (403, "ACL not found")
    # test controls are never ACL-protected
    assert requests.get(f"{secured.url}/_emulator/agents", timeout=5).status_code == 200


def test_acl_read_only_token_cannot_write(secured: ConsulEmulator) -> None:
    admin = _client(secured.port, token=MANAGEMENT)
    reader = admin.acl.token.create(description="reader", policies_name=["global-read-only"])
    assert reader["Policies"][0]["Name"] == "builtin/global-read-only"
    port = secured.add_agent("web-1", "10.0.10.1")
    client = _client(port, token=reader["SecretID"])
    assert client.agent.services() == {}
    assert client.catalog.nodes()[1]
    with pytest.raises(ACLPermissionDenied, match=r"Permission denied.*service:write"):
        client.agent.service.register("web", service_id="web-1")
    with pytest.raises(ACLPermissionDenied, match=r"Permission denied.*node:write"):
        client.catalog.register("ext", "192.168.0.1")
    with pytest.raises(ACLPermissionDenied, match="Permission denied"):
        client.agent.force_leave("web-1")
    assert _client(port, token=MANAGEMENT).agent.services() == {}


def test_acl_service_identity_and_token_endpoints(secured: ConsulEmulator) -> None:
    admin = _client(secured.port, token=MANAGEMENT)
    created = admin.acl.token.create(description="web", service_identities=[{"ServiceName": "web"}])
    port = secured.add_agent("web-1", "10.0.11.1")
    client = _client(port, token=created["SecretID"])
    assert client.agent.service.register("web", service_id="web-1")
    with pytest.raises(ACLPermissionDenied, match="lacks permission 'service:write' on \"db\""):
        client.agent.service.register("db", service_id="db-1")
    assert client.acl.token.read_self()["AccessorID"] == created["AccessorID"]
    with pytest.raises(ACLPermissionDenied):
        client.acl.token.read(created["AccessorID"])  # acl:read is not granted
    assert admin.acl.token.read(created["AccessorID"])["ServiceIdentities"] == [{"ServiceName": "web"}]
    assert admin.acl.token.delete(created["AccessorID"])
    with pytest.raises(ACLPermissionDenied, match="ACL not found"):
        client.agent.services()


def test_acl_bootstrap_and_disabled_acls(world: ConsulEmulator) -> None:
    with pytest.raises(ACLDisabled):
        _client(world.port).acl.token.read_self()
    emulator = ConsulEmulator(acl_enabled=True, sync_interval=0)
    emulator.start()
    try:
        anonymous = _client(emulator.port)
        token = anonymous.acl.bootstrap()
        assert token["Policies"] == [{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}]
        assert _client(emulator.port, token=token["SecretID"]).catalog.services()[1] == {"consul": []}
        with pytest.raises(ACLPermissionDenied, match="bootstrap no longer allowed"):
            anonymous.acl.bootstrap()
    finally:
        emulator.stop()


def test_consul_index_increases_and_blocking_queries_wake(world: ConsulEmulator) -> None:
    server = _client(world.port)
    first = server.catalog.services()[0]
    reply = requests.get(f"{world.url}/v1/catalog/nodes", timeout=5)
    assert reply.headers["X-Consul-KnownLeader"] == "true"
    assert reply.headers["X-Consul-LastContact"] == "0"
    assert server.catalog.register("ext", "192.168.1.1")
    second = server.catalog.services()[0]
    assert int(second) > int(first)
    assert server.catalog.services()[0] == second  # reads do not move it

    timer = threading.Timer(0.2, lambda: server.catalog.register("ext2", "192.168.1.2"))
    started = time.monotonic()
    timer.start()
    try:
        third, nodes = server.catalog.nodes(index=second, wait="4s")
    finally:
        timer.join(timeout=DEADLINE)
    assert time.monotonic() - started < 3.5
    assert int(third) > int(second)
    assert "ext2" in {n["Node"] for n in nodes}


def test_request_counter(world: ConsulEmulator) -> None:
    server = _client(world.port)
    server.catalog.services()
    server.catalog.services()
    server.health.service("web")
    requests.get(f"{world.url}/_emulator/agents", timeout=5)
    counters = requests.get(f"{world.url}/_emulator/requests", timeout=5).json()
    assert counters["GET /v1/catalog/services"] == 2
    assert sum(counters.values()) == 3  # the control call is not counted
    assert requests.delete(f"{world.url}/_emulator/requests", timeout=5).status_code == 204
    assert requests.get(f"{world.url}/_emulator/requests", timeout=5).json() == {}


def test_agent_controls_and_reset(world: ConsulEmulator) -> None:
    reply = requests.post(f"{world.url}/_emulator/agents", json={"node": "ctl-1", "address": "10.0.12.1"}, timeout=5)
    assert reply.status_code == 200
    port = reply.json()["port"]
    assert _client(port).agent.self()["Config"]["NodeName"] == "ctl-1"
    again = requests.post(f"{world.url}/_emulator/agents", json={"node": "ctl-1", "address": "10.0.12.1"}, timeout=5)
    assert again.status_code == 409
    listed = requests.get(f"{world.url}/_emulator/agents", timeout=5).json()
    assert listed["ctl-1"] == {"port": port, "alive": True, "status": "alive", "address": "10.0.12.1"}
    assert requests.delete(f"{world.url}/_emulator/agents/ctl-1", timeout=5).status_code == 204
    assert requests.get(f"{world.url}/_emulator/agents", timeout=5).json()["ctl-1"]["alive"] is False
    assert requests.delete(f"{world.url}/_emulator/agents/nobody", timeout=5).status_code == 404
    config = requests.get(f"{world.url}/_emulator/config", timeout=5).json()
    assert (config["datacenter"], config["acl_enabled"], config["port"]) == ("dc1", False, world.port)

    restarted = world.add_agent("ctl-1", "10.0.12.1")  # the node comes back on a new listener
    assert _client(restarted).agent.self()["Config"]["NodeName"] == "ctl-1"
    assert requests.delete(f"{world.url}/_emulator/state", timeout=5).status_code == 204
    assert list(world.agents()) == [SERVER_NODE]
    assert [n["Node"] for n in _client(world.port).catalog.nodes()[1]] == [SERVER_NODE]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{restarted}/v1/agent/self", timeout=2)


def test_many_agents_share_one_listener_thread(world: ConsulEmulator) -> None:
    before = threading.active_count()
    ports = [world.add_agent(f"bulk-{number}", f"10.1.{number // 200}.{number % 200 + 1}") for number in range(300)]
    assert threading.active_count() - before < 5
    assert len(set(ports)) == 300
    for number in (0, 150, 299):
        assert _client(ports[number]).agent.self()["Config"]["NodeName"] == f"bulk-{number}"
    assert len(_client(world.port).catalog.nodes()[1]) == 301
