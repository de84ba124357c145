# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""k8s_drain_nodes against the world's Kubernetes API emulator, in process: outcomes in the cluster, not calls."""

from __future__ import annotations

import pathlib
import sys

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import k8s_drain_nodes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "world"))

# The world is test support outside the collection's plugins.
from spotmax_world.kubernetes import KubernetesEmulator

TAINT = {"key": "spotmax.io/interruption", "value": "spot", "effect": "NoSchedule"}
ENV = ("KUBECONFIG", "K8S_AUTH_KUBECONFIG", "K8S_AUTH_HOST", "K8S_AUTH_API_KEY", "K8S_AUTH_CONTEXT")


def instance(n):
    return f"i-{n:017x}"


@pytest.fixture(scope="module")
def _server():
    emulator = KubernetesEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(name="k8s")
def k8s_fixture(_server, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    _server.reset()
    _server.reset_request_counts()
    _server.set_pod_termination_seconds(0)
    _server.reschedule_evicted_pods = False
    return _server


@pytest.fixture(name="drain")
def drain_fixture(k8s, run_module):
    def run(check_mode=False, diff=False, **args):
        connection = {"host": k8s.url, "api_key": k8s.token}
        return run_module(k8s_drain_nodes, {**connection, **args}, check_mode=check_mode, diff=diff)

    return run


def writes(k8s):
    return {key: n for key, n in k8s.request_counts().items() if key.split()[0] in ("POST", "PUT", "PATCH", "DELETE")}


def seed_node(k8s, n, pods=2, **node_args):
    name = f"node-{n}"
    k8s.add_node(name, provider_id=f"aws:///us-east-1a/{instance(n)}", **node_args)
    for p in range(pods):
        k8s.add_pod(f"web-{n}-{p}", node_name=name, labels={"app": "web"}, owner_kind="ReplicaSet", owner_name="web")
    return name


def pods_on(k8s, node):
    return sorted(
        f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        for p in k8s.list_objects("pods")
        if p["spec"].get("nodeName") == node
    )


def test_drain_cordons_taints_evicts_and_reports(k8s, drain):
    k8s.add_daemonset("logs")
    first, second = seed_node(k8s, 1), seed_node(k8s, 2)
    k8s.add_pod("logs-1", "kube-system", node_name=first, owner_kind="DaemonSet", owner_name="logs")
    k8s.add_pod("etcd-1", "kube-system", node_name=first, mirror=True)
    k8s.add_pod("bare", node_name=second)
    k8s.add_pod("done", node_name=second, owner_kind="Job", owner_name="j", phase="Succeeded")

    result = drain(instance_ids=[instance(1), instance(2), instance(9)], diff=True)

    assert result["changed"] is True
    assert result["missing"] == [instance(9)]
    by_name = {n["name"]: n for n in result["nodes"]}
    assert by_name[first]["evicted"] == ["default/web-1-0", "default/web-1-1"]
    assert by_name[second]["not_evicted"][0]["pod"] == "default/bare"
    assert "delete_options.force" in by_name[second]["not_evicted"][0]["reason"]
    assert by_name[first]["instance_id"] == instance(1)
    assert all(n["cordoned"] and n["tainted"] and not n["deleted"] for n in result["nodes"])
    for name in (first, second):
        stored = k8s.get_object("nodes", name)
        assert stored["spec"]["unschedulable"] is True
        assert stored["spec"]["taints"] == [TAINT]
    assert pods_on(k8s, first) == ["kube-system/etcd-1", "kube-system/logs-1"]
    assert pods_on(k8s, second) == ["default/bare", "default/done"]
    assert result["diff"]["before"][first]["unschedulable"] is False
    assert result["diff"]["before"][first]["pods"] == [
        "default/web-1-0",
        "default/web-1-1",
        "kube-system/etcd-1",
        "kube-system/logs-1",
    ]
    assert result["diff"]["after"][first] == {
        "unschedulable": True,
        "taints": [TAINT],
        "pods": ["kube-system/etcd-1", "kube-system/logs-1"],
    }

    k8s.reset_request_counts()
    again = drain(instance_ids=[instance(1), instance(2)])
    assert again["changed"] is False
    assert writes(k8s) == {}
    assert {n["name"]: n["not_evicted"] for n in again["nodes"]}[second][0]["pod"] == "default/bare"


def test_check_mode_writes_nothing(k8s, drain):
    name = seed_node(k8s, 1)
    result = drain(node_names=[name], check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["nodes"][0]["evicted"] == ["default/web-1-0", "default/web-1-1"]
    assert result["nodes"][0]["cordoned"] is True
    assert result["diff"]["after"][name]["unschedulable"] is True
    assert writes(k8s) == {}
    assert not k8s.get_object("nodes", name)["spec"].get("unschedulable")
    assert pods_on(k8s, name) == ["default/web-1-0", "default/web-1-1"]


def test_cordoned_keeps_pods_and_replaces_the_value_of_the_same_taint(k8s, drain):
    old = {"key": TAINT["key"], "value": "rebalance", "effect": "NoSchedule"}
    other = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    name = seed_node(k8s, 1, taints=[other, old])
    result = drain(node_names=[name], state="cordoned")
    assert result["changed"] is True
    assert result["nodes"][0]["evicted"] == []
    assert k8s.get_object("nodes", name)["spec"]["taints"] == [other, TAINT]
    assert pods_on(k8s, name) == ["default/web-1-0", "default/web-1-1"]


def test_pdb_refusals_are_reported_when_the_timeout_is_short(k8s, drain):
    name = seed_node(k8s, 1, pods=3)
    k8s.add_pdb("web", match_labels={"app": "web"}, min_available=2)
    result = drain(node_names=[name], drain_timeout=1.5)
    node = result["nodes"][0]
    assert len(node["evicted"]) == 1
    assert len(node["not_evicted"]) == 2
    assert all("PodDisruptionBudget" in entry["reason"] for entry in node["not_evicted"])
    assert len(pods_on(k8s, name)) == 2
    assert 1.0 <= node["seconds"] < 10


def test_pdb_refusals_are_retried_until_replacements_are_healthy(k8s, drain):
    name = seed_node(k8s, 1, pods=3)
    k8s.add_node("spare")
    k8s.add_pdb("web", match_labels={"app": "web"}, max_unavailable=1)
    k8s.set_pod_termination_seconds(0.5)
    k8s.reschedule_evicted_pods = True
    result = drain(node_names=[name], drain_timeout=30, delete_options={"wait_timeout": 10, "wait_sleep": 1})
    node = result["nodes"][0]
    assert len(node["evicted"]) == 3
    assert node["not_evicted"] == []
    assert node["terminating"] == []
    assert pods_on(k8s, name) == []
    assert len(pods_on(k8s, "spare")) == 3


def test_absent_deletes_the_node_and_its_pods_but_daemonset_pods(k8s, drain):
    k8s.add_daemonset("logs")
    name = seed_node(k8s, 1)
    k8s.add_pod("logs-1", "kube-system", node_name=name, owner_kind="DaemonSet", owner_name="logs")
    k8s.add_pdb("web", match_labels={"app": "web"}, min_available=2)  # no eviction: budgets do not apply

    checked = drain(instance_ids=[instance(1)], state="absent", check_mode=True)
    assert checked["changed"] is True
    assert k8s.get_object("nodes", name) is not None

    result = drain(instance_ids=[instance(1)], state="absent", diff=True)
    assert result["changed"] is True
    assert result["nodes"][0]["deleted"] is True
    assert result["nodes"][0]["evicted"] == ["default/web-1-0", "default/web-1-1"]
    assert result["diff"]["after"] == {}
    assert k8s.get_object("nodes", name) is None
    assert pods_on(k8s, name) == ["kube-system/logs-1"]

    again = drain(instance_ids=[instance(1)], state="absent")
    assert again["changed"] is False
    assert again["missing"] == [instance(1)]


def test_invalid_input_fails_before_any_request(k8s, drain):
    result = drain(instance_ids=["i-nope"])
    assert result["failed"] is True
    assert "instance_ids[0]: 'i-nope' is not allowed" in result["msg"]
    result = drain(instance_ids=[], node_names=[])
    assert "instance_ids, node_names" in result["msg"]
    assert k8s.request_counts() == {}


def test_api_errors_fail_and_name_the_server(k8s, run_module):
    result = run_module(k8s_drain_nodes, {"host": k8s.url, "api_key": "wrong", "node_names": ["node-1"]})
    assert result["failed"] is True
    assert "Failed to list the nodes" in result["msg"]
    assert "401" in result["msg"]


def test_other_eviction_errors_fail_with_node_pod_and_partial_results(k8s, drain):
    name = seed_node(k8s, 1, pods=1)
    k8s.add_pdb("web-a", match_labels={"app": "web"}, max_unavailable=1)
    k8s.add_pdb("web-b", match_labels={"app": "web"}, max_unavailable=1)  # two budgets: the API answers 500
    result = drain(node_names=[name])
    assert result["failed"] is True
    assert f"node {name}: evict pod default/web-1-0: 500 This pod has more than one" in result["msg"]
    assert result["nodes"][0]["cordoned"] is True
    assert k8s.get_object("nodes", name)["spec"]["unschedulable"] is True
    assert pods_on(k8s, name) == ["default/web-1-0"]
