"""A Kubernetes API server emulator: nodes, pods, evictions, PodDisruptionBudgets, ConfigMaps, namespaces, RBAC.

It speaks enough of the real REST API (discovery, CRUD, selectors, the three PATCH flavours, graceful
pod deletion, the policy/v1 Eviction subresource and the real ``Status`` error bodies) for the official
``kubernetes`` client and the kubernetes.core modules to run against it unchanged. There are no
controllers, no watch and no admission; see :class:`KubernetesEmulator` for the knobs tests use.
"""

from __future__ import annotations

import base64
import functools
import heapq
import hmac
import json
import math
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from spotmax_world import kubernetes_eks
from spotmax_world._http import LOOPBACK, Emulator, HttpError, Request, Response
from spotmax_world.kubernetes_patch import APPLY_PATCH, PATCH_TYPES, PatchError, apply_patch, clone
from spotmax_world.kubernetes_selectors import (
    SelectorError,
    field_value,
    label_selector_object,
    parse_field_selector,
    parse_label_selector,
)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)

VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "9edcffcde5595e8a5b1a35f88c421764e575afce",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T07:28:49Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_TERMINATION_GRACE = 30
# Controllers a real cluster would re-create an evicted pod for (see ``reschedule_evicted_pods``).
RESCHEDULED_OWNERS = frozenset({"ReplicaSet", "ReplicationController", "StatefulSet"})
OWNER_API_VERSIONS = {
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "ReplicationController": "v1",
    "Node": "v1",
}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
NODE_NAME_FIELD = ("spec", "nodeName")
SCALARS = frozenset({str, int, float, bool, type(None)})


_Entry = TypeVar("_Entry")


def _discard(index: dict[_Entry, set[Key]], entry: _Entry, key: Key) -> None:
    keys = index.get(entry)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[entry]


class PodStore(dict[Key, Obj]):
    """The stored pods, with their keys indexed by ``spec.nodeName`` as a field selector reads it
    ("" for an unbound pod) and by label (key, value) for scalar label values. Every way of changing
    the dictionary keeps the indexes; stored objects are replaced, never changed in place, so the
    indexes stay true.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_node: dict[str, set[Key]] = {}
        self.by_label: dict[tuple[str, Any], set[Key]] = {}

    def keys_on(self, node_name: str) -> set[Key]:
        """Keys of the pods whose ``spec.nodeName`` reads ``node_name`` (a copy)."""
        return set(self.by_node.get(node_name, ()))

    def keys_labelled(self, key: str, value: Any) -> set[Key]:
        """Keys of the pods labelled ``key`` = ``value`` (a scalar; a copy)."""
        return set(self.by_label.get((key, value), ()))

    @staticmethod
    def _label_pairs(obj: Obj) -> list[tuple[str, Any]]:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not isinstance(labels, dict):
            return []
        return [(k, v) for k, v in labels.items() if type(v) in SCALARS]

    def _index(self, key: Key, obj: Obj) -> None:
        self.by_node.setdefault(field_value(obj, NODE_NAME_FIELD), set()).add(key)
        for pair in self._label_pairs(obj):
            self.by_label.setdefault(pair, set()).add(key)

    def _unindex(self, key: Key, obj: Obj) -> None:
        _discard(self.by_node, field_value(obj, NODE_NAME_FIELD), key)
        for pair in self._label_pairs(obj):
            _discard(self.by_label, pair, key)

    def __setitem__(self, key: Key, obj: Obj) -> None:
        old = super().get(key)
        if old is not None:
            self._unindex(key, old)
        super().__setitem__(key, obj)
        self._index(key, obj)

    def __delitem__(self, key: Key) -> None:
        obj = super().__getitem__(key)
        super().__delitem__(key)
        self._unindex(key, obj)

    def pop(self, key: Key, *default: Any) -> Any:
        if key in self:
            obj = super().pop(key)
            self._unindex(key, obj)
            return obj
        if default:
            return default[0]
        raise KeyError(key)

    def popitem(self) -> tuple[Key, Obj]:
        key, obj = super().popitem()
        self._unindex(key, obj)
        return key, obj

    def setdefault(self, key: Key, default: Obj) -> Obj:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, obj in dict(*args, **kwargs).items():
            self[key] = obj

    def __ior__(self, other: Any) -> PodStore:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self.by_node.clear()
        self.by_label.clear()


@dataclass(frozen=True)
class ResourceType:
    """One served resource, as discovery describes it."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def qualified(self) -> str:
        """``plural.group`` as the real server words it in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


NAMESPACES = ResourceType("namespaces", "Namespace", "", "v1", False, ("ns",), has_status=True)
NODES = ResourceType("nodes", "Node", "", "v1", False, ("no",), has_status=True)
PODS = ResourceType("pods", "Pod", "", "v1", True, ("po",), has_status=True)
CONFIGMAPS = ResourceType("configmaps", "ConfigMap", "", "v1", True, ("cm",))
PDBS = ResourceType("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, ("pdb",), True, True)
DAEMONSETS = ResourceType("daemonsets", "DaemonSet", "apps", "v1", True, ("ds",), True, True)
# Stored and validated, never enforced: the emulator authenticates but does not authorize.
RBAC = "rbac.authorization.k8s.io"
CLUSTERROLES = ResourceType("clusterroles", "ClusterRole", RBAC, "v1", False)
CLUSTERROLEBINDINGS = ResourceType("clusterrolebindings", "ClusterRoleBinding", RBAC, "v1", False)
RESOURCE_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    CONFIGMAPS,
    PDBS,
    DAEMONSETS,
    CLUSTERROLES,
    CLUSTERROLEBINDINGS,
)
BY_PLURAL = {rt.plural: rt for rt in RESOURCE_TYPES}
VERBS = ["create", "delete", "get", "list", "patch", "update"]


# -- Status bodies (the shapes kubernetes.core and the official client parse) ---------------------
def status_failure(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(rt: ResourceType, name: str) -> Obj:
    details: Obj = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    return details


def not_found(rt: ResourceType, name: str) -> HttpError:
    return HttpError(404, status_failure(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name)))


def already_exists(rt: ResourceType, name: str) -> HttpError:
    message = f'{rt.qualified} "{name}" already exists'
    return HttpError(409, status_failure(409, "AlreadyExists", message, _details(rt, name)))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> HttpError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    message = f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}'
    return HttpError(409, status_failure(409, "Conflict", message, _details(rt, name)))


def bad_request(message: str) -> HttpError:
    return HttpError(400, status_failure(400, "BadRequest", message))


def invalid(rt: ResourceType, name: str, field: str, message: str, cause: str = "FieldValueInvalid") -> HttpError:
    details: Obj = {
        "name": name,
        "group": rt.group,
        "kind": rt.kind,
        "causes": [{"reason": cause, "message": message, "field": field}],
    }
    if not rt.group:
        del details["group"]
    text = f'{rt.kind} "{name}" is invalid: {field}: {message}'
    return HttpError(422, status_failure(422, "Invalid", text, details))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _random_suffix() -> str:
    """The five characters ``generateName`` appends."""
    return "".join(secrets.choice(_NAME_CHARS) for _position in range(5))


def _template(template: str) -> str:
    """``/a/{name}/b`` -> the regex the router (and so the request counter) uses."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)


def _meta(obj: Obj) -> Obj:
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    return meta


def _conditions(obj: Obj) -> list[Obj]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return [c for c in conditions if isinstance(c, dict)]


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in _conditions(pod))


def pod_healthy(pod: Obj) -> bool:
    """What the disruption controller counts: Running, Ready and not terminating."""
    phase = (pod.get("status") or {}).get("phase")
    return phase == "Running" and pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def _scaled(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def _int_or_percent(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and re.fullmatch(r"\d+%", value) is not None


class KubernetesEmulator(Emulator):
    """A Kubernetes API server double listening on 127.0.0.1.

    ``pod_termination_seconds`` caps how long a gracefully deleted pod stays visible (terminating);
    0 (the default) removes it at once. ``reschedule_evicted_pods`` (default off) makes a pod owned by a
    ReplicaSet/StatefulSet/ReplicationController come back, Running and Ready, on another schedulable
    node once it is gone, standing in for the controllers this emulator does not have.

    Requests authenticate with the static bearer ``token`` or, for the clusters given to
    :meth:`register_eks_cluster`, with an EKS token (see :mod:`spotmax_world.kubernetes_eks`).
    :meth:`inject_concurrent_write` (``POST /_emulator/faults/concurrent-write``) makes another
    writer change a ConfigMap just before the next write to it, so that write gets a real 409.
    """

    def __init__(self, token: str | None = None, tls: bool = False) -> None:
        super().__init__()
        self._token = token if token is not None else secrets.token_urlsafe(24)
        self._tls = tls
        self._certificate: Any = None
        self._port: int | None = None
        self._store: dict[str, dict[Key, Obj]] = {}
        self._rv = 0
        self._pending: list[tuple[float, int, Key, str]] = []  # (due, seq, pod key, uid) heap
        self._seq = 0
        self.pod_termination_seconds = 0.0
        self.reschedule_evicted_pods = False
        self._eks_clusters: list[str] = []
        self._aws_secrets: dict[str, str] = {}
        self._concurrent_writes: dict[Key, dict[str, str | None]] = {}
        self._build_routes()
        self.reset()

    # -- lifecycle and client configuration ---------------------------------------------------
    def start(self) -> None:
        """Listen on a free 127.0.0.1 port (HTTPS with a generated CA when ``tls``)."""
        context = None
        if self._tls:
            if self._certificate is None:
                from spotmax_world import kubernetes_tls  # noqa: PLC0415 - cryptography only when TLS is used

                self._certificate = kubernetes_tls.generate()
            context = self._certificate.server_context()
        self._port = self.serve(0, context)

    def stop(self) -> None:
        super().stop()
        self._port = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Kubernetes emulator is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{LOOPBACK}:{self.port}"

    @property
    def token(self) -> str:
        return self._token

    @property
    def ca_pem(self) -> bytes | None:
        """The CA certificate (PEM) the TLS server certificate chains to, once started with ``tls``."""
        return None if self._certificate is None else bytes(self._certificate.ca_pem)

    def kubeconfig(self, context_name: str = "spotmax-world") -> Obj:
        cluster: Obj = {"server": self.url}
        if self.ca_pem is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": context_name, "cluster": cluster}],
            "users": [{"name": context_name, "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context_name,
                    "context": {"cluster": context_name, "user": context_name, "namespace": "default"},
                }
            ],
            "current-context": context_name,
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], context_name: str = "spotmax-world") -> str:
        """Write :meth:`kubeconfig` (JSON, which YAML loaders read) with mode 0600; return the path."""
        target = os.fspath(path)
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump(self.kubeconfig(context_name), handle, indent=2)
        return target

    # -- test controls (Python side of /_emulator/) ---------------------------------------------
    def reset(self) -> None:
        """Back to an empty cluster: only the initial namespaces, no faults. Counters and settings stay."""
        with self.lock:
            self._store = {rt.plural: PodStore() if rt is PODS else {} for rt in RESOURCE_TYPES}
            self._pending = []
            self._concurrent_writes = {}
            for name in INITIAL_NAMESPACES:
                self._insert(NAMESPACES, {"metadata": {"name": name}}, "")

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency = float(seconds)

    def set_pod_termination_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("pod_termination_seconds must be >= 0")
        with self.lock:
            self.pod_termination_seconds = float(seconds)

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.requests)

    def reset_request_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def request_count(self, method: str, template: str) -> int:
        """Requests served for a route written as a template, e.g. ``/api/v1/nodes/{name}``."""
        with self.lock:
            return self.requests.get(f"{method.upper()} {_template(template)}", 0)

    def settings(self) -> Obj:
        with self.lock:
            return {
                "pod_termination_seconds": self.pod_termination_seconds,
                "reschedule_evicted_pods": self.reschedule_evicted_pods,
            }

    def register_eks_cluster(self, name: str, credentials: dict[str, str]) -> None:
        """Accept EKS tokens for cluster ``name`` signed with ``credentials`` (access key id -> secret key)."""
        with self.lock:
            if name not in self._eks_clusters:
                self._eks_clusters.append(name)
            self._aws_secrets.update(credentials)

    @property
    def eks_clusters(self) -> list[str]:
        with self.lock:
            return list(self._eks_clusters)

    def inject_concurrent_write(self, namespace: str, name: str, data: dict[str, str | None]) -> None:
        """Just before the next write to ConfigMap ``namespace/name``, merge ``data`` into it (None deletes
        a key) and bump its resourceVersion, as another writer would; the pending write then gets a 409
        if it carries the resourceVersion it read."""
        with self.lock:
            self._concurrent_writes[(namespace, name)] = dict(data)

    def faults(self) -> Obj:
        with self.lock:
            return {
                "concurrent_writes": [
                    {"namespace": namespace, "name": name, "data": dict(data)}
                    for (namespace, name), data in sorted(self._concurrent_writes.items())
                ]
            }

    # -- seeding helpers ------------------------------------------------------------------
    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        return self.create_object("namespaces", {"metadata": {"name": name, "labels": dict(labels or {})}})

    def add_node(
        self,
        name: str,
        *,
        provider_id: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        unschedulable: bool = False,
        taints: list[Obj] | None = None,
        ready: bool = True,
    ) -> Obj:
        spec: Obj = {}
        if provider_id is not None:
            spec["providerID"] = provider_id
        if unschedulable:
            spec["unschedulable"] = True
        if taints:
            spec["taints"] = clone(taints)
        now = _now()
        condition = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else "container runtime is down",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})}
        body = {
            "metadata": {"name": name, "labels": labels, "annotations": dict(annotations or {})},
            "spec": spec,
            "status": {"conditions": [condition], "addresses": [{"type": "Hostname", "address": name}]},
        }
        return self.create_object("nodes", body)

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        *,
        node_name: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        owner_kind: str | None = None,
        owner_name: str | None = None,
        mirror: bool = False,
        phase: str = "Running",
        ready: bool = True,
        termination_grace_period_seconds: int = DEFAULT_TERMINATION_GRACE,
    ) -> Obj:
        """Seed a pod with the given status (the API would reset status on create; seeding does not).

        ``owner_kind``/``owner_name`` add a controller ownerReference (a DaemonSet's real uid if it exists);
        ``mirror`` makes it a static pod's mirror (config annotations and a Node owner), like the kubelet does.
        """
        metadata: Obj = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
        annotations = dict(annotations or {})
        if mirror:
            digest = uuid.uuid4().hex
            annotations.update(
                {
                    "kubernetes.io/config.hash": digest,
                    MIRROR_ANNOTATION: digest,
                    "kubernetes.io/config.seen": _now(),
                    "kubernetes.io/config.source": "file",
                }
            )
            if owner_kind is None and node_name:
                owner_kind, owner_name = "Node", node_name
        if annotations:
            metadata["annotations"] = annotations
        if owner_kind:
            metadata["ownerReferences"] = [self._owner_reference(owner_kind, owner_name or name, namespace)]
        spec: Obj = {
            "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": termination_grace_period_seconds,
        }
        if node_name:
            spec["nodeName"] = node_name
        if mirror:
            spec["priorityClassName"] = "system-node-critical"
        return self.create_object(
            "pods", {"metadata": metadata, "spec": spec, "status": self._pod_status(phase, ready)}
        )

    def add_daemonset(
        self, name: str, namespace: str = "kube-system", match_labels: dict[str, str] | None = None
    ) -> Obj:
        labels = dict(match_labels or {"app": name})
        body = {
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
                },
            },
        }
        return self.create_object("daemonsets", body)

    def add_pdb(
        self,
        name: str,
        namespace: str = "default",
        *,
        match_labels: dict[str, str] | None = None,
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
        unhealthy_pod_eviction_policy: str | None = None,
    ) -> Obj:
        spec: Obj = {"selector": {"matchLabels": dict(match_labels or {})}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        if unhealthy_pod_eviction_policy is not None:
            spec["unhealthyPodEvictionPolicy"] = unhealthy_pod_eviction_policy
        return self.create_object(
            "poddisruptionbudgets", {"metadata": {"name": name, "namespace": namespace}, "spec": spec}
        )

    def add_configmap(self, name: str, namespace: str = "default", data: dict[str, str] | None = None) -> Obj:
        return self.create_object(
            "configmaps", {"metadata": {"name": name, "namespace": namespace}, "data": dict(data or {})}
        )

    def set_pod_status(
        self, name: str, namespace: str = "default", *, phase: str | None = None, ready: bool | None = None
    ) -> Obj:
        """Change a pod's phase and/or Ready condition (what the kubelet would report)."""
        with self.lock:
            self._reap()
            old = self._store[PODS.plural].get((namespace, name))
            if old is None:
                raise not_found(PODS, name)
            new = clone(old)
            status = new.setdefault("status", {})
            current = status.get("phase", "Pending")
            is_ready = pod_ready(old) if ready is None else ready
            status.update(self._pod_status(phase or current, is_ready))
            self._write(PODS, (namespace, name), new, old)
            return self._typed(PODS, new)

    def create_object(self, resource: str, body: Obj) -> Obj:
        """Create through the same path as ``POST`` (``resource`` is a plural such as ``pods``)."""
        rt = BY_PLURAL[resource]
        namespace = (body.get("metadata") or {}).get("namespace") or ("default" if rt.namespaced else "")
        with self.lock:
            return self._typed(rt, self._insert(rt, clone(body), namespace))

    def get_object(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = BY_PLURAL[resource]
        with self.lock:
            self._reap()
            obj = self._store[rt.plural].get(((namespace or "") if rt.namespaced else "", name))
            return None if obj is None else self._typed(rt, obj)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        rt = BY_PLURAL[resource]
        with self.lock:
            self._reap()
            return [
                self._typed(rt, obj)
                for key, obj in sorted(self._store[rt.plural].items())
                if namespace in (None, key[0])
            ]

    def node_states(self) -> dict[str, Obj]:
        """A cheap snapshot for pollers (no copies of the objects): per node its ``providerID``,
        ``unschedulable``, taint keys and how many evictable pods (neither mirror nor DaemonSet pods,
        terminating ones included) are still bound to it."""
        with self.lock:
            self._reap()
            pods: dict[str, int] = {}
            for pod in self._store[PODS.plural].values():
                node_name = (pod.get("spec") or {}).get("nodeName")
                meta = pod["metadata"]
                owners = meta.get("ownerReferences") or []
                if not node_name or MIRROR_ANNOTATION in (meta.get("annotations") or {}):
                    continue
                if any(o.get("kind") == "DaemonSet" and o.get("controller") for o in owners):
                    continue
                pods[node_name] = pods.get(node_name, 0) + 1
            states: dict[str, Obj] = {}
            for (_ns, name), node in self._store[NODES.plural].items():
                spec = node.get("spec") or {}
                states[name] = {
                    "providerID": spec.get("providerID"),
                    "unschedulable": bool(spec.get("unschedulable")),
                    "taints": sorted(str(t.get("key")) for t in spec.get("taints") or []),
                    "pods": pods.get(name, 0),
                }
            return states

    # -- request plumbing -------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        if request.path in ("/healthz", "/livez", "/readyz"):
            return
        header = request.headers.get("Authorization") or ""
        if hmac.compare_digest(header.encode(), f"Bearer {self._token}".encode()):
            return
        scheme, _space, token = header.partition(" ")
        if scheme == "Bearer" and token.startswith(kubernetes_eks.TOKEN_PREFIX):
            with self.lock:
                clusters, secrets_by_key = list(self._eks_clusters), dict(self._aws_secrets)
            try:
                kubernetes_eks.verify(token, clusters, secrets_by_key, time.time())
            except kubernetes_eks.TokenError:
                pass
            else:
                return
        raise HttpError(401, status_failure(401, "Unauthorized", "Unauthorized"))

    def not_found(self, request: Request) -> HttpError:
        if not request.path.startswith("/_emulator/"):
            self.authorize(request)
        return HttpError(404, status_failure(404, "NotFound", "the server could not find the requested resource", {}))

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return Response(status_failure(500, "InternalError", f"emulator error: {exc!r}"), 500)

    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        body = response.body
        if (
            response.status >= 400
            and isinstance(body, dict)
            and "kind" not in body
            and not request.path.startswith("/_emulator/")
        ):
            reason = {405: "MethodNotAllowed", 415: "UnsupportedMediaType"}.get(response.status, "BadRequest")
            response.body = status_failure(response.status, reason, str(body.get("message", "")))
        return response

    def _route(self, method: str, template: str, fn: Any) -> None:
        self.router.add(method, _template(template), fn)

    def _build_routes(self) -> None:
        self.add_control_routes()
        self._route("PUT", "/_emulator/settings", self._put_settings)
        self._route("GET", "/_emulator/settings", lambda _req: self.settings())
        self._route("DELETE", "/_emulator/state", self._delete_state)
        self._route("GET", "/_emulator/state", self._get_state)
        self._route("GET", "/_emulator/faults", lambda _req: self.faults())
        self._route("DELETE", "/_emulator/faults", self._delete_faults)
        self._route("POST", "/_emulator/faults/concurrent-write", self._post_concurrent_write)
        for path in ("/healthz", "/livez", "/readyz"):
            self._route("GET", path, lambda _req: Response(b"ok", 200, {"Content-Type": "text/plain; charset=utf-8"}))
        self._route("GET", "/version", lambda _req: dict(VERSION_INFO))
        self._route("GET", "/api", self._api_versions)
        self._route("GET", "/api/v1", lambda _req: self._resource_list("", "v1"))
        self._route("GET", "/apis", lambda _req: {"kind": "APIGroupList", "apiVersion": "v1", "groups": self._groups()})
        self._route("GET", "/apis/{group}", self._api_group)
        self._route("GET", "/apis/{group}/{version}", lambda _req, group, version: self._resource_list(group, version))
        for rt in RESOURCE_TYPES:
            collection = f"{rt.prefix}/{rt.plural}"
            if rt.namespaced:
                self._route("GET", collection, functools.partial(self._list, rt))
                collection = f"{rt.prefix}/namespaces/{{namespace}}/{rt.plural}"
            self._route("GET", collection, functools.partial(self._list, rt))
            self._route("POST", collection, functools.partial(self._create, rt))
            item = f"{collection}/{{name}}"
            self._route("GET", item, functools.partial(self._get, rt))
            self._route("PUT", item, functools.partial(self._replace, rt))
            self._route("PATCH", item, functools.partial(self._patch, rt))
            self._route("DELETE", item, functools.partial(self._delete, rt))
            if rt.has_status:
                self._route("GET", f"{item}/status", functools.partial(self._get, rt))
                self._route("PUT", f"{item}/status", functools.partial(self._replace, rt, subresource="status"))
                self._route("PATCH", f"{item}/status", functools.partial(self._patch, rt, subresource="status"))
        self._route("POST", f"{PODS.prefix}/namespaces/{{namespace}}/pods/{{name}}/eviction", self._evict)

    # -- control endpoints --------------------------------------------------------------------
    def _put_settings(self, request: Request) -> Obj:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise HttpError(400, {"message": "settings must be a JSON object"})
        unknown = set(body) - {"pod_termination_seconds", "reschedule_evicted_pods"}
        if unknown:
            raise HttpError(400, {"message": f"unknown settings: {sorted(unknown)}"})
        if "pod_termination_seconds" in body:
            seconds = body["pod_termination_seconds"]
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
                raise HttpError(400, {"message": "pod_termination_seconds: a number >= 0 is required"})
            self.set_pod_termination_seconds(seconds)
        if "reschedule_evicted_pods" in body:
            if not isinstance(body["reschedule_evicted_pods"], bool):
                raise HttpError(400, {"message": "reschedule_evicted_pods: a boolean is required"})
            with self.lock:
                self.reschedule_evicted_pods = body["reschedule_evicted_pods"]
        return self.settings()

    def _delete_state(self, _request: Request) -> Response:
        self.reset()
        return Response(None, 204)

    def _get_state(self, _request: Request) -> Obj:
        return {rt.plural: self.list_objects(rt.plural) for rt in RESOURCE_TYPES}

    def _delete_faults(self, _request: Request) -> Obj:
        with self.lock:
            self._concurrent_writes = {}
        return self.faults()

    def _post_concurrent_write(self, request: Request) -> Obj:
        body = request.json() or {}
        if not isinstance(body, dict):
            raise HttpError(400, {"message": "the body must be a JSON object"})
        namespace, name, data = body.get("namespace"), body.get("name"), body.get("data")
        if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
            raise HttpError(400, {"message": "namespace, name: the ConfigMap's namespace and name are required"})
        if not isinstance(data, dict) or not data or not all(isinstance(v, (str, type(None))) for v in data.values()):
            raise HttpError(400, {"message": "data: an object of keys to new string values (null deletes) is required"})
        self.inject_concurrent_write(namespace, name, data)
        return self.faults()

    # -- discovery ------------------------------------------------------------------------------
    def _api_versions(self, request: Request) -> Obj:
        address = f"{LOOPBACK}:{request.port}"
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        }

    @staticmethod
    def _groups() -> list[Obj]:
        groups: dict[str, Obj] = {}
        for rt in RESOURCE_TYPES:
            if rt.group and rt.group not in groups:
                version = {"groupVersion": rt.api_version, "version": rt.version}
                groups[rt.group] = {"name": rt.group, "versions": [version], "preferredVersion": dict(version)}
        return [groups[name] for name in sorted(groups)]

    def _api_group(self, _request: Request, group: str) -> Obj:
        for entry in self._groups():
            if entry["name"] == group:
                return {"kind": "APIGroup", "apiVersion": "v1", **entry}
        raise HttpError(404, status_failure(404, "NotFound", "the server could not find the requested resource", {}))

    @staticmethod
    def _resource_list(group: str, version: str) -> Obj:
        resources: list[Obj] = []
        for rt in RESOURCE_TYPES:
            if (rt.group, rt.version) != (group, version):
                continue
            entry: Obj = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(VERBS),
                "shortNames": list(rt.short_names),
            }
            resources.append(entry)
            if rt.has_status:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if rt is PODS:
                resources.append(
                    {
                        "name": "pods/eviction",
                        "singularName": "",
                        "namespaced": True,
                        "group": "policy",
                        "version": "v1",
                        "kind": "Eviction",
                        "verbs": ["create"],
                    }
                )
        if not resources:
            raise HttpError(
                404, status_failure(404, "NotFound", "the server could not find the requested resource", {})
            )
        body: Obj = {"kind": "APIResourceList"}
        if group:
            body["apiVersion"] = "v1"
        body["groupVersion"] = f"{group}/{version}" if group else version
        body["resources"] = resources
        return body

    # -- store primitives (call with self.lock held) --------------------------------------------
    def _bump(self, obj: Obj) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def _typed(self, rt: ResourceType, obj: Obj) -> Obj:
        """A copy with kind/apiVersion and computed status, as a GET returns it."""
        result: Obj = {"kind": rt.kind, "apiVersion": rt.api_version}
        result.update(clone(obj))
        if rt is PDBS:
            result["status"] = self._pdb_status(obj)
        elif rt is DAEMONSETS:
            result["status"] = self._daemonset_status(obj)
        return result

    def _list_item(self, rt: ResourceType, obj: Obj) -> Obj:
        item = self._typed(rt, obj)
        del item["kind"], item["apiVersion"]  # real list items carry no type meta
        return item

    def _require_namespace(self, namespace: str) -> None:
        if (("", namespace)) not in self._store[NAMESPACES.plural]:
            raise not_found(NAMESPACES, namespace)

    def _insert(self, rt: ResourceType, body: Obj, namespace: str, dry_run: bool = False) -> Obj:
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rt.kind} object")
        kind, api_version = body.pop("kind", rt.kind), body.pop("apiVersion", rt.api_version)
        if kind != rt.kind or api_version != rt.api_version:
            raise bad_request(f"the data is {api_version} {kind}, the URL expects {rt.api_version} {rt.kind}")
        meta = _meta(body)
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = meta["generateName"] + _random_suffix()
        if not name or not isinstance(name, str):
            raise invalid(
                rt, "", "metadata.name", "Required value: name or generateName is required", "FieldValueRequired"
            )
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            self._require_namespace(namespace)
        else:
            namespace = ""
        key = (namespace, name)
        if key in self._store[rt.plural]:
            raise already_exists(rt, name)
        self._validate(rt, name, body)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
            meta.pop(field, None)
        meta.update({"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": _now()})
        if rt.namespaced:
            meta["namespace"] = namespace
        if rt.has_generation:
            meta["generation"] = 1
        self._default(rt, body)
        if rt in (PDBS, DAEMONSETS):
            body.pop("status", None)  # computed on read
        if not dry_run:
            self._bump(body)
            self._store[rt.plural][key] = body
        return body

    @staticmethod
    def _default(rt: ResourceType, body: Obj) -> None:
        if rt is NAMESPACES:
            body["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = body["metadata"]["name"]
            body.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            body["status"] = {"phase": "Active"}
        elif rt is PODS:
            body.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt is NODES:
            body.setdefault("spec", {})

    @staticmethod
    def _validate(rt: ResourceType, name: str, body: Obj) -> None:
        if rt is PODS:
            containers = (body.get("spec") or {}).get("containers")
            if not isinstance(containers, list) or not containers:
                raise invalid(rt, name, "spec.containers", "Required value", "FieldValueRequired")
            if not all(isinstance(c, dict) and c.get("name") for c in containers):
                raise invalid(rt, name, "spec.containers[0].name", "Required value", "FieldValueRequired")
        elif rt is PDBS:
            spec = body.get("spec") or {}
            if "minAvailable" in spec and "maxUnavailable" in spec:
                raise invalid(rt, name, "spec", "minAvailable and maxUnavailable cannot be both set")
            for field in ("minAvailable", "maxUnavailable"):
                if field in spec and not _int_or_percent(spec[field]):
                    raise invalid(rt, name, f"spec.{field}", "must be a non-negative integer or a percentage")
            try:
                label_selector_object(spec.get("selector"))
            except SelectorError as exc:
                raise invalid(rt, name, "spec.selector", str(exc)) from exc
        elif rt is CONFIGMAPS:
            for field in ("data", "binaryData"):
                values = body.get(field)
                if values is not None and (
                    not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values())
                ):
                    raise bad_request(f"{field}: values must be strings")
        elif rt is CLUSTERROLES:
            for index, rule in enumerate(body.get("rules") or []):
                if not isinstance(rule, dict) or not rule.get("verbs"):
                    raise invalid(rt, name, f"rules[{index}].verbs", "Required value", "FieldValueRequired")
        elif rt is CLUSTERROLEBINDINGS:
            ref = body.get("roleRef")
            if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
                raise invalid(rt, name, "roleRef", "Required value", "FieldValueRequired")

    def _write(self, rt: ResourceType, key: Key, new: Obj, old: Obj, dry_run: bool = False) -> Obj:
        """Store an update of ``old``; a no-op keeps the resourceVersion, as the real server does."""
        new.pop("kind", None)
        new.pop("apiVersion", None)
        meta, old_meta = _meta(new), old["metadata"]
        for field in (
            "name",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if rt.namespaced:
            meta["namespace"] = key[0]
        else:
            meta.pop("namespace", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if rt.has_generation and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if rt in (PDBS, DAEMONSETS):
            new.pop("status", None)
        if new == old:
            return old
        self._validate(rt, key[1], new)
        if not dry_run:
            self._bump(new)
            self._store[rt.plural][key] = new
        return new

    def _merge_update(self, rt: ResourceType, old: Obj, body: Obj, subresource: str | None) -> Obj:
        """Main resource writes keep the old status; ``/status`` writes change only the status."""
        if subresource == "status":
            new = clone(old)
            if body.get("status") is None:
                new.pop("status", None)
            else:
                new["status"] = clone(body["status"])
            return new
        new = clone(body)
        if rt.has_status:
            if "status" in old:
                new["status"] = clone(old["status"])
            else:
                new.pop("status", None)
        return new

    def _concurrent_write(self, rt: ResourceType, key: Key, old: Obj) -> Obj:
        """Apply an injected concurrent write to ``key`` (once); return the object now stored."""
        change = self._concurrent_writes.pop(key, None) if rt is CONFIGMAPS else None
        if change is None:
            return old
        new = clone(old)
        data = new.setdefault("data", {})
        for field, value in change.items():
            if value is None:
                data.pop(field, None)
            else:
                data[field] = value
        self._bump(new)
        self._store[rt.plural][key] = new
        return new

    def _find(self, rt: ResourceType, namespace: str | None, name: str) -> tuple[Key, Obj]:
        key = (namespace or "", name)
        obj = self._store[rt.plural].get(key)
        if obj is None:
            raise not_found(rt, name)
        return key, obj

    # -- graceful pod deletion ----------------------------------------------------------------
    def _reap(self) -> None:
        """Remove the terminating pods whose (capped) grace period is over."""
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _due, _seq, key, uid = heapq.heappop(self._pending)
            pod = self._store[PODS.plural].get(key)
            if pod is not None and pod["metadata"].get("uid") == uid and pod["metadata"].get("deletionTimestamp"):
                self._remove_pod(key)

    def _remove_pod(self, key: Key) -> None:
        pod = self._store[PODS.plural].pop(key)
        self._rv += 1
        if self.reschedule_evicted_pods:
            self._reschedule(pod)

    def _delete_pod(self, key: Key, grace: int | None, *, evicted: bool = False, dry_run: bool = False) -> Obj:
        """Delete a pod like the real pod storage; return the object the API answers with."""
        pod = self._store[PODS.plural][key]
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        if grace is None:
            configured = spec.get("terminationGracePeriodSeconds")
            grace = DEFAULT_TERMINATION_GRACE if configured is None else int(configured)
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            grace = 0  # never ran or already finished: nothing to wait for
        grace = max(grace, 0)
        meta = pod["metadata"]
        if meta.get("deletionTimestamp") and grace >= int(meta.get("deletionGracePeriodSeconds", 0)):
            return self._typed(PODS, pod)  # already terminating; only a shorter grace period changes it
        if dry_run:
            return self._typed(PODS, pod)
        new = clone(pod)
        if grace > 0:
            new["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + grace))
            new["metadata"]["deletionGracePeriodSeconds"] = grace
            if evicted:
                condition = {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "EvictionByEvictionAPI",
                    "message": "Eviction API: evicting",
                    "lastTransitionTime": _now(),
                }
                conditions = [c for c in _conditions(new) if c.get("type") != "DisruptionTarget"]
                new.setdefault("status", {})["conditions"] = [*conditions, condition]
        delay = min(float(grace), self.pod_termination_seconds)
        if delay <= 0:
            self._store[PODS.plural][key] = new
            self._remove_pod(key)
            return self._typed(PODS, new)
        self._bump(new)
        self._store[PODS.plural][key] = new
        self._seq += 1
        heapq.heappush(self._pending, (time.monotonic() + delay, self._seq, key, new["metadata"]["uid"]))
        return self._typed(PODS, new)

    def _reschedule(self, pod: Obj) -> None:
        """Stand-in for a ReplicaSet/StatefulSet controller: recreate ``pod`` on another schedulable node."""
        owners = [o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")]
        if not owners or owners[0].get("kind") not in RESCHEDULED_OWNERS:
            return
        namespace = pod["metadata"].get("namespace", "default")
        if ("", namespace) not in self._store[NAMESPACES.plural]:
            return
        old_node = (pod.get("spec") or {}).get("nodeName")
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        load: dict[str, int] = {}
        for other in self._store[PODS.plural].values():
            node_name = (other.get("spec") or {}).get("nodeName")
            if node_name:
                load[node_name] = load.get(node_name, 0) + 1
        candidates = [
            node["metadata"]["name"]
            for node in self._store[NODES.plural].values()
            if node["metadata"]["name"] != old_node and _schedulable(node, tolerations)
        ]
        target = min(candidates, key=lambda n: (load.get(n, 0), n), default=None)
        meta = pod["metadata"]
        name = meta["name"]
        if owners[0]["kind"] != "StatefulSet":
            prefix = meta.get("generateName") or name.rsplit("-", 1)[0] + "-"
            name = prefix + _random_suffix()
        twin: Obj = {
            "metadata": {
                k: clone(v)
                for k, v in meta.items()
                if k in ("labels", "annotations", "ownerReferences", "generateName")
            },
            "spec": clone(pod.get("spec") or {}),
        }
        twin["metadata"]["name"] = name
        twin["spec"].pop("nodeName", None)
        if target is not None:
            twin["spec"]["nodeName"] = target
            twin["status"] = self._pod_status("Running", True)
        else:
            twin["status"] = {"phase": "Pending"}
        if (namespace, name) not in self._store[PODS.plural]:
            self._insert(PODS, twin, namespace)

    @staticmethod
    def _pod_status(phase: str, ready: bool) -> Obj:
        now = _now()
        flag = "True" if ready and phase == "Running" else "False"
        conditions = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ]
        return {"phase": phase, "conditions": conditions, "startTime": now}

    def _owner_reference(self, kind: str, name: str, namespace: str) -> Obj:
        uid = str(uuid.uuid4())
        if kind == "DaemonSet":
            with self.lock:
                owner = self._store[DAEMONSETS.plural].get((namespace, name))
                uid = owner["metadata"]["uid"] if owner else uid
        elif kind == "Node":
            with self.lock:
                node = self._store[NODES.plural].get(("", name))
                uid = node["metadata"]["uid"] if node else uid
        return {
            "apiVersion": OWNER_API_VERSIONS.get(kind, "apps/v1"),
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    # -- computed statuses ------------------------------------------------------------------
    def _matching_pods(self, namespace: str, selector: Any) -> list[Obj]:
        """The pods of ``namespace`` the LabelSelector object ``selector`` matches (in no set order)."""
        select = label_selector_object(selector)
        store = self._store[PODS.plural]
        match_labels = selector.get("matchLabels") if isinstance(selector, dict) else None
        if (
            isinstance(store, PodStore)
            and isinstance(match_labels, dict)
            and match_labels
            and all(type(value) in SCALARS for value in match_labels.values())
        ):
            # A pod must carry every matchLabels pair: test only those with the rarest one.
            keys = min((store.keys_labelled(k, v) for k, v in match_labels.items()), key=len)
            return [store[key] for key in keys if key[0] == namespace and select(store[key])]
        return [pod for (ns, _name), pod in store.items() if ns == namespace and select(pod)]

    def _pdb_status(self, pdb: Obj) -> Obj:
        spec = pdb.get("spec") or {}
        pods = self._matching_pods(pdb["metadata"]["namespace"], spec.get("selector"))
        expected = len(pods)
        healthy = sum(1 for pod in pods if pod_healthy(pod))
        if spec.get("minAvailable") is not None:
            desired = _scaled(spec["minAvailable"], expected)
        elif spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
        else:
            desired = 0
        allowed = healthy - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        generation = pdb["metadata"].get("generation", 1)
        condition = {
            "type": "DisruptionAllowed",
            "status": "True" if allowed > 0 else "False",
            "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": pdb["metadata"]["creationTimestamp"],
        }
        return {
            "observedGeneration": generation,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [condition],
        }

    def _daemonset_status(self, daemonset: Obj) -> Obj:
        meta = daemonset["metadata"]
        owned = [
            pod
            for (ns, _name), pod in self._store[PODS.plural].items()
            if ns == meta["namespace"]
            and any(
                o.get("uid") == meta["uid"] and o.get("controller")
                for o in pod["metadata"].get("ownerReferences") or []
            )
        ]
        scheduled = sum(1 for pod in owned if (pod.get("spec") or {}).get("nodeName"))
        ready = sum(1 for pod in owned if pod_ready(pod))
        return {
            "currentNumberScheduled": scheduled,
            "desiredNumberScheduled": scheduled,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": scheduled,
            "observedGeneration": meta.get("generation", 1),
        }

    # -- REST handlers ----------------------------------------------------------------------
    @staticmethod
    def _body(request: Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise bad_request(f"the body of the request was in an unknown format: {exc}") from exc

    @staticmethod
    def _dry_run(request: Request, options: Any = None) -> bool:
        values = [request.query.get("dryRun")]
        if isinstance(options, dict):
            values.extend(options.get("dryRun") or [])
        if any(v not in (None, "", "All") for v in values):
            raise bad_request("dryRun: Unsupported value: only 'All' is supported")
        return "All" in values

    def _list(self, rt: ResourceType, request: Request, namespace: str | None = None) -> Obj:
        if request.query.get("watch") in ("true", "1"):
            raise bad_request("watch is not supported by the spotmax world emulator")
        try:
            by_label = parse_label_selector(request.query.get("labelSelector", ""))
            by_field = parse_field_selector(request.query.get("fieldSelector", ""), rt.plural)
        except SelectorError as exc:
            raise bad_request(str(exc)) from exc
        limit = int(request.query.get("limit") or 0)
        start_after = self._decode_continue(request.query.get("continue"))
        with self.lock:
            self._reap()
            store = self._store[rt.plural]
            node_name = by_field.equality(NODE_NAME_FIELD) if isinstance(store, PodStore) else None
            if isinstance(store, PodStore) and node_name is not None:
                # The drain's "pods on this node": look the node up instead of scanning every pod.
                candidates = sorted((key, store[key]) for key in store.keys_on(node_name))
            else:
                candidates = sorted(store.items())
            matched = [
                (key, obj)
                for key, obj in candidates
                if namespace in (None, key[0])
                and (start_after is None or key > start_after)
                and by_label(obj)
                and by_field(obj)
            ]
            metadata: Obj = {"resourceVersion": str(self._rv)}
            if limit > 0 and len(matched) > limit:
                metadata["continue"] = base64.urlsafe_b64encode(
                    json.dumps(list(matched[limit - 1][0])).encode()
                ).decode()
                metadata["remainingItemCount"] = len(matched) - limit
                matched = matched[:limit]
            items = [self._list_item(rt, obj) for _key, obj in matched]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": metadata, "items": items}

    @staticmethod
    def _decode_continue(token: str | None) -> Key | None:
        if not token:
            return None
        try:
            namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, TypeError) as exc:
            raise bad_request("continue key is not valid") from exc
        return (str(namespace), str(name))

    def _get(self, rt: ResourceType, _request: Request, name: str, namespace: str | None = None) -> Obj:
        with self.lock:
            self._reap()
            _key, obj = self._find(rt, namespace, name)
            return self._typed(rt, obj)

    def _create(self, rt: ResourceType, request: Request, namespace: str | None = None) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rt.kind} object")
        with self.lock:
            self._reap()
            created = self._insert(rt, body, namespace or "", dry_run=self._dry_run(request))
            return Response(self._typed(rt, created), 201)

    def _replace(
        self,
        rt: ResourceType,
        request: Request,
        name: str,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        body = self._body(request)
        if not isinstance(body, dict):
            raise bad_request(f"the body of the request must be a {rt.kind} object")
        meta = _meta(body)
        if meta.get("name") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if body.get("kind", rt.kind) != rt.kind or body.get("apiVersion", rt.api_version) != rt.api_version:
            raise bad_request(f"the body of the request must be a {rt.api_version} {rt.kind}")
        with self.lock:
            self._reap()
            key, old = self._find(rt, namespace, name)
            old = self._concurrent_write(rt, key, old)
            self._check_preconditions(rt, name, old, meta)
            new = self._write(rt, key, self._merge_update(rt, old, body, subresource), old, self._dry_run(request))
            return self._typed(rt, new)

    def _check_preconditions(self, rt: ResourceType, name: str, old: Obj, meta: Obj) -> None:
        uid, version = meta.get("uid"), meta.get("resourceVersion")
        if uid and uid != old["metadata"]["uid"]:
            why = f"Precondition failed: UID in precondition: {uid}, UID in object meta: {old['metadata']['uid']}"
            raise conflict(rt, name, why)
        if version and version != old["metadata"]["resourceVersion"]:
            raise conflict(rt, name)

    def _patch(
        self,
        rt: ResourceType,
        request: Request,
        name: str,
        namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type not in PATCH_TYPES:
            accepted = ", ".join(PATCH_TYPES)
            what = (
                "server-side apply is not supported by this emulator"
                if content_type == APPLY_PATCH
                else "unknown format"
            )
            message = f"the body of the request was in an {what} - accepted media types include: {accepted}"
            raise HttpError(415, status_failure(415, "UnsupportedMediaType", message))
        patch = self._body(request)
        dry_run = self._dry_run(request)
        with self.lock:
            self._reap()
            key, old = self._find(rt, namespace, name)
            old = self._concurrent_write(rt, key, old)
            try:
                patched = apply_patch(content_type, self._typed(rt, old), patch)
            except PatchError as exc:
                reason = {400: "BadRequest", 415: "UnsupportedMediaType"}.get(exc.status, "Invalid")
                raise HttpError(exc.status, status_failure(exc.status, reason, exc.message)) from exc
            meta = _meta(patched)
            if meta.get("name") != name or (rt.namespaced and meta.get("namespace") != namespace):
                raise bad_request("metadata.name and metadata.namespace cannot be changed by a patch")
            self._check_preconditions(rt, name, old, meta)
            new = self._write(rt, key, self._merge_update(rt, old, patched, subresource), old, dry_run)
            return self._typed(rt, new)

    @staticmethod
    def _grace(request: Request, options: Any) -> int | None:
        raw = request.query.get("gracePeriodSeconds")
        if raw is None and isinstance(options, dict):
            raw = options.get("gracePeriodSeconds")
        if raw is None:
            return None
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise bad_request(f"gracePeriodSeconds: invalid value {raw!r}") from exc

    def _delete(self, rt: ResourceType, request: Request, name: str, namespace: str | None = None) -> Obj:
        options = self._body(request)
        if options is not None and not isinstance(options, dict):
            raise bad_request("DeleteOptions must be an object")
        grace = self._grace(request, options)
        dry_run = self._dry_run(request, options)
        with self.lock:
            self._reap()
            key, obj = self._find(rt, namespace, name)
            obj = self._concurrent_write(rt, key, obj)
            preconditions = (options or {}).get("preconditions") or {}
            self._check_preconditions(rt, name, obj, preconditions)
            if rt is PODS:
                return self._delete_pod(key, grace, dry_run=dry_run)
            if rt is NAMESPACES:
                return self._delete_namespace(name, obj, dry_run)
            answer = self._typed(rt, obj)
            if not dry_run:
                del self._store[rt.plural][key]
                self._rv += 1
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {**_details(rt, name), "uid": answer["metadata"]["uid"]},
            }

    def _delete_namespace(self, name: str, obj: Obj, dry_run: bool) -> Obj:
        if name in PROTECTED_NAMESPACES:
            message = f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            raise HttpError(403, status_failure(403, "Forbidden", message, {"name": name, "kind": "namespaces"}))
        answer = self._typed(NAMESPACES, obj)
        answer["metadata"]["deletionTimestamp"] = _now()
        answer["status"] = {"phase": "Terminating"}
        if not dry_run:
            # No namespace controller: the namespace and everything in it go at once.
            for rt in RESOURCE_TYPES:
                if rt.namespaced:
                    for key in [k for k in self._store[rt.plural] if k[0] == name]:
                        del self._store[rt.plural][key]
            del self._store[NAMESPACES.plural][("", name)]
            self._rv += 1
        return answer

    def _evict(self, request: Request, namespace: str, name: str) -> Response:
        body = self._body(request) or {}
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be an Eviction object")
        body_name = (body.get("metadata") or {}).get("name")
        if body_name not in (None, "", name):
            raise bad_request(f"name in URL does not match name in Eviction object: {name} != {body_name}")
        options = body.get("deleteOptions") or {}
        grace = self._grace(request, options)
        dry_run = self._dry_run(request, options)
        with self.lock:
            self._reap()
            key, pod = self._find(PODS, namespace, name)
            self._check_preconditions(PODS, name, pod, options.get("preconditions") or {})
            self._check_disruption_budget(namespace, pod)
            self._delete_pod(key, grace, evicted=True, dry_run=dry_run)
        return Response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)

    def _check_disruption_budget(self, namespace: str, pod: Obj) -> None:
        """Raise the eviction API's refusal when the pod's PodDisruptionBudget has no disruption left."""
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed", "Pending") or pod["metadata"].get("deletionTimestamp"):
            return  # such pods are evicted without consulting budgets
        budgets = [
            pdb
            for (ns, _name), pdb in sorted(self._store[PDBS.plural].items())
            if ns == namespace and label_selector_object((pdb.get("spec") or {}).get("selector"))(pod)
        ]
        if not budgets:
            return
        if len(budgets) > 1:
            message = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
            raise HttpError(500, status_failure(500, "InternalError", message))
        pdb = budgets[0]
        status = self._pdb_status(pdb)
        if not pod_ready(pod):
            if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return
            if status["currentHealthy"] >= status["desiredHealthy"] > 0:
                return
        if status["disruptionsAllowed"] <= 0:
            cause = {
                "reason": "DisruptionBudget",
                "message": (
                    f"The disruption budget {pdb['metadata']['name']} needs {status['desiredHealthy']} healthy pods"
                    f" and has {status['currentHealthy']} currently"
                ),
            }
            message = "Cannot evict pod as it would violate the pod's disruption budget."
            raise HttpError(429, status_failure(429, "TooManyRequests", message, {"causes": [cause]}))


def _schedulable(node: Obj, tolerations: Iterable[Obj]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in _conditions(node)):
        return False
    tolerations = list(tolerations)
    for taint in spec.get("taints") or []:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(toleration, taint) for toleration in tolerations):
            return False
    return True


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") not in (None, "", taint.get("effect")):
        return False
    if not toleration.get("key"):
        return toleration.get("operator") == "Exists"
    if toleration.get("key") != taint.get("key"):
        return False
    if toleration.get("operator") == "Exists":
        return True
    return bool(toleration.get("value", "") == taint.get("value", ""))
