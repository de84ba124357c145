# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""consul_deregister against the world's Consul emulator, in process: outcomes in Consul, not calls.

Background anti-entropy is off (``sync_interval=0``); tests run a sync themselves, so nothing races the asserts.
"""

from __future__ import annotations

import json
import pathlib
import socket
import sys
import time
import urllib.request

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.spotmax.maxgroup.plugins.modules import consul_deregister

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "world"))

# The world is test support outside the collection's plugins.
from spotmax_world.consul import ConsulEmulator

MANAGEMENT = "5b0e8a36-0c53-4b8e-9a57-6c1d1f3a0001"
ENV = ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT")


def call(method, url, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Consul-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - 127.0.0.1 only
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def _plain():
    emulator = ConsulEmulator(sync_interval=0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def _secured():
    emulator = ConsulEmulator(acl_enabled=True, management_token=MANAGEMENT, sync_interval=0)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(autouse=True)
def _no_consul_environment(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(name="consul")
def consul_fixture(_plain):
    _plain.reset()
    _plain.requests.clear()
    _plain.latency = 0.0
    return _plain


@pytest.fixture(name="secured")
def secured_fixture(_secured):
    _secured.reset()
    _secured.requests.clear()
    return _secured


class Cluster:
    """Nodes with agents and services in one emulator, and a way to run the module against it."""

    def __init__(self, emulator, capsys, token=None):
        self.emulator = emulator
        self.capsys = capsys
        self.token = token
        self.agents = {}

    def node(self, name, address, services=("web",)):
        port = self.emulator.add_agent(name, address)
        self.agents[name] = f"127.0.0.1:{port}"
        for service in services:
            name, _sep, number = service.partition(":")
            body = {"Name": name, "ID": f"{name}-{number}" if number else name, "Port": 80}
            body["Check"] = {"TTL": "30s", "Status": "passing"}
            call("PUT", f"http://127.0.0.1:{port}/v1/agent/service/register", body, self.token)
        return port

    def catalog_services(self, node):
        entry = call("GET", f"{self.emulator.url}/v1/catalog/node/{node}", token=self.token)
        return sorted(entry["Services"]) if entry else None

    def in_maintenance(self, node):
        checks = call("GET", f"{self.emulator.url}/v1/health/node/{node}", token=self.token)
        return any(check["CheckID"] == "_node_maintenance" for check in checks)

    def writes(self):
        return {key: count for key, count in self.emulator.requests.items() if not key.startswith("GET ")}

    def run(self, instances, check_mode=False, diff=False, **args):
        module_args = {
            "host": "127.0.0.1",
            "port": self.emulator.port,
            "agent_addresses": self.agents,
            "instances": instances,
            "_ansible_check_mode": check_mode,
            "_ansible_diff": diff,
            **args,
        }
        if self.token:
            module_args.setdefault("token", self.token)
        with patch_module_args(module_args), pytest.raises(SystemExit):
            consul_deregister.main()
        return json.loads(self.capsys.readouterr().out)


@pytest.fixture(name="cluster")
def cluster_fixture(consul, capsys):
    return Cluster(consul, capsys)


def by_instance(result):
    return {item["instance_id"]: item for item in result["consul_deregistrations"]}


WEB1 = {"instance_id": "i-1", "private_ip": "10.0.1.5"}
WEB2 = {"instance_id": "i-2", "private_ip": "10.0.1.6"}


def test_agent_mode_deregisters_for_good_then_is_idempotent(cluster):
    cluster.node("web-1", "10.0.1.5", ["web", "api:1"])
    result = cluster.run([WEB1], mode="agent", reason="spot reclaim", diff=True)
    assert result["changed"] is True
    assert by_instance(result)["i-1"] == {
        "instance_id": "i-1",
        "private_ip": "10.0.1.5",
        "node": "web-1",
        "agent_address": cluster.agents["web-1"],
        "mode": "agent",
        "services": ["api-1", "web"],
        "maintenance": True,
        "changed": True,
        "error": None,
    }
    assert result["diff"] == {
        "before": {"web-1": {"services": ["api-1", "web"], "maintenance": False}},
        "after": {"web-1": {"services": [], "maintenance": True}},
    }
    cluster.emulator.sync()
    assert cluster.catalog_services("web-1") == []
    assert cluster.in_maintenance("web-1")
    checks = call("GET", f"{cluster.emulator.url}/v1/health/node/web-1")
    assert [check["Notes"] for check in checks if check["CheckID"] == "_node_maintenance"] == ["spot reclaim"]

    cluster.emulator.requests.clear()
    again = cluster.run([WEB1], mode="agent")
    assert again["changed"] is False
    assert by_instance(again)["i-1"]["services"] == []
    assert by_instance(again)["i-1"]["maintenance"] is True
    assert cluster.writes() == {}


def test_check_mode_writes_nothing_and_predicts(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    cluster.emulator.requests.clear()
    result = cluster.run([WEB1], check_mode=True, diff=True)
    assert result["changed"] is True
    assert by_instance(result)["i-1"]["services"] == ["web"]
    assert by_instance(result)["i-1"]["maintenance"] is True
    assert result["diff"]["after"] == {"web-1": {"services": [], "maintenance": True}}
    assert cluster.writes() == {}
    assert cluster.catalog_services("web-1") == ["web"]
    assert not cluster.in_maintenance("web-1")


def test_catalog_mode_removes_services_of_a_dead_agent(cluster):
    cluster.node("web-1", "10.0.1.5", ["web", "api"])
    cluster.emulator.stop_agent("web-1")
    result = cluster.run([WEB1], mode="catalog", services=["web"])
    assert by_instance(result)["i-1"]["services"] == ["web"]
    assert by_instance(result)["i-1"]["maintenance"] is False
    assert "warnings" not in result
    cluster.emulator.sync()
    assert cluster.catalog_services("web-1") == ["api"]
    cluster.emulator.requests.clear()
    again = cluster.run([WEB1], mode="catalog", services=["web"])
    assert again["changed"] is False
    assert cluster.writes() == {}


def test_catalog_removal_while_the_agent_lives_comes_back(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    result = cluster.run([WEB1], mode="catalog")
    assert result["changed"] is True
    assert cluster.catalog_services("web-1") == []
    # ansible-core 2.19+ returns warnings as structured events; the text is in there either way.
    assert "its agent is alive, so anti-entropy will register the services again" in json.dumps(result["warnings"])
    cluster.emulator.sync()
    assert cluster.catalog_services("web-1") == ["web"]


def test_auto_mode_picks_agent_or_catalog_and_reports_unknown_instances(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    cluster.node("web-2", "10.0.1.6", ["web"])
    cluster.emulator.stop_agent("web-2")
    unknown = {"instance_id": "i-9", "private_ip": "10.0.9.9"}
    result = cluster.run([WEB1, WEB2, unknown], timeout=2)
    found = by_instance(result)
    assert (found["i-1"]["mode"], found["i-1"]["maintenance"]) == ("agent", True)
    assert (found["i-2"]["mode"], found["i-2"]["maintenance"]) == ("catalog", False)
    assert found["i-9"] == {
        "instance_id": "i-9",
        "private_ip": "10.0.9.9",
        "node": None,
        "agent_address": None,
        "mode": None,
        "services": [],
        "maintenance": False,
        "changed": False,
        "error": None,
    }
    assert result.get("failed") is not True
    cluster.emulator.sync()
    assert cluster.catalog_services("web-1") == cluster.catalog_services("web-2") == []


def test_agent_mode_without_an_agent_fails_and_names_the_instance(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    cluster.node("web-2", "10.0.1.6", ["web"])
    cluster.emulator.stop_agent("web-2")
    result = cluster.run([WEB1, WEB2], mode="agent", timeout=2)
    assert result["failed"] is True
    assert result["msg"].startswith("Consul deregistration failed for 1 of 2 instances: i-2 (web-2): GET http://")
    assert "cannot connect" in by_instance(result)["i-2"]["error"]
    # The other instance was done all the same.
    assert by_instance(result)["i-1"]["services"] == ["web"]
    assert cluster.catalog_services("web-1") == []
    assert cluster.catalog_services("web-2") == ["web"]


def test_an_agent_of_another_node_is_refused(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    cluster.node("web-2", "10.0.1.6", ["web"])
    cluster.agents["web-1"] = cluster.agents["web-2"]
    result = cluster.run([WEB1], mode="agent")
    assert result["failed"] is True
    assert "is node 'web-2', not 'web-1': nothing was changed" in result["msg"]
    assert cluster.catalog_services("web-1") == cluster.catalog_services("web-2") == ["web"]


def test_validation_fails_before_any_request(cluster):
    result = cluster.run([{"instance_id": "i-1", "private_ip": "nope"}])
    assert result["failed"] is True
    assert result["msg"] == ("instances[0].private_ip: 'nope' is not allowed; use the instance's private IP address")
    assert cluster.emulator.requests == {}


def test_consul_http_addr_is_the_default_endpoint(cluster, monkeypatch):
    cluster.node("web-1", "10.0.1.5", ["web"])
    monkeypatch.setenv("CONSUL_HTTP_ADDR", cluster.emulator.url)
    module_args = {"instances": [WEB1], "agent_addresses": cluster.agents}
    with patch_module_args(module_args), pytest.raises(SystemExit):
        consul_deregister.main()
    result = json.loads(cluster.capsys.readouterr().out)
    assert by_instance(result)["i-1"]["services"] == ["web"]
    assert cluster.catalog_services("web-1") == []


def test_catalog_read_error_is_surfaced(cluster):
    result = cluster.run([WEB1], port=1, timeout=1)
    assert result["failed"] is True
    assert result["msg"].startswith("Failed to read the Consul catalog: GET http://127.0.0.1:1/v1/catalog/nodes failed")


def test_deadline_stops_the_run(cluster):
    cluster.node("web-1", "10.0.1.5", ["web"])
    # An "agent" that accepts connections and never answers: the request waits until the deadline cuts it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        cluster.agents["web-1"] = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = cluster.run([WEB1], mode="agent", deadline=1, timeout=30)
        elapsed = time.monotonic() - started
    assert result["failed"] is True
    error = by_instance(result)["i-1"]["error"]
    assert error.startswith(f"GET http://{cluster.agents['web-1']}/v1/agent/self failed: ")
    assert "timed out" in error
    # The 30-second request timeout was cut to what was left of the 1-second deadline.
    assert elapsed < 5
    assert cluster.catalog_services("web-1") == ["web"]


def test_a_batch_of_many_instances_in_one_run(cluster):
    instances = []
    for number in range(60):
        address = f"10.0.2.{number + 1}"
        cluster.node(f"node-{number}", address, ["web", "api"])
        instances.append({"instance_id": f"i-{number:03d}", "private_ip": address})
    result = cluster.run(instances, concurrency=16)
    assert result["changed"] is True
    assert all(item["services"] == ["api", "web"] for item in result["consul_deregistrations"])
    assert cluster.emulator.requests["GET /v1/catalog/nodes"] == 1
    cluster.emulator.sync()
    assert call("GET", f"{cluster.emulator.url}/v1/catalog/services") == {"consul": []}


# -- ACLs ------------------------------------------------------------------------------------------
def token_with(emulator, *policies):
    created = call(
        "PUT",
        f"{emulator.url}/v1/acl/token",
        {"Policies": [{"Name": name} for name in policies]},
        MANAGEMENT,
    )
    return created["SecretID"]


def test_acl_token_from_the_environment(secured, capsys, monkeypatch):
    cluster = Cluster(secured, capsys, token=MANAGEMENT)
    cluster.node("web-1", "10.0.1.5", ["web"])
    cluster.token = None
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", MANAGEMENT)
    result = cluster.run([WEB1])
    assert by_instance(result)["i-1"]["services"] == ["web"]
    assert MANAGEMENT not in json.dumps(result)


def test_acl_missing_token_is_surfaced(secured, capsys):
    cluster = Cluster(secured, capsys)
    result = cluster.run([WEB1])
    assert result["failed"] is True
    assert result["msg"] == (
        f"Failed to read the Consul catalog: GET http://127.0.0.1:{secured.port}/v1/catalog/nodes "
        "answered HTTP 403: ACL not found"
    )


def test_acl_denied_write_is_surfaced_with_status_and_body(secured, capsys):
    cluster = Cluster(secured, capsys, token=MANAGEMENT)
    cluster.node("web-1", "10.0.1.5", ["web"])
    node_writer = token_with(secured, "node-write")
    result = cluster.run([WEB1], token=node_writer)
    assert result["failed"] is True
    error = by_instance(result)["i-1"]["error"]
    assert "/v1/agent/service/deregister/web answered HTTP 403: Permission denied" in error
    assert "lacks permission 'service:write' on \"web\"" in result["msg"]
    # What could be done was done: maintenance is on, and reported so.
    assert by_instance(result)["i-1"]["maintenance"] is True
    assert result["changed"] is True
    assert cluster.in_maintenance("web-1")
    assert cluster.catalog_services("web-1") == ["web"]
    assert node_writer not in json.dumps(result)
