"""The pods-by-node index of the Kubernetes emulator answers exactly what a scan of every pod would."""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from spotmax_world.kubernetes import NODE_NAME_FIELD, KubernetesEmulator, PodStore, pod_healthy
from spotmax_world.kubernetes_selectors import field_value, label_selector_object, parse_field_selector

NODES = ("node-a", "node-b", "node-c")


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubernetesEmulator]:
    server = KubernetesEmulator()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def core(emulator: KubernetesEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.CoreV1Api]:
    kubeconfig = pathlib.Path(emulator.write_kubeconfig(tmp_path_factory.mktemp("index") / "kubeconfig"))
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = client.ApiClient(configuration)
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(autouse=True)
def clean(emulator: KubernetesEmulator) -> None:
    emulator.reset()
    emulator.set_pod_termination_seconds(0)
    emulator.reschedule_evicted_pods = False


def scanned(emulator: KubernetesEmulator, selector: str, namespace: str | None = None) -> list[tuple[str, str]]:
    """(namespace, name) of the pods ``selector`` matches, found by testing every stored pod."""
    matches = parse_field_selector(selector, "pods")
    return [
        (pod["metadata"]["namespace"], pod["metadata"]["name"])
        for pod in emulator.list_objects("pods", namespace)
        if matches(pod)
    ]


def listed(core: client.CoreV1Api, selector: str, namespace: str | None = None) -> list[tuple[str, str]]:
    """(namespace, name) of the pods the API lists for ``selector``, in the API's order."""
    if namespace is None:
        items = core.list_pod_for_all_namespaces(field_selector=selector).items
    else:
        items = core.list_namespaced_pod(namespace, field_selector=selector).items
    return [(pod.metadata.namespace, pod.metadata.name) for pod in items]


def assert_lists_match_scan(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    """Every node's list (alone and with other selectors) equals the scan, and the index is exact."""
    selectors = [f"spec.nodeName={node}" for node in (*NODES, "")]
    selectors += [f"spec.nodeName=={node},status.phase!=Succeeded" for node in NODES]
    selectors += [f"metadata.namespace=apps,spec.nodeName={node}" for node in NODES]
    selectors += ["spec.nodeName=node-a,spec.nodeName=node-b", "spec.nodeName!=node-a"]
    for selector in selectors:
        assert listed(core, selector) == scanned(emulator, selector), selector
        assert listed(core, selector, "apps") == scanned(emulator, selector, "apps"), selector
    with emulator.lock:
        store = emulator._store["pods"]  # pylint: disable=protected-access  # the index itself is under test
        assert isinstance(store, PodStore)
        assert_indexes_exact(store)


def assert_indexes_exact(store: PodStore) -> None:
    by_node: dict[str, set[tuple[str, str]]] = {}
    by_label: dict[tuple[str, Any], set[tuple[str, str]]] = {}
    for key, pod in store.items():
        by_node.setdefault(field_value(pod, NODE_NAME_FIELD), set()).add(key)
        for pair in ((pod.get("metadata") or {}).get("labels") or {}).items():
            by_label.setdefault(pair, set()).add(key)
    assert store.by_node == by_node
    assert store.by_label == by_label


def on_node(core: client.CoreV1Api, node: str) -> set[str]:
    return {name for _namespace, name in listed(core, f"spec.nodeName={node}")}


def seed(emulator: KubernetesEmulator) -> None:
    emulator.add_namespace("apps")
    for node in NODES:
        emulator.add_node(node)
    for index in range(4):
        for node in NODES:
            emulator.add_pod(f"{node}-{index}", node_name=node, labels={"app": "web"}, owner_kind="ReplicaSet")
    emulator.add_pod("apps-a", "apps", node_name="node-a", labels={"app": "db"})
    emulator.add_pod("apps-done", "apps", node_name="node-a", phase="Succeeded", ready=False)
    emulator.add_pod("unbound", phase="Pending", ready=False)


def test_created_pods_are_listed_by_node(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="posted"),
        spec=client.V1PodSpec(node_name="node-b", containers=[client.V1Container(name="main", image="pause")]),
    )
    core.create_namespaced_pod("default", pod)
    pod.metadata.name = "dry"
    core.create_namespaced_pod("default", pod, dry_run="All")  # answered, not stored
    assert on_node(core, "node-a") == {"node-a-0", "node-a-1", "node-a-2", "node-a-3", "apps-a", "apps-done"}
    assert "posted" in on_node(core, "node-b")
    assert "dry" not in on_node(core, "node-b")
    assert on_node(core, "") == {"unbound"}
    assert on_node(core, "node-unknown") == set()
    assert_lists_match_scan(emulator, core)


def test_moved_deleted_and_evicted_pods_leave_their_node(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    # Moved by a patch and by replaces (one of them binds the unbound pod).
    core.patch_namespaced_pod("node-a-0", "default", {"spec": {"nodeName": "node-b"}})
    replaced = core.read_namespaced_pod("node-a-1", "default")
    replaced.spec.node_name = "node-c"
    core.replace_namespaced_pod("node-a-1", "default", replaced)
    unbound = core.read_namespaced_pod("unbound", "default")
    unbound.spec.node_name = "node-a"
    core.replace_namespaced_pod("unbound", "default", unbound)
    # A dry-run move changes nothing.
    core.patch_namespaced_pod("node-a-2", "default", {"spec": {"nodeName": "node-b"}}, dry_run="All")
    # Deleted, evicted, evicted in dry run.
    core.delete_namespaced_pod("node-b-0", "default", grace_period_seconds=0)
    core.create_namespaced_pod_eviction("node-b-1", "default", client.V1Eviction())
    core.create_namespaced_pod_eviction(
        "node-b-2", "default", client.V1Eviction(delete_options=client.V1DeleteOptions(dry_run=["All"]))
    )

    assert on_node(core, "node-a") == {"node-a-2", "node-a-3", "apps-a", "apps-done", "unbound"}
    assert on_node(core, "node-b") == {"node-a-0", "node-b-2", "node-b-3"}
    assert on_node(core, "node-c") == {"node-a-1", "node-c-0", "node-c-1", "node-c-2", "node-c-3"}
    assert on_node(core, "") == set()
    assert_lists_match_scan(emulator, core)


def test_terminating_pods_stay_listed_until_they_are_gone(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    emulator.set_pod_termination_seconds(0.3)
    core.create_namespaced_pod_eviction("node-a-0", "default", client.V1Eviction())
    core.delete_namespaced_pod("node-a-1", "default", grace_period_seconds=30)
    assert {"node-a-0", "node-a-1"} <= on_node(core, "node-a")
    assert_lists_match_scan(emulator, core)
    deadline = time.monotonic() + 5
    while {"node-a-0", "node-a-1"} & on_node(core, "node-a"):
        assert time.monotonic() < deadline, "the terminating pods never went away"
        time.sleep(0.05)
    assert_lists_match_scan(emulator, core)


def test_rescheduled_pods_appear_on_their_new_node(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    emulator.reschedule_evicted_pods = True
    core.patch_node("node-b", {"spec": {"unschedulable": True}})
    core.patch_node("node-c", {"spec": {"unschedulable": True}})
    for index in range(4):
        core.create_namespaced_pod_eviction(f"node-b-{index}", "default", client.V1Eviction())
    moved = on_node(core, "node-a") - {"node-a-0", "node-a-1", "node-a-2", "node-a-3", "apps-a", "apps-done"}
    assert len(moved) == 4 and all(name.startswith("node-b-") for name in moved)
    assert on_node(core, "node-b") == set()
    assert_lists_match_scan(emulator, core)


def test_deleted_namespace_and_reset_empty_the_index(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    core.delete_namespace("apps")
    assert not {"apps-a", "apps-done"} & on_node(core, "node-a")
    assert_lists_match_scan(emulator, core)
    emulator.reset()
    for node in (*NODES, ""):
        assert on_node(core, node) == set()
    assert_lists_match_scan(emulator, core)


def test_indexed_list_pages_like_a_scan(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    first = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a", limit=4)
    assert first.metadata.remaining_item_count == 2
    rest = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a", _continue=first.metadata._continue)
    names = [(p.metadata.namespace, p.metadata.name) for p in [*first.items, *rest.items]]
    assert names == scanned(emulator, "spec.nodeName=node-a")
    labelled = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a", label_selector="app=db")
    assert [p.metadata.name for p in labelled.items] == ["apps-a"]


def test_pod_store_keeps_the_index_through_every_mutation() -> None:
    def pod(node: str | None) -> dict[str, Any]:
        return {"metadata": {"labels": {"on": node or "none"}}, "spec": {} if node is None else {"nodeName": node}}

    store = PodStore()

    def check() -> None:
        assert_indexes_exact(store)

    store[("d", "p1")] = pod("a")
    store[("d", "p2")] = pod("a")
    store[("d", "p1")] = pod("b")
    check()
    del store[("d", "p2")]
    check()
    assert store.pop(("d", "p1"))["spec"]["nodeName"] == "b"
    assert store.pop(("d", "p1"), None) is None
    with pytest.raises(KeyError):
        store.pop(("d", "p1"))
    check()
    store.update({("d", "p3"): pod(None)}, **{})
    store.setdefault(("d", "p3"), pod("ignored"))
    store.setdefault(("d", "p4"), pod("c"))
    store |= {("d", "p5"): pod("c")}
    check()
    assert store.keys_on("c") == {("d", "p4"), ("d", "p5")}
    store.popitem()
    check()
    store.clear()
    check()
    assert store.by_node == {} and store.by_label == {}


def test_large_answers_arrive_whole(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    """Answers larger than the response buffer still go out complete (JSON the client can parse)."""
    for index in range(300):
        emulator.add_pod(f"big-{index:03d}", node_name="node-a", labels={"padding": "x" * 60})
    answer = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a", _preload_content=False)
    body = answer.data
    assert len(body) > 64 * 1024
    assert len(json.loads(body)["items"]) == 300


def scanned_budget(emulator: KubernetesEmulator, name: str, namespace: str = "default") -> tuple[int, int]:
    """(expected pods, healthy pods) of a budget, counted by testing every stored pod."""
    pdb = emulator.get_object("poddisruptionbudgets", name, namespace)
    assert pdb is not None
    select = label_selector_object(pdb["spec"].get("selector"))
    pods = [pod for pod in emulator.list_objects("pods", namespace) if select(pod)]
    return len(pods), sum(1 for pod in pods if pod_healthy(pod))


def test_budgets_count_the_pods_a_scan_would(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    seed(emulator)
    emulator.add_pod("other-ns-web", "apps", node_name="node-b", labels={"app": "web"})
    emulator.add_pod("numbered", node_name="node-b", labels={"app": "web", "shard": 2})  # type: ignore[dict-item]
    emulator.add_pdb("web", match_labels={"app": "web"}, max_unavailable=1)
    emulator.add_pdb("web-on-a", match_labels={"app": "web", "on": "a"}, min_available=1)
    emulator.add_pdb("shard", match_labels={"shard": 2}, min_available=0)  # type: ignore[dict-item]
    emulator.add_pdb("nobody", match_labels={"app": "nobody"}, max_unavailable=1)
    emulator.create_object(
        "poddisruptionbudgets",
        {
            "metadata": {"name": "web-not-on-a"},
            "spec": {
                "selector": {
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "on", "operator": "NotIn", "values": ["a"]}],
                },
                "maxUnavailable": 1,
            },
        },
    )
    emulator.add_pdb("everyone", match_labels={}, max_unavailable=1)
    budgets = ("web", "web-on-a", "shard", "nobody", "web-not-on-a", "everyone")

    def check() -> None:
        for name in budgets:
            pdb = emulator.get_object("poddisruptionbudgets", name, "default")
            assert pdb is not None
            status = pdb["status"]
            assert (status["expectedPods"], status["currentHealthy"]) == scanned_budget(emulator, name), name
        with emulator.lock:
            assert_indexes_exact(emulator._store["pods"])  # type: ignore[arg-type]  # pylint: disable=protected-access

    check()
    assert scanned_budget(emulator, "shard") == (1, 1)
    for index in range(2):
        core.patch_namespaced_pod(f"node-a-{index}", "default", {"metadata": {"labels": {"on": "a"}}})
    check()
    core.patch_namespaced_pod("node-a-0", "default", {"metadata": {"labels": {"app": "db"}}})
    core.patch_namespaced_pod("node-a-1", "default", {"metadata": {"labels": {"on": None}}})
    core.delete_namespaced_pod("node-b-0", "default", grace_period_seconds=0)
    core.create_namespaced_pod_eviction("apps-a", "apps", client.V1Eviction())
    emulator.set_pod_status("node-c-1", ready=False)
    check()
    assert scanned_budget(emulator, "web") == (11, 10)
    emulator.reset()
    emulator.add_pdb("web", match_labels={"app": "web"}, max_unavailable=1)
    budgets = ("web",)
    check()
