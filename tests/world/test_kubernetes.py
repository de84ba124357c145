"""The Kubernetes API emulator, driven through the official ``kubernetes`` client as kubernetes.core does."""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError

from spotmax_world.kubernetes import KubernetesEmulator

PDB_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."


def client_configuration(kubeconfig: pathlib.Path) -> client.Configuration:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return configuration


def control(emulator: KubernetesEmulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call a test-control endpoint (no token) with the standard library."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{emulator.port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def status_of(answer: Any) -> str:
    """``status`` of a delete's Status answer (a V1Status in kubernetes 36, a plain dict in 37)."""
    return str(answer["status"] if isinstance(answer, dict) else answer.status)


def api_error(call: Any, *args: Any, **kwargs: Any) -> tuple[ApiException, Any]:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return caught.value, json.loads(caught.value.body)


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubernetesEmulator]:
    server = KubernetesEmulator()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("kubernetes")


@pytest.fixture(scope="module")
def api_client(emulator: KubernetesEmulator, workdir: pathlib.Path) -> Iterator[client.ApiClient]:
    kubeconfig = pathlib.Path(emulator.write_kubeconfig(workdir / "kubeconfig"))
    api = client.ApiClient(client_configuration(kubeconfig))
    yield api
    api.close()


@pytest.fixture(autouse=True)
def clean(emulator: KubernetesEmulator) -> None:
    emulator.reset()
    emulator.set_latency(0)
    emulator.set_pod_termination_seconds(0)
    emulator.reschedule_evicted_pods = False


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def policy(api_client: client.ApiClient) -> client.PolicyV1Api:
    return client.PolicyV1Api(api_client)


@pytest.fixture(scope="module")
def dynamic(api_client: client.ApiClient, workdir: pathlib.Path) -> DynamicClient:
    return DynamicClient(api_client, cache_file=str(workdir / "discovery.json"))


def web_pods(emulator: KubernetesEmulator, count: int, node: str = "node-a", ready: bool = True) -> None:
    for index in range(count):
        emulator.add_pod(f"web-{index}", node_name=node, labels={"app": "web"}, owner_kind="ReplicaSet", ready=ready)


# -- auth, discovery, kubeconfig --------------------------------------------------------------
def test_api_requires_the_bearer_token(emulator: KubernetesEmulator, api_client: client.ApiClient) -> None:
    expected = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    for api_key in ({}, {"BearerToken": "Bearer not-the-token"}):
        configuration = client.Configuration()
        configuration.host = api_client.configuration.host
        configuration.api_key = dict(api_key)
        with client.ApiClient(configuration) as anonymous:
            exc, body = api_error(client.CoreV1Api(anonymous).list_node)
        assert exc.status == 401
        assert body == expected
    assert client.CoreV1Api(api_client).list_node().items == []
    assert control(emulator, "GET", "/_emulator/requests")[0] == 200


def test_kubeconfig_shape(emulator: KubernetesEmulator) -> None:
    kubeconfig = emulator.kubeconfig("ctx")
    assert kubeconfig["current-context"] == "ctx"
    assert kubeconfig["clusters"][0]["cluster"] == {"server": emulator.url}
    assert kubeconfig["users"][0]["user"] == {"token": emulator.token}
    assert emulator.url.startswith("http://127.0.0.1:")


def test_discovery_through_the_dynamic_client(dynamic: DynamicClient, emulator: KubernetesEmulator) -> None:
    assert dynamic.version["kubernetes"]["gitVersion"].startswith("v1.")
    nodes = dynamic.resources.get(api_version="v1", kind="Node")
    assert (nodes.namespaced, nodes.name, nodes.short_names) == (False, "nodes", ["no"])
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    assert {"eviction", "status"} <= set(pods.subresources)
    assert pods.subresources["eviction"].verbs == ["create"]
    pdbs = dynamic.resources.get(api_version="policy/v1", kind="PodDisruptionBudget")
    assert pdbs.namespaced and "status" in pdbs.subresources
    assert dynamic.resources.get(api_version="apps/v1", kind="DaemonSet").name == "daemonsets"
    names = {ns.metadata.name for ns in dynamic.resources.get(api_version="v1", kind="Namespace").get().items}
    assert {"default", "kube-system"} <= names

    emulator.add_pod("web-0", node_name="node-a", labels={"app": "web"})
    listed = pods.get(namespace="default", label_selector="app=web")
    assert listed.kind == "PodList"
    assert [p.metadata.name for p in listed.items] == ["web-0"]
    assert int(listed.metadata.resourceVersion) >= int(listed.items[0].metadata.resourceVersion)


def test_tls_through_the_kubeconfig_ca(workdir: pathlib.Path) -> None:
    server = KubernetesEmulator(token="tls-token", tls=True)
    server.start()
    try:
        kubeconfig = server.kubeconfig()
        assert server.url.startswith("https://127.0.0.1:")
        assert "certificate-authority-data" in kubeconfig["clusters"][0]["cluster"]
        path = pathlib.Path(server.write_kubeconfig(workdir / "kubeconfig-tls"))
        configuration = client_configuration(path)
        assert configuration.verify_ssl and configuration.ssl_ca_cert
        with client.ApiClient(configuration) as api:
            names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
        assert "kube-system" in names

        # The certificate really is checked: without the CA the handshake fails, with it it works.
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1").close()
        trusted = ssl.create_default_context(cadata=(server.ca_pem or b"").decode())
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            with trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        server.stop()


# -- nodes ------------------------------------------------------------------------------------
def test_node_cordon_and_taint_by_patch(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.add_node("node-a", provider_id="aws:///us-east-1a/i-0abc", labels={"pool": "spot"})
    emulator.add_node("node-b", provider_id="aws:///us-east-1b/i-0def", labels={"pool": "od"})
    before = core.read_node("node-a")

    taint = {"key": "spotmax.io/draining", "value": "true", "effect": "NoSchedule"}
    cordoned = core.patch_node("node-a", {"spec": {"unschedulable": True, "taints": [taint]}})  # strategic merge
    assert cordoned.spec.unschedulable is True
    assert [(t.key, t.value, t.effect) for t in cordoned.spec.taints] == [("spotmax.io/draining", "true", "NoSchedule")]
    assert cordoned.spec.provider_id == "aws:///us-east-1a/i-0abc"
    assert int(cordoned.metadata.resource_version) > int(before.metadata.resource_version)

    labelled = core.patch_node(
        "node-a",
        {"metadata": {"labels": {"pool": None, "spotmax.io/state": "draining"}, "annotations": {"a": "1"}}},
        _content_type="application/merge-patch+json",
    )
    assert labelled.metadata.labels.get("pool") is None
    assert labelled.metadata.labels["spotmax.io/state"] == "draining"

    patched = core.patch_node(
        "node-a",
        [{"op": "remove", "path": "/spec/taints/0"}, {"op": "add", "path": "/metadata/annotations/b", "value": "2"}],
    )
    assert not patched.spec.taints
    assert patched.metadata.annotations == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(labelled.metadata.resource_version)

    exc, body = api_error(core.patch_node, "node-a", [{"op": "test", "path": "/spec/unschedulable", "value": False}])
    assert (exc.status, body["reason"]) == (422, "Invalid")

    # A no-op patch is not a write: the real server keeps the resourceVersion too.
    same = core.patch_node("node-a", {"spec": {"unschedulable": True}})
    assert same.metadata.resource_version == patched.metadata.resource_version

    assert [n.metadata.name for n in core.list_node(label_selector="spotmax.io/state=draining").items] == ["node-a"]
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=node-b").items] == ["node-b"]
    assert [n.metadata.name for n in core.list_node(field_selector="spec.unschedulable=true").items] == ["node-a"]

    assert status_of(core.delete_node("node-b")) == "Success"
    exc, body = api_error(core.read_node, "node-b")
    assert exc.status == 404
    assert body["message"] == 'nodes "node-b" not found'
    assert body["details"] == {"name": "node-b", "kind": "nodes"}


# -- pods ---------------------------------------------------------------------------------------
def test_pods_by_field_and_label_selector(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.add_namespace("apps")
    emulator.add_pod("a-web", node_name="node-a", labels={"app": "web", "tier": "front"})
    emulator.add_pod("a-db", "apps", node_name="node-a", labels={"app": "db"})
    emulator.add_pod("a-done", "apps", node_name="node-a", labels={"app": "job"}, phase="Succeeded", ready=False)
    emulator.add_pod("b-web", node_name="node-b", labels={"app": "web", "tier": "cache"})
    emulator.add_pod("pending", labels={"app": "web"}, phase="Pending", ready=False)

    def names(pods: Any) -> list[str]:
        return sorted(p.metadata.name for p in pods.items)

    assert names(core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a")) == ["a-db", "a-done", "a-web"]
    on_a_running = core.list_pod_for_all_namespaces(field_selector="spec.nodeName==node-a,status.phase!=Succeeded")
    assert names(on_a_running) == ["a-db", "a-web"]
    assert names(core.list_namespaced_pod("apps", field_selector="spec.nodeName=node-a")) == ["a-db", "a-done"]
    assert names(core.list_pod_for_all_namespaces(field_selector="metadata.namespace=apps,metadata.name=a-db")) == [
        "a-db"
    ]
    assert names(core.list_pod_for_all_namespaces(field_selector="spec.nodeName=")) == ["pending"]
    assert names(core.list_pod_for_all_namespaces(label_selector="app in (web,db),tier!=cache")) == [
        "a-db",
        "a-web",
        "pending",
    ]
    assert names(core.list_pod_for_all_namespaces(label_selector="tier,app notin (db)")) == ["a-web", "b-web"]
    assert names(core.list_pod_for_all_namespaces(label_selector="!tier")) == ["a-db", "a-done", "pending"]

    exc, body = api_error(core.list_pod_for_all_namespaces, field_selector="spec.bogus=x")
    assert (exc.status, body["reason"], body["message"]) == (400, "BadRequest", "field label not supported: spec.bogus")

    first = core.list_pod_for_all_namespaces(limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    rest = core.list_pod_for_all_namespaces(limit=10, _continue=first.metadata._continue)
    assert len(first.items) + len(rest.items) == 5 and not rest.metadata._continue


def test_pod_delete_honours_grace_period(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.set_pod_termination_seconds(0.3)
    emulator.add_pod("slow", node_name="node-a")
    emulator.add_pod("now", node_name="node-a")
    emulator.add_pod("body", node_name="node-a")
    emulator.add_pod("unscheduled")

    answer = core.delete_namespaced_pod("slow", "default", grace_period_seconds=30)
    assert answer.metadata.deletion_grace_period_seconds == 30
    assert answer.metadata.deletion_timestamp is not None
    terminating = core.read_namespaced_pod("slow", "default")
    assert terminating.metadata.deletion_timestamp is not None
    assert "slow" in [p.metadata.name for p in core.list_namespaced_pod("default").items]

    core.delete_namespaced_pod("now", "default", grace_period_seconds=0)
    core.delete_namespaced_pod("body", "default", body=client.V1DeleteOptions(grace_period_seconds=0))
    core.delete_namespaced_pod("unscheduled", "default")  # never scheduled: goes at once whatever the grace
    for name in ("now", "body", "unscheduled"):
        exc, body = api_error(core.read_namespaced_pod, name, "default")
        assert (exc.status, body["reason"], body["details"]) == (404, "NotFound", {"name": name, "kind": "pods"})

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_pod("slow", "default")
        except ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.05)
    else:
        pytest.fail("the terminating pod never went away")


# -- eviction and PodDisruptionBudgets ----------------------------------------------------
def test_eviction_allowed_then_refused_by_the_budget(
    emulator: KubernetesEmulator, core: client.CoreV1Api, policy: client.PolicyV1Api
) -> None:
    web_pods(emulator, 3)
    policy.create_namespaced_pod_disruption_budget(
        "default",
        client.V1PodDisruptionBudget(
            metadata=client.V1ObjectMeta(name="web-pdb"),
            spec=client.V1PodDisruptionBudgetSpec(
                min_available=2, selector=client.V1LabelSelector(match_labels={"app": "web"})
            ),
        ),
    )

    def evict(name: str) -> Any:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
        return core.create_namespaced_pod_eviction(name, "default", body)

    evict("web-0")
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["web-1", "web-2"]

    exc, body = api_error(evict, "web-1")
    assert exc.status == 429
    assert exc.reason == "Too Many Requests"
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": PDB_MESSAGE,
        "reason": "TooManyRequests",
        "details": {
            "causes": [
                {
                    "reason": "DisruptionBudget",
                    "message": "The disruption budget web-pdb needs 2 healthy pods and has 2 currently",
                }
            ]
        },
        "code": 429,
    }
    assert core.read_namespaced_pod("web-1", "default").metadata.deletion_timestamp is None

    exc, body = api_error(evict, "ghost")
    assert exc.status == 404
    assert (body["kind"], body["reason"], body["message"]) == ("Status", "NotFound", 'pods "ghost" not found')

    # A pod no budget selects is evicted without question.
    emulator.add_pod("loner", node_name="node-a", labels={"app": "other"})
    evict("loner")
    assert emulator.get_object("pods", "loner", "default") is None


def test_eviction_counts_terminating_pods_as_disrupted(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.set_pod_termination_seconds(0.3)
    web_pods(emulator, 3)
    emulator.add_pdb("web-pdb", match_labels={"app": "web"}, max_unavailable=1)
    body = client.V1Eviction(delete_options=client.V1DeleteOptions(grace_period_seconds=10))

    core.create_namespaced_pod_eviction("web-0", "default", body)
    evicted = core.read_namespaced_pod("web-0", "default")
    assert evicted.metadata.deletion_grace_period_seconds == 10
    assert "DisruptionTarget" in [c.type for c in evicted.status.conditions]

    exc, refusal = api_error(core.create_namespaced_pod_eviction, "web-1", "default", body)
    assert exc.status == 429
    assert (
        refusal["details"]["causes"][0]["message"]
        == "The disruption budget web-pdb needs 2 healthy pods and has 2 currently"
    )

    deadline = time.monotonic() + 5
    while emulator.get_object("pods", "web-0", "default") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.get_object("pods", "web-0", "default") is None
    core.create_namespaced_pod_eviction("web-1", "default", body)  # 2 pods left, 1 may go


def test_pdb_status_is_computed_from_pods(emulator: KubernetesEmulator, policy: client.PolicyV1Api) -> None:
    web_pods(emulator, 3)
    emulator.add_pod("web-sick", node_name="node-a", labels={"app": "web"}, ready=False)
    emulator.add_pod("other", node_name="node-a", labels={"app": "other"})
    emulator.add_pdb("half", match_labels={"app": "web"}, max_unavailable="50%")

    status = policy.read_namespaced_pod_disruption_budget("half", "default").status
    assert (status.expected_pods, status.current_healthy, status.desired_healthy, status.disruptions_allowed) == (
        4,
        3,
        2,
        1,
    )
    assert status.conditions[0].type == "DisruptionAllowed" and status.conditions[0].status == "True"

    emulator.set_pod_status("web-0", ready=False)
    status = policy.list_namespaced_pod_disruption_budget("default").items[0].status
    assert (status.current_healthy, status.disruptions_allowed) == (2, 0)
    assert status.conditions[0].reason == "InsufficientPods"

    assert status_of(policy.delete_namespaced_pod_disruption_budget("half", "default")) == "Success"
    exc, body = api_error(policy.read_namespaced_pod_disruption_budget, "half", "default")
    assert exc.status == 404
    assert body["message"] == 'poddisruptionbudgets.policy "half" not found'
    assert body["details"] == {"name": "half", "group": "policy", "kind": "poddisruptionbudgets"}


def test_daemonset_and_mirror_pods_round_trip(emulator: KubernetesEmulator, api_client: client.ApiClient) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    emulator.add_node("node-a", provider_id="aws:///us-east-1a/i-0abc")
    daemonset = apps.create_namespaced_daemon_set(
        "kube-system",
        client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name="aws-node"),
            spec=client.V1DaemonSetSpec(
                selector=client.V1LabelSelector(match_labels={"k8s-app": "aws-node"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"k8s-app": "aws-node"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="aws-node", image="aws-node:1")]),
                ),
            ),
        ),
    )
    owner = client.V1OwnerReference(
        api_version="apps/v1",
        kind="DaemonSet",
        name="aws-node",
        uid=daemonset.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )
    container = [client.V1Container(name="main", image="pause:3.10")]
    core.create_namespaced_pod(
        "kube-system",
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="aws-node-x1", labels={"k8s-app": "aws-node"}, owner_references=[owner]),
            spec=client.V1PodSpec(node_name="node-a", containers=container),
            status=client.V1PodStatus(phase="Running"),
        ),
    )
    emulator.add_pod("kube-proxy-node-a", "kube-system", node_name="node-a", mirror=True)
    emulator.add_pod("app-1", node_name="node-a", owner_kind="ReplicaSet", owner_name="app-5d8f")

    pods = {p.metadata.name: p for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a").items}
    assert set(pods) == {"aws-node-x1", "kube-proxy-node-a", "app-1"}
    ds_owner = pods["aws-node-x1"].metadata.owner_references[0]
    assert (ds_owner.kind, ds_owner.name, ds_owner.uid, ds_owner.controller) == (
        "DaemonSet",
        "aws-node",
        daemonset.metadata.uid,
        True,
    )
    mirror = pods["kube-proxy-node-a"].metadata
    assert mirror.annotations["kubernetes.io/config.mirror"] == mirror.annotations["kubernetes.io/config.hash"]
    assert mirror.owner_references[0].kind == "Node"
    assert apps.read_namespaced_daemon_set("aws-node", "kube-system").status.current_number_scheduled == 1

    # kubernetes.core's own drain classification recognises them as on a real cluster.
    k8s_drain = pytest.importorskip("ansible_collections.kubernetes.core.plugins.modules.k8s_drain")
    to_delete, warnings, errors = k8s_drain.filter_pods(list(pods.values()), False, False, False)
    assert to_delete == [("default", "app-1")]
    assert any("mirror" in w and "kube-proxy-node-a" in w for w in warnings)
    assert any("DaemonSet" in e and "aws-node-x1" in e for e in errors)


def test_drain_through_the_dynamic_client(emulator: KubernetesEmulator, dynamic: DynamicClient) -> None:
    emulator.add_node("node-a")
    web_pods(emulator, 2)
    nodes = dynamic.resources.get(api_version="v1", kind="Node")
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    nodes.patch(name="node-a", body={"spec": {"unschedulable": True}})
    for pod in pods.get(field_selector="spec.nodeName=node-a").items:
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": "default"},
        }
        pods.eviction.create(body=eviction, namespace="default")
    assert pods.get(field_selector="spec.nodeName=node-a").items == []
    assert nodes.get(name="node-a").spec.unschedulable is True


def test_evicted_pods_can_come_back_elsewhere(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.reschedule_evicted_pods = True
    emulator.add_node("node-a")
    emulator.add_node("node-b")
    emulator.add_node("node-c", unschedulable=True)
    web_pods(emulator, 3)
    emulator.add_pdb("web-pdb", match_labels={"app": "web"}, min_available=2)
    core.patch_node("node-a", {"spec": {"unschedulable": True}})
    # Each eviction uses the one disruption allowed; the replacement restores it, as a ReplicaSet would.
    for name in ("web-0", "web-1", "web-2"):
        core.create_namespaced_pod_eviction(name, "default", client.V1Eviction())
    placed = core.list_namespaced_pod("default", label_selector="app=web").items
    assert len(placed) == 3
    assert not {"web-0", "web-1", "web-2"} & {p.metadata.name for p in placed}
    assert {p.spec.node_name for p in placed} == {"node-b"}
    assert all(p.status.phase == "Running" for p in placed)


# -- ConfigMaps and namespaces ----------------------------------------------------------------
def test_configmap_optimistic_concurrency(core: client.CoreV1Api, dynamic: DynamicClient) -> None:
    created = core.create_namespaced_config_map(
        "kube-system",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="aws-auth"), data={"mapRoles": "- rolearn: a\n"}),
    )
    stale = core.read_namespaced_config_map("aws-auth", "kube-system")
    assert stale.metadata.resource_version == created.metadata.resource_version

    fresh = core.read_namespaced_config_map("aws-auth", "kube-system")
    fresh.data["mapRoles"] += "- rolearn: b\n"
    updated = core.replace_namespaced_config_map("aws-auth", "kube-system", fresh)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    stale.data["mapRoles"] += "- rolearn: c\n"
    exc, body = api_error(core.replace_namespaced_config_map, "aws-auth", "kube-system", stale)
    assert exc.status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            'Operation cannot be fulfilled on configmaps "aws-auth": the object has been modified;'
            " please apply your changes to the latest version and try again"
        ),
        "reason": "Conflict",
        "details": {"name": "aws-auth", "kind": "configmaps"},
        "code": 409,
    }
    configmaps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(ConflictError):
        configmaps.replace(
            body=stale.to_dict() | {"metadata": {"name": "aws-auth", "resourceVersion": "1"}}, namespace="kube-system"
        )

    exc, body = api_error(
        core.create_namespaced_config_map,
        "kube-system",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="aws-auth")),
    )
    assert (exc.status, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'configmaps "aws-auth" already exists',
    )

    merged = core.patch_namespaced_config_map("aws-auth", "kube-system", {"data": {"mapUsers": "[]"}})
    assert set(merged.data) == {"mapRoles", "mapUsers"}
    merged = core.patch_namespaced_config_map(
        "aws-auth", "kube-system", {"data": {"mapUsers": None}}, _content_type="application/merge-patch+json"
    )
    assert set(merged.data) == {"mapRoles"}
    assert merged.data["mapRoles"] == "- rolearn: a\n- rolearn: b\n"

    assert status_of(core.delete_namespaced_config_map("aws-auth", "kube-system")) == "Success"
    exc, body = api_error(core.read_namespaced_config_map, "aws-auth", "kube-system")
    assert (exc.status, body["reason"], body["message"]) == (404, "NotFound", 'configmaps "aws-auth" not found')


def test_namespaces(core: client.CoreV1Api) -> None:
    assert {"default", "kube-system"} <= {ns.metadata.name for ns in core.list_namespace().items}
    assert core.read_namespace("kube-system").status.phase == "Active"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="spotmax")))
    assert core.read_namespace("spotmax").metadata.labels == {"kubernetes.io/metadata.name": "spotmax"}

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(containers=[client.V1Container(name="c")])
    )
    exc, body = api_error(core.create_namespaced_pod, "nowhere", pod)
    assert (exc.status, body["message"]) == (404, 'namespaces "nowhere" not found')
    exc, body = api_error(
        core.create_namespaced_pod,
        "spotmax",
        client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec={"containers": []}),
    )
    assert (exc.status, body["reason"]) == (422, "Invalid")

    exc, body = api_error(core.delete_namespace, "kube-system")
    assert (exc.status, body["reason"]) == (403, "Forbidden")
    core.create_namespaced_pod("spotmax", pod)
    core.delete_namespace("spotmax")
    assert core.list_namespaced_pod("spotmax").items == []


def test_cluster_roles_and_bindings_through_the_dynamic_client(dynamic: DynamicClient) -> None:
    roles = dynamic.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole")
    bindings = dynamic.resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRoleBinding")
    rules = [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]
    roles.create(body={"metadata": {"name": "drainer"}, "rules": rules})
    bindings.create(
        body={
            "metadata": {"name": "drainers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "drainer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "spotmax:drainers"}],
        }
    )
    assert roles.get(name="drainer").to_dict()["rules"] == rules
    binding = bindings.get(name="drainers").to_dict()
    assert "namespace" not in binding["metadata"]
    assert binding["subjects"][0]["name"] == "spotmax:drainers"
    with pytest.raises(ApiException) as bad:
        bindings.create(body={"metadata": {"name": "no-role"}, "subjects": []})
    assert bad.value.status == 422
    with pytest.raises(ApiException) as bad:
        roles.create(body={"metadata": {"name": "no-verbs"}, "rules": [{"resources": ["pods"]}]})
    assert bad.value.status == 422
    bindings.delete(name="drainers")
    roles.delete(name="drainer")
    assert [r.metadata.name for r in roles.get().items] == []
    assert [b.metadata.name for b in bindings.get().items] == []


# -- test controls ------------------------------------------------------------------------
def test_request_counter_and_latency(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    emulator.add_node("node-a")
    assert control(emulator, "DELETE", "/_emulator/requests")[0] == 204
    for _attempt in range(3):
        core.read_node("node-a")
    core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a")

    status, counts = control(emulator, "GET", "/_emulator/requests")
    assert status == 200
    assert sum(counts.values()) == 4
    assert emulator.request_count("GET", "/api/v1/nodes/{name}") == 3
    assert emulator.request_count("GET", "/api/v1/pods") == 1
    assert emulator.request_count("PATCH", "/api/v1/nodes/{name}") == 0

    assert control(emulator, "PUT", "/_emulator/latency", {"seconds": 0.25}) == (200, {"seconds": 0.25})
    started = time.monotonic()
    core.read_node("node-a")
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 5
    assert control(emulator, "PUT", "/_emulator/latency", {"seconds": -1})[0] == 400
    emulator.set_latency(0)
    assert emulator.request_count("GET", "/api/v1/nodes/{name}") == 4


def test_settings_and_state_controls(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    status, settings = control(emulator, "PUT", "/_emulator/settings", {"pod_termination_seconds": 2})
    assert status == 200 and settings["pod_termination_seconds"] == 2
    assert emulator.pod_termination_seconds == 2
    assert control(emulator, "PUT", "/_emulator/settings", {"pod_termination_seconds": "soon"})[0] == 400
    assert control(emulator, "PUT", "/_emulator/settings", {"nonsense": 1})[0] == 400

    emulator.add_node("node-a")
    emulator.add_pod("web-0", node_name="node-a")
    assert control(emulator, "DELETE", "/_emulator/state")[0] == 204
    assert core.list_node().items == []
    assert core.list_pod_for_all_namespaces().items == []
    assert {"default", "kube-system"} <= {ns.metadata.name for ns in core.list_namespace().items}


def test_concurrent_drains(emulator: KubernetesEmulator, core: client.CoreV1Api) -> None:
    nodes = [f"ip-10-0-0-{i}" for i in range(40)]
    for node in nodes:
        emulator.add_node(node, provider_id=f"aws:///us-east-1a/i-{node[-2:]:0>17}")
        for index in range(3):
            emulator.add_pod(f"{node}-p{index}", node_name=node, owner_kind="ReplicaSet", owner_name="rs")

    def drain(node: str) -> str:
        cordoned = core.patch_node(node, {"spec": {"unschedulable": True}})
        for pod in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items:
            core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, client.V1Eviction())
        assert core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items == []
        return str(cordoned.metadata.resource_version)

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        versions = [future.result(timeout=30) for future in [pool.submit(drain, node) for node in nodes]]
    assert len(set(versions)) == len(nodes)
    assert core.list_pod_for_all_namespaces().items == []
    assert all(node.spec.unschedulable for node in core.list_node().items)
