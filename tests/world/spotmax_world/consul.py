"""A Consul HTTP API emulator: one datacenter (``dc1``) with a catalog, per-node agents, health, ACLs, anti-entropy.

The model
---------
* The catalog holds nodes, services and checks, each with ``CreateIndex``/``ModifyIndex`` taken from one raft-like
  index that every write bumps; reads answer with ``X-Consul-Index`` (that global index), ``X-Consul-KnownLeader`` and
  ``X-Consul-LastContact``, and block on ``?index=&wait=`` until the index moves past it.
* Every node runs an agent. The emulator starts with the server agent ``consul-server`` on :attr:`ConsulEmulator.port`;
  :meth:`ConsulEmulator.add_agent` starts a client agent on its own 127.0.0.1 listener. ``/v1/agent/...`` requests are
  answered by the agent whose port they came in on; catalog, health and ACL requests work on any listener.
* Agents keep their own services and checks and sync them into the catalog at once on every agent write, and every
  ``sync_interval`` seconds (anti-entropy: catalog entries of that node the agent does not know are removed, missing
  ones come back). The leader side of the sync keeps a ``serfHealth`` check per member: passing while the agent is
  alive, critical once it was stopped; a force-left node is removed from the catalog.
* All agent listeners are served by a single selector thread that accepts connections and hands each to a
  handler thread, so idle agents cost one socket each and no thread.

ACLs (simplified)
-----------------
With ``acl_enabled`` every ``/v1/`` request (except ``/v1/acl/bootstrap`` and ``/v1/status/``) needs a token from
``?token=``, ``X-Consul-Token`` or ``Authorization: Bearer``; a missing or unknown one gets 403 ``ACL not found``.
Any valid token may read the catalog, health and agent endpoints. Rights beyond that come from the token's links:

* policy ``global-management`` (ID ``...0001``): everything;
* policy ``builtin/global-read-only`` (ID ``...0002``, alias ``global-read-only``): read everything, ACLs included;
* a policy named ``<resource>-<read|write>`` (resource: ``acl``, ``agent``, ``node``, ``operator``, ``service``):
  that access to every object of that resource; any other policy name grants nothing (rules are not parsed);
* ``ServiceIdentities``: ``service:write`` on the service and its ``-sidecar-proxy``;
* ``NodeIdentities``: ``node:write`` on the node.

A write without the right gets 403 ``Permission denied: token with AccessorID '...' lacks permission 'service:write'
on "web"``. Writes need: agent service/check calls and catalog service registration ``service:write`` on the
service name; catalog node changes and node maintenance ``node:write``; force-leave ``operator:write``; ACL token
writes ``acl:write``, token reads ``acl:read``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import selectors
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from spotmax_world._http import LOOPBACK, Emulator, HttpError, Request, Response

Json = dict[str, Any]

DATACENTER = "dc1"
SERVER_NODE = "consul-server"
VERSION = "1.20.2"
SERF_CHECK = "serfHealth"
NODE_MAINTENANCE = "_node_maintenance"
SERVICE_MAINTENANCE_PREFIX = "_service_maintenance:"
MANAGEMENT_POLICY_ID = "00000000-0000-0000-0000-000000000001"
READ_ONLY_POLICY_ID = "00000000-0000-0000-0000-000000000002"
_BUILTIN_POLICIES = {MANAGEMENT_POLICY_ID: "global-management", READ_ONLY_POLICY_ID: "builtin/global-read-only"}
_POLICY_ALIASES = {"global-read-only": READ_ONLY_POLICY_ID}
_POLICY_RIGHT = re.compile(r"^(acl|agent|node|operator|service)-(read|write)$")
_OPEN_READS = frozenset({"agent", "node", "service"})
_NAMESPACE = uuid.UUID("7b0c5f0e-8f37-4c5e-9d0a-52c1b8e3a6d1")
_STATUSES = ("passing", "warning", "critical")
_SERF_ALIVE, _SERF_LEFT, _SERF_FAILED = 1, 3, 4
_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
_INDEX_KEYS = ("CreateIndex", "ModifyIndex")
_MAX_WAIT = 600.0
_MAINTENANCE_DEFAULT = "Maintenance mode is enabled for this {}, but no reason was provided. This is a default message."
_CHECK_KINDS = (
    ("TTL", "ttl"),
    ("HTTP", "http"),
    ("TCP", "tcp"),
    ("UDP", "udp"),
    ("GRPC", "grpc"),
    ("H2PING", "h2ping"),
    ("DockerContainerID", "docker"),
    ("Args", "script"),
    ("Script", "script"),
    ("AliasNode", "alias"),
    ("AliasService", "alias"),
    ("OSService", "os_service"),
)
_DEFINITION_KEYS = (
    "HTTP",
    "Method",
    "Header",
    "Body",
    "TLSSkipVerify",
    "TCP",
    "UDP",
    "GRPC",
    "GRPCUseTLS",
    "H2PING",
    "Args",
    "DockerContainerID",
    "Shell",
    "AliasNode",
    "AliasService",
    "Interval",
    "Timeout",
    "TTL",
    "DeregisterCriticalServiceAfter",
)
_WAIT_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# -- small helpers ----------------------------------------------------------------------------
def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _field(data: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Look a key up the way Consul decodes JSON: case-insensitive, snake_case accepted."""
    want = _norm(name)
    for key, value in data.items():
        if isinstance(key, str) and _norm(key) == want:
            return value
    return default


def _text(status: int, message: str) -> HttpError:
    """Consul answers errors as plain text."""
    return HttpError(status, message.encode(), dict(_TEXT))


def _empty() -> Response:
    return Response(b"", 200, dict(_TEXT))


def _object(value: Any, what: str = "request body") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _text(400, f"Request decode failed: {what} must be a JSON object")
    return value


def _parse_bool(raw: str, name: str) -> bool:
    if raw in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if raw in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise _text(400, f"Invalid value for {name}")


def _flag(request: Request, name: str) -> bool:
    """``?name`` alone means true, as in Consul."""
    if name not in request.query:
        return False
    raw = request.query[name]
    return True if raw == "" else _parse_bool(raw, name)


def _parse_wait(raw: str) -> float:
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", raw)
    if not parts or "".join(number + unit for number, unit in parts) != raw:
        raise _text(400, f"Invalid wait time: {raw!r}")
    return sum(float(number) * _WAIT_UNITS[unit] for number, unit in parts)


def _node_id(node: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"node:{node}"))


def _ordered(table: Mapping[str, Any]) -> list[Any]:
    """The values of ``table`` sorted by key, as Consul lists objects in key order."""
    return [table[key] for key in sorted(table)]


def _strip(record: Mapping[str, Any]) -> Json:
    return {key: value for key, value in record.items() if key not in _INDEX_KEYS}


def _put(table: dict[str, Json], key: str, record: Json, index: int) -> bool:
    """Store ``record`` under ``key`` unless an equal one is there; keep its CreateIndex. True if it changed."""
    current = table.get(key)
    if current is not None and _strip(current) == _strip(record):
        return False
    stored = _strip(record)
    stored["CreateIndex"] = current["CreateIndex"] if current is not None else index
    stored["ModifyIndex"] = index
    table[key] = stored
    return True


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _text(400, f"Request decode failed: {what} must be a list of strings")
    return list(value)


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _text(400, f"Request decode failed: {what} must be an object")
    return {str(key): str(item) for key, item in value.items()}


def _parse_service(raw: Any, name_key: str) -> Json:
    """A service definition; the agent API names it ``Name``, the catalog API ``Service``."""
    body = _object(raw, "service")
    name = _field(body, name_key)
    if not isinstance(name, str) or not name:
        raise _text(400, "Missing service name")
    port = _field(body, "Port") or 0
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise _text(400, "Invalid service port")
    weights = _field(body, "Weights") or {}
    if not isinstance(weights, Mapping):
        raise _text(400, "Request decode failed: Weights must be an object")
    passing, warning = _field(weights, "Passing", 1), _field(weights, "Warning", 1)
    if not isinstance(passing, int) or not isinstance(warning, int):
        raise _text(400, "Request decode failed: Weights must be integers")
    return {
        "ID": str(_field(body, "ID") or name),
        "Service": name,
        "Tags": _strings(_field(body, "Tags"), "Tags"),
        "Address": str(_field(body, "Address") or ""),
        "Port": port,
        "Meta": _string_map(_field(body, "Meta"), "Meta"),
        "Weights": {"Passing": passing, "Warning": warning},
        "EnableTagOverride": bool(_field(body, "EnableTagOverride", False)),
        "TaggedAddresses": dict(_field(body, "TaggedAddresses") or {}),
        "Kind": str(_field(body, "Kind") or ""),
    }


def _check_type(raw: Mapping[str, Any]) -> str:
    for key, kind in _CHECK_KINDS:
        if _field(raw, key) not in (None, "", []):
            return kind
    return ""


def _parse_check(raw: Any, *, agent: bool, service: Json | None = None, default_id: str = "") -> Json:
    """A check definition. Agent checks need a type; the emulator never runs them, so a new non-TTL check
    starts ``passing`` (as after a healthy first run) and a TTL check ``critical``; catalog checks default to critical.
    """
    body = _object(raw, "check")
    kind = _check_type(body)
    if agent and not kind:
        raise _text(400, "Invalid check: must provide TTL or Args/HTTP/TCP/UDP/GRPC/H2PING/DockerContainerID/Alias")
    name = _field(body, "Name") or (f"Service '{service['Service']}' check" if service else "")
    if not isinstance(name, str) or not name:
        raise _text(400, "Missing check name")
    check_id = _field(body, "CheckID") or _field(body, "ID") or default_id or name
    explicit = _field(body, "Status")
    status = explicit or ("passing" if agent and kind != "ttl" else "critical")
    if status not in _STATUSES:
        raise _text(400, f"Invalid check status: {status!r}")
    service_id = service["ID"] if service else str(_field(body, "ServiceID") or "")
    definition = {key: value for key in _DEFINITION_KEYS if (value := _field(body, key)) not in (None, "")}
    return {
        "CheckID": str(check_id),
        "Name": name,
        "Status": status,
        "Notes": str(_field(body, "Notes") or ""),
        "Output": str(_field(body, "Output") or ""),
        "ServiceID": service_id,
        "Type": kind,
        "Definition": definition,
        "_explicit_status": bool(explicit),
    }


def _identities(raw: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> list[Json]:
    """Service or node identities of a token, with canonical key names."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _text(400, "Request decode failed: identities must be a list")
    found = []
    for item in raw:
        body = _object(item, "identity")
        if not all(_field(body, key) for key in required):
            raise _text(400, f"Identity is missing one of the fields {', '.join(required)}")
        identity = {key: _field(body, key) for key in required}
        identity.update({key: _field(body, key) for key in optional if _field(body, key)})
        found.append(identity)
    return found


def _maintenance_check(check_id: str, name: str, reason: str, default: str, service_id: str = "") -> Json:
    return {
        "CheckID": check_id,
        "Name": name,
        "Status": "critical",
        "Notes": reason or default,
        "Output": "",
        "ServiceID": service_id,
        "Type": "maintenance",
        "Definition": {},
    }


# -- agents and tokens ------------------------------------------------------------------------
@dataclass
class _Agent:
    node: str
    address: str
    port: int
    server: _AgentServer | None = None
    status: str = "alive"  # alive | failed | left
    services: dict[str, Json] = field(default_factory=dict)
    checks: dict[str, Json] = field(default_factory=dict)

    @property
    def is_server(self) -> bool:
        return self.node == SERVER_NODE

    def node_record(self) -> Json:
        addresses = {"lan": self.address, "lan_ipv4": self.address, "wan": self.address, "wan_ipv4": self.address}
        return {
            "ID": _node_id(self.node),
            "Node": self.node,
            "Address": self.address,
            "Datacenter": DATACENTER,
            "TaggedAddresses": addresses,
            "Meta": {"consul-network-segment": "", "consul-version": VERSION},
        }

    def member(self) -> Json:
        tags = {
            "build": f"{VERSION}:emulated",
            "dc": DATACENTER,
            "id": _node_id(self.node),
            "role": "consul" if self.is_server else "node",
            "segment": "",
            "vsn": "2",
            "vsn_max": "3",
            "vsn_min": "2",
        }
        if self.is_server:
            tags.update({"port": "8300", "expect": "1", "bootstrap": "1", "raft_vsn": "3"})
        status = {"alive": _SERF_ALIVE, "failed": _SERF_FAILED, "left": _SERF_LEFT}[self.status]
        return {
            "Name": self.node,
            "Addr": self.address,
            "Port": 8301,
            "Tags": tags,
            "Status": status,
            "ProtocolMin": 1,
            "ProtocolMax": 5,
            "ProtocolCur": 2,
            "DelegateMin": 2,
            "DelegateMax": 5,
            "DelegateCur": 4,
        }


@dataclass
class _Token:
    accessor: str
    secret: str
    description: str
    policies: list[dict[str, str]]
    service_identities: list[Json]
    node_identities: list[Json]
    local: bool
    index: int
    created: str

    @property
    def management(self) -> bool:
        return any(link["ID"] == MANAGEMENT_POLICY_ID for link in self.policies)

    def levels(self) -> dict[str, str]:
        levels: dict[str, str] = {}
        if any(link["ID"] == READ_ONLY_POLICY_ID for link in self.policies):
            levels = dict.fromkeys(("acl", "agent", "node", "operator", "service"), "read")
        for link in self.policies:
            found = _POLICY_RIGHT.match(link["Name"])
            if found and levels.get(found.group(1)) != "write":
                levels[found.group(1)] = found.group(2)
        return levels

    def allows(self, resource: str, name: str, access: str) -> bool:
        if self.management or (access == "read" and resource in _OPEN_READS):
            return True
        level = self.levels().get(resource)
        if level == "write" or (level == "read" and access == "read"):
            return True
        if resource == "service":
            names = {str(item["ServiceName"]) for item in self.service_identities}
            return name in names or name in {f"{item}-sidecar-proxy" for item in names}
        if resource == "node":
            return name in {str(item["NodeName"]) for item in self.node_identities}
        return False

    def render(self) -> Json:
        digest = hashlib.sha256(f"{self.accessor}/{self.policies}/{self.service_identities}".encode()).digest()
        rendered: Json = {
            "AccessorID": self.accessor,
            "SecretID": self.secret,
            "Description": self.description,
            "Policies": [dict(link) for link in self.policies],
            "Local": self.local,
            "CreateTime": self.created,
            "Hash": base64.b64encode(digest).decode(),
            "CreateIndex": self.index,
            "ModifyIndex": self.index,
        }
        if self.service_identities:
            rendered["ServiceIdentities"] = [dict(item) for item in self.service_identities]
        if self.node_identities:
            rendered["NodeIdentities"] = [dict(item) for item in self.node_identities]
        return rendered


# -- agent listeners --------------------------------------------------------------------------
class _AgentServer(ThreadingHTTPServer):
    """One agent's listener. Never runs ``serve_forever``: :class:`_ListenerPool` accepts for it."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, 0), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn): skipped, as it costs a lookup per agent.
        socketserver.TCPServer.server_bind(self)
        self.server_name = LOOPBACK
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        del request, client_address  # connections cut by stop_agent end in socket errors; nothing to report

    def drop_connections(self) -> None:
        """The node died: cut its kept-alive connections too, so clients see a dead agent."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _ListenerPool:
    """Listening sockets of many agents, all watched by one selector thread.

    Each accepted connection is served by its own daemon thread (as ``ThreadingHTTPServer`` does), so an idle
    agent costs one socket and a selector entry, not a thread.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._servers: dict[int, _AgentServer] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="consul-agent-listeners", daemon=True)
        self._thread.start()

    def add(self, server: _AgentServer) -> None:
        server.socket.setblocking(False)
        with self._lock:
            self._servers[server.port] = server
            self._selector.register(server.socket, selectors.EVENT_READ, server)

    def remove(self, server: _AgentServer) -> None:
        with self._lock:
            if self._servers.get(server.port) is server:
                del self._servers[server.port]
                self._selector.unregister(server.socket)
        server.server_close()
        server.drop_connections()

    def stop(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._lock:
            servers = list(self._servers.values())
        for server in servers:
            self.remove(server)
        self._wake_writer.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                events = self._selector.select(timeout=0.2)
            except (OSError, ValueError):  # a socket closed under the selector; the next round is clean
                continue
            for key, _mask in events:
                if key.data is None:  # the wake-up socket: stop() wants the loop to notice now
                    continue
                server: _AgentServer = key.data
                with self._lock:
                    if self._servers.get(server.port) is not server:
                        continue
                self._accept(server)

    @staticmethod
    def _accept(server: _AgentServer) -> None:
        while True:
            try:
                connection, address = server.socket.accept()
            except OSError:  # BlockingIOError once the backlog is drained, EBADF if it was just closed
                return
            connection.setblocking(True)
            server.process_request(connection, address)


# -- the emulator -----------------------------------------------------------------------------
class ConsulEmulator(Emulator):
    """Consul ``dc1``: a server agent on :attr:`port`, client agents added with :meth:`add_agent`."""

    def __init__(
        self, acl_enabled: bool = False, management_token: str | None = None, sync_interval: float = 1.0
    ) -> None:
        super().__init__()
        self.acl_enabled = acl_enabled
        self.management_token = management_token
        self.sync_interval = sync_interval
        self._index = 0
        self._changed = threading.Condition(self.lock)
        self._stopping = threading.Event()
        self._started = False
        self._port: int | None = None
        self._server_ports: set[int] = set()
        self._pool = _ListenerPool()
        self._sync_thread: threading.Thread | None = None
        self._agents: dict[str, _Agent] = {}
        self._port_node: dict[int, str] = {}
        self._nodes: dict[str, Json] = {}
        self._services: dict[str, dict[str, Json]] = {}
        self._checks: dict[str, dict[str, Json]] = {}
        self._tokens: dict[str, _Token] = {}
        self._policy_names: dict[str, str] = dict(_BUILTIN_POLICIES)
        self._bootstrapped = False
        self._install_routes()
        self.add_control_routes()
        self._install_controls()

    # -- lifecycle ----------------------------------------------------------------------------
    def serve(self, port: int = 0, ssl_context: Any = None) -> int:
        """A listener answered as the server agent (the base serves it with its own thread)."""
        bound = super().serve(port, ssl_context)
        with self.lock:
            self._server_ports.add(bound)
        return bound

    def start(self) -> int:
        with self.lock:
            if self._started:
                raise RuntimeError("the Consul emulator is already started")
            self._started = True
        self._port = self.serve()
        self._pool.start()
        with self.lock:
            self._reset_state(self._port)
        if self.sync_interval > 0:
            self._sync_thread = threading.Thread(target=self._sync_loop, name="consul-anti-entropy", daemon=True)
            self._sync_thread.start()
        return self._port

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=5)
            self._sync_thread = None
        self._pool.stop()
        super().stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Consul emulator is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def index(self) -> int:
        return self._index

    # -- agents ---------------------------------------------------------------------------------
    def add_agent(self, node: str, address: str) -> int:
        """Start node ``node``'s agent (a new listener) and register the node; restarts a stopped agent."""
        if not node or not address:
            raise ValueError("node and address are required")
        with self.lock:
            if not self._started or self._stopping.is_set():
                raise RuntimeError("start() the Consul emulator first")
            existing = self._agents.get(node)
            if existing is not None and (existing.status == "alive" or existing.is_server):
                raise ValueError(f"agent {node!r} is already running")
        server = _AgentServer(self.handler_class())
        with self.lock:
            existing = self._agents.get(node)
            if existing is not None and existing.status == "alive":
                server.server_close()
                raise ValueError(f"agent {node!r} is already running")
            agent = existing or _Agent(node, address, server.port)
            agent.address, agent.port, agent.server, agent.status = address, server.port, server, "alive"
            self._agents[node] = agent
            self._port_node[server.port] = node
            self._reconcile_member(agent)
            self._sync_agent(agent)
        self._pool.add(server)
        return server.port

    def stop_agent(self, node: str) -> None:
        """The node dies: its listener closes, ``serfHealth`` turns critical, its catalog entries stay."""
        with self.lock:
            agent = self._agent_named(node)
            if agent.is_server:
                raise ValueError("the server agent cannot be stopped")
            if agent.status != "alive":
                return
            server = self._detach(agent, "failed")
            self._reconcile_member(agent)
        if server is not None:
            self._pool.remove(server)

    def force_leave(self, node: str, prune: bool = False) -> None:
        """The node leaves: it and its services/checks leave the catalog; its agent stops and no longer syncs."""
        with self.lock:
            agent = self._agent_named(node)
            if agent.is_server:
                raise ValueError("the server agent cannot be forced to leave in this emulator")
            server = self._detach(agent, "left")
            self._drop_node(node)
            if prune:
                del self._agents[node]
        if server is not None:
            self._pool.remove(server)

    def agent_port(self, node: str) -> int:
        with self.lock:
            return self._agent_named(node).port

    def agents(self) -> dict[str, Json]:
        with self.lock:
            return {
                name: {
                    "port": agent.port,
                    "alive": agent.status == "alive",
                    "status": agent.status,
                    "address": agent.address,
                }
                for name, agent in self._agents.items()
            }

    def register_services(self, node: str, services: Iterable[Mapping[str, Any]]) -> None:
        """Seed ``node``'s agent with services (agent API definitions: ``Name``, ``ID``, ``Port``, ...).

        The same result as one ``PUT /v1/agent/service/register`` per service on the agent, in one
        catalog sync and without HTTP (so not counted as a request); no checks, no ACL.
        """
        try:
            parsed = [_parse_service(raw, "Name") for raw in services]
        except HttpError as exc:
            raise ValueError(bytes(exc.body).decode()) from exc
        with self.lock:
            agent = self._agent_named(node)
            if agent.status != "alive":
                raise ValueError(f"agent {node!r} is not running")
            for service in parsed:
                agent.services[service["ID"]] = service
            self._sync_agent(agent)

    def services_by_agent(self) -> dict[str, list[str]]:
        """The service IDs each agent (server agent included) holds locally, sorted."""
        with self.lock:
            return {name: sorted(agent.services) for name, agent in self._agents.items()}

    def set_check_status(self, node: str, check_id: str, status: str, output: str = "") -> None:
        """What a check run would do: set the status of one of ``node``'s checks (in its agent and the catalog)."""
        if status not in _STATUSES:
            raise ValueError(f"status must be one of {_STATUSES}")
        with self.lock:
            agent = self._agents.get(node)
            if agent is not None and check_id in agent.checks:
                agent.checks[check_id].update(Status=status, Output=output)
                self._sync_agent(agent)
                return
            check = self._checks.get(node, {}).get(check_id)
            if check is None:
                raise KeyError(f"no check {check_id!r} on node {node!r}")
            _put(self._checks[node], check_id, {**check, "Status": status, "Output": output}, self._index + 1)
            self._commit()

    def sync(self) -> int:
        """Run anti-entropy now for every live agent; return how many nodes changed in the catalog."""
        with self.lock:
            changed = 0
            for agent in list(self._agents.values()):
                if self._reconcile_member(agent) | self._sync_agent(agent):
                    changed += 1
            return changed

    def reset(self) -> None:
        """Forget everything but the server agent and the configured management token."""
        with self.lock:
            servers = [agent.server for agent in self._agents.values() if agent.server is not None]
            self._reset_state(self.port)
        for server in servers:
            self._pool.remove(server)

    # -- state internals (call with self.lock held) ---------------------------------------------
    def _reset_state(self, port: int) -> None:
        self._agents.clear()
        self._port_node.clear()
        self._nodes.clear()
        self._services.clear()
        self._checks.clear()
        self._tokens.clear()
        self._policy_names = dict(_BUILTIN_POLICIES)
        self._bootstrapped = False
        if self.acl_enabled and self.management_token:
            self._add_token(self.management_token, "Initial Management Token")
            self._bootstrapped = True
        server = _Agent(SERVER_NODE, LOOPBACK, port)
        self._agents[SERVER_NODE] = server
        self._reconcile_member(server)
        self._commit()

    def _commit(self) -> int:
        self._index += 1
        self._changed.notify_all()
        return self._index

    def _agent_named(self, node: str) -> _Agent:
        agent = self._agents.get(node)
        if agent is None:
            raise KeyError(f"no agent for node {node!r}")
        return agent

    def _detach(self, agent: _Agent, status: str) -> _AgentServer | None:
        server, agent.server, agent.status = agent.server, None, status
        self._port_node.pop(agent.port, None)
        return server

    def _drop_node(self, node: str) -> bool:
        found = node in self._nodes
        self._nodes.pop(node, None)
        self._services.pop(node, None)
        self._checks.pop(node, None)
        if found:
            self._commit()
        return found

    def _reconcile_member(self, agent: _Agent) -> bool:
        """The leader's side: a live or failed member has its node and a ``serfHealth`` check in the catalog."""
        if agent.status == "left":
            return False
        index = self._index + 1
        changed = self._ensure_node(agent.node, agent.node_record(), index)
        alive = agent.status == "alive"
        serf: Json = {
            "Node": agent.node,
            "CheckID": SERF_CHECK,
            "Name": "Serf Health Status",
            "Status": "passing" if alive else "critical",
            "Notes": "",
            "Output": "Agent alive and reachable" if alive else "Agent not live or unreachable",
            "ServiceID": "",
            "Type": "",
            "Definition": {},
        }
        changed |= _put(self._checks.setdefault(agent.node, {}), SERF_CHECK, serf, index)
        if agent.is_server:
            consul = {
                "ID": "consul",
                "Service": "consul",
                "Tags": [],
                "Address": "",
                "Port": 8300,
                "Meta": {"raft_version": "3", "serf_protocol_current": "2", "version": VERSION},
                "Weights": {"Passing": 1, "Warning": 1},
                "EnableTagOverride": False,
                "TaggedAddresses": {},
                "Kind": "",
            }
            changed |= _put(self._services.setdefault(agent.node, {}), "consul", consul, index)
        if changed:
            self._commit()
        return changed

    def _ensure_node(self, node: str, record: Json, index: int) -> bool:
        self._services.setdefault(node, {})
        self._checks.setdefault(node, {})
        return _put(self._nodes, node, record, index)

    def _sync_agent(self, agent: _Agent) -> bool:
        """Anti-entropy for one agent: make the catalog's view of its node match the agent's local state."""
        if agent.status != "alive":
            return False
        index = self._index + 1
        node = agent.node
        changed = self._ensure_node(node, agent.node_record(), index)
        services, checks = self._services[node], self._checks[node]
        for service_id, service in agent.services.items():
            changed |= _put(services, service_id, service, index)
        for service_id in [sid for sid in services if sid not in agent.services]:
            if not (agent.is_server and service_id == "consul"):
                del services[service_id]
                changed = True
        for check_id, check in agent.checks.items():
            record = {key: value for key, value in check.items() if not key.startswith("_")}
            changed |= _put(checks, check_id, {"Node": node, **record}, index)
        for check_id in [cid for cid in checks if cid not in agent.checks and cid != SERF_CHECK]:
            del checks[check_id]
            changed = True
        if changed:
            self._commit()
        return changed

    def _sync_loop(self) -> None:
        while not self._stopping.wait(self.sync_interval):
            self.sync()

    # -- rendering ------------------------------------------------------------------------------
    def _render_node(self, node: str) -> Json:
        record = self._nodes[node]
        return {
            "ID": record.get("ID", ""),
            "Node": node,
            "Address": record.get("Address", ""),
            "Datacenter": DATACENTER,
            "TaggedAddresses": dict(record.get("TaggedAddresses") or {}),
            "Meta": dict(record.get("Meta") or {}),
            "CreateIndex": record["CreateIndex"],
            "ModifyIndex": record["ModifyIndex"],
        }

    @staticmethod
    def _render_service(service: Json, with_indexes: bool = True) -> Json:
        rendered: Json = {
            "ID": service["ID"],
            "Service": service["Service"],
            "Tags": list(service["Tags"]),
            "Address": service["Address"],
            "Meta": dict(service["Meta"]),
            "Port": service["Port"],
            "Weights": dict(service["Weights"]),
            "EnableTagOverride": service["EnableTagOverride"],
        }
        if service.get("TaggedAddresses"):
            rendered["TaggedAddresses"] = dict(service["TaggedAddresses"])
        if service.get("Kind"):
            rendered["Kind"] = service["Kind"]
        if with_indexes:
            rendered["CreateIndex"] = service["CreateIndex"]
            rendered["ModifyIndex"] = service["ModifyIndex"]
        return rendered

    def _render_check(self, node: str, check: Json, services: Mapping[str, Json] | None = None) -> Json:
        service = (services if services is not None else self._services.get(node, {})).get(check["ServiceID"])
        definition = dict(check.get("Definition") or {})
        rendered: Json = {
            "Node": node,
            "CheckID": check["CheckID"],
            "Name": check["Name"],
            "Status": check["Status"],
            "Notes": check["Notes"],
            "Output": check["Output"],
            "ServiceID": check["ServiceID"],
            "ServiceName": service["Service"] if service else "",
            "ServiceTags": list(service["Tags"]) if service else [],
            "Type": check["Type"],
            "Interval": str(definition.get("Interval", "")),
            "Timeout": str(definition.get("Timeout", "")),
            "ExposedPort": 0,
            "Definition": definition,
        }
        if "CreateIndex" in check:
            rendered["CreateIndex"] = check["CreateIndex"]
            rendered["ModifyIndex"] = check["ModifyIndex"]
        return rendered

    def _node_checks(self, node: str) -> list[Json]:
        return [self._render_check(node, check) for check in _ordered(self._checks.get(node, {}))]

    def _instances(self, name: str, tag: str | None) -> list[tuple[str, Json]]:
        found = []
        for node in sorted(self._nodes):
            for service in _ordered(self._services.get(node, {})):
                if service["Service"] == name and (tag is None or tag in service["Tags"]):
                    found.append((node, service))
        return found

    def _read(self, request: Request, body: Any) -> Response:
        return Response(
            body,
            200,
            {
                "X-Consul-Index": str(self._index),
                "X-Consul-KnownLeader": "true",
                "X-Consul-LastContact": "0",
                "X-Consul-Effective-Consistency": "consistent" if "consistent" in request.query else "leader",
            },
        )

    def _block(self, request: Request) -> None:
        """A blocking query (``?index=``) waits until the index moves past it, or ``wait`` (default 5 min) ends."""
        raw = request.query.get("index")
        if not raw:
            return
        try:
            target = int(raw)
        except ValueError as exc:
            raise _text(400, f"Invalid index: {raw!r}") from exc
        wait = min(_parse_wait(request.query["wait"]) if request.query.get("wait") else 300.0, _MAX_WAIT)
        deadline = time.monotonic() + wait
        with self._changed:
            while self._index <= target and not self._stopping.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(remaining)

    # -- ACLs -----------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        try:
            return super().dispatch(request)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a malformed body got past validation
            return Response(f"Internal error: {exc!r}".encode(), 500, dict(_TEXT))

    def authorize(self, request: Request) -> None:
        datacenter = request.query.get("dc")
        if datacenter and datacenter != DATACENTER:
            raise _text(500, "No path to datacenter")
        if request.method == "GET" and ("filter" in request.query or "node-meta" in request.query):
            # Answering unfiltered would be silently wrong: say it is not implemented.
            raise _text(400, "the Consul emulator does not implement ?filter= or ?node-meta=")
        if not self.acl_enabled or request.path == "/v1/acl/bootstrap" or request.path.startswith("/v1/status/"):
            return
        self._token_of(request)

    @staticmethod
    def _secret_of(request: Request) -> str:
        if request.query.get("token"):
            return request.query["token"]
        if request.headers.get("X-Consul-Token"):
            return str(request.headers["X-Consul-Token"])
        scheme, _space, value = str(request.headers.get("Authorization") or "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""

    def _token_of(self, request: Request) -> _Token:
        secret = self._secret_of(request)
        with self.lock:
            for token in self._tokens.values():
                if secret and token.secret == secret:
                    return token
        raise _text(403, "ACL not found")

    def _require(self, request: Request, resource: str, name: str, access: str) -> None:
        if not self.acl_enabled:
            return
        token = self._token_of(request)
        if not token.allows(resource, name, access):
            target = f' on "{name}"' if name else ""
            raise _text(
                403,
                f"Permission denied: token with AccessorID '{token.accessor}' "
                f"lacks permission '{resource}:{access}'{target}",
            )

    def _acl_on(self) -> None:
        if not self.acl_enabled:
            raise _text(401, "ACL support disabled")

    def _add_token(
        self,
        secret: str,
        description: str,
        *,
        policies: list[dict[str, str]] | None = None,
        accessor: str | None = None,
        service_identities: list[Json] | None = None,
        node_identities: list[Json] | None = None,
        local: bool = False,
    ) -> _Token:
        links = policies if policies is not None else [{"ID": MANAGEMENT_POLICY_ID, "Name": "global-management"}]
        token = _Token(
            accessor=accessor or str(uuid.uuid4()),
            secret=secret,
            description=description,
            policies=links,
            service_identities=service_identities or [],
            node_identities=node_identities or [],
            local=local,
            index=self._index + 1,
            created=datetime.now(UTC).isoformat(),
        )
        self._tokens[token.accessor] = token
        self._commit()
        return token

    def _policy_links(self, raw: Any) -> list[dict[str, str]]:
        links = []
        for item in raw or []:
            link = _object(item, "policy link")
            policy_id, name = str(_field(link, "ID") or ""), str(_field(link, "Name") or "")
            if name and not policy_id:
                policy_id = _POLICY_ALIASES.get(name) or next(
                    (pid for pid, known in self._policy_names.items() if known == name), ""
                )
                policy_id = policy_id or str(uuid.uuid5(_NAMESPACE, f"policy:{name}"))
                self._policy_names.setdefault(policy_id, name)
            if policy_id not in self._policy_names:
                raise _text(400, f"Cannot find policy {policy_id or name!r}")
            links.append({"ID": policy_id, "Name": self._policy_names[policy_id]})
        return links

    # -- routes ---------------------------------------------------------------------------------
    def _install_routes(self) -> None:
        add = self.router.add
        sid = r"(?P<service_id>[^/]+)"
        cid = r"(?P<check_id>[^/]+)"
        add("GET", "/v1/status/leader", lambda _r: f"{LOOPBACK}:8300")
        add("GET", "/v1/status/peers", lambda _r: [f"{LOOPBACK}:8300"])
        add("GET", "/v1/agent/self", self._agent_self)
        add("GET", "/v1/agent/members", self._agent_members)
        add("GET", "/v1/agent/services", self._agent_services)
        add("GET", f"/v1/agent/service/{sid}", self._agent_service)
        add("PUT", "/v1/agent/service/register", self._agent_register)
        add("PUT", f"/v1/agent/service/deregister/{sid}", self._agent_deregister)
        add("PUT", f"/v1/agent/service/maintenance/{sid}", self._agent_service_maintenance)
        add("PUT", "/v1/agent/maintenance", self._agent_node_maintenance)
        add("PUT", "/v1/agent/force-leave/(?P<node>[^/]+)", self._agent_force_leave)
        add("GET", "/v1/agent/checks", self._agent_checks)
        add("PUT", "/v1/agent/check/register", self._agent_check_register)
        add("PUT", f"/v1/agent/check/deregister/{cid}", self._agent_check_deregister)
        add("PUT", f"/v1/agent/check/(?P<verb>pass|warn|fail)/{cid}", self._agent_check_ttl)
        add("PUT", f"/v1/agent/check/update/{cid}", self._agent_check_update)
        add("GET", "/v1/catalog/datacenters", lambda _r: [DATACENTER])
        add("PUT", "/v1/catalog/register", self._catalog_register)
        add("PUT", "/v1/catalog/deregister", self._catalog_deregister)
        add("GET", "/v1/catalog/nodes", self._catalog_nodes)
        add("GET", "/v1/catalog/node/(?P<node>[^/]+)", self._catalog_node)
        add("GET", "/v1/catalog/services", self._catalog_services)
        add("GET", "/v1/catalog/service/(?P<name>[^/]+)", self._catalog_service)
        add("GET", "/v1/health/service/(?P<name>[^/]+)", self._health_service)
        add("GET", "/v1/health/node/(?P<node>[^/]+)", self._health_node)
        add("GET", "/v1/health/checks/(?P<name>[^/]+)", self._health_checks)
        add("GET", "/v1/health/state/(?P<state>[^/]+)", self._health_state)
        add("PUT", "/v1/acl/bootstrap", self._acl_bootstrap)
        add("PUT", "/v1/acl/token", self._acl_token_create)
        add("GET", "/v1/acl/tokens", self._acl_token_list)
        add("GET", "/v1/acl/token/self", self._acl_token_self)
        add("GET", "/v1/acl/token/(?P<accessor>[^/]+)", self._acl_token_read)
        add("DELETE", "/v1/acl/token/(?P<accessor>[^/]+)", self._acl_token_delete)

    # agent ------------------------------------------------------------------------------------
    def _agent_of(self, request: Request) -> _Agent:
        """The agent a request reached: the one listening on the port it came in on."""
        with self.lock:
            port = int(request.port)
            node = self._port_node.get(port)
            if node is None and port in self._server_ports:
                node = SERVER_NODE
            agent = self._agents.get(node) if node else None
            if agent is None or agent.status != "alive":
                raise _text(503, "agent is not running")
            return agent

    def _agent_self(self, request: Request) -> Json:
        with self.lock:
            agent = self._agent_of(request)
            return {
                "Config": {
                    "Datacenter": DATACENTER,
                    "PrimaryDatacenter": DATACENTER,
                    "NodeName": agent.node,
                    "NodeID": _node_id(agent.node),
                    "Server": agent.is_server,
                    "Revision": "emulated",
                    "Version": VERSION,
                    "BuildDate": "2025-01-01T00:00:00Z",
                },
                "Member": agent.member(),
                "Meta": {"consul-network-segment": "", "consul-version": VERSION},
                "Stats": {
                    "agent": {"checks": str(len(agent.checks)), "services": str(len(agent.services))},
                    "consul": {"server": str(agent.is_server).lower(), "known_servers": "1", "leader": "true"},
                },
            }

    def _agent_members(self, request: Request) -> list[Json]:
        with self.lock:
            self._agent_of(request)
            return [agent.member() for agent in _ordered(self._agents)]

    def _agent_services(self, request: Request) -> Json:
        with self.lock:
            agent = self._agent_of(request)
            return {
                service_id: {**self._render_service(service, with_indexes=False), "Datacenter": DATACENTER}
                for service_id, service in sorted(agent.services.items())
            }

    def _agent_service(self, request: Request, service_id: str) -> Response:
        with self.lock:
            service = self._agent_of(request).services.get(service_id)
            if service is None:
                raise _text(404, f"unknown service ID: {service_id}")
            rendered = {**self._render_service(service, with_indexes=False), "Datacenter": DATACENTER}
        content_hash = hashlib.sha256(repr(sorted(rendered.items())).encode()).hexdigest()[:16]
        rendered["ContentHash"] = content_hash
        return Response(rendered, 200, {"X-Consul-ContentHash": content_hash})

    def _agent_register(self, request: Request) -> Response:
        body = _object(request.json())
        service = _parse_service(body, "Name")
        self._require(request, "service", service["Service"], "write")
        raw_checks: list[Any] = []
        if _field(body, "Check"):
            raw_checks.append(_field(body, "Check"))
        more = _field(body, "Checks") or []
        if not isinstance(more, list):
            raise _text(400, "Request decode failed: Checks must be a list")
        raw_checks.extend(more)
        checks = []
        for number, raw in enumerate(raw_checks, 1):
            default_id = f"service:{service['ID']}" + ("" if len(raw_checks) == 1 else f":{number}")
            checks.append(_parse_check(raw, agent=True, service=service, default_id=default_id))
        replace = _flag(request, "replace-existing-checks")
        with self.lock:
            agent = self._agent_of(request)
            agent.services[service["ID"]] = service
            new_ids = {check["CheckID"] for check in checks}
            if replace:
                for check_id, check in list(agent.checks.items()):
                    owned = check["ServiceID"] == service["ID"] and check["Type"] != "maintenance"
                    if owned and check_id not in new_ids:
                        del agent.checks[check_id]
            for check in checks:
                self._store_agent_check(agent, check)
            self._sync_agent(agent)
        return _empty()

    @staticmethod
    def _store_agent_check(agent: _Agent, check: Json) -> None:
        # Re-registering a check keeps its current status, as Consul does, unless the request sets one.
        previous = agent.checks.get(check["CheckID"])
        if previous is not None and not check["_explicit_status"]:
            check = {**check, "Status": previous["Status"], "Output": previous["Output"]}
        agent.checks[check["CheckID"]] = {key: value for key, value in check.items() if not key.startswith("_")}

    def _agent_deregister(self, request: Request, service_id: str) -> Response:
        with self.lock:
            agent = self._agent_of(request)
            service = agent.services.get(service_id)
            if service is None:
                raise _text(404, f'Unknown service ID "{service_id}"')
            self._require(request, "service", service["Service"], "write")
            del agent.services[service_id]
            for check_id in [cid for cid, check in agent.checks.items() if check["ServiceID"] == service_id]:
                del agent.checks[check_id]
            self._sync_agent(agent)
        return _empty()

    def _agent_service_maintenance(self, request: Request, service_id: str) -> Response:
        if "enable" not in request.query:
            raise _text(400, "Missing value for enable")
        enable = _parse_bool(request.query["enable"], "enable")
        with self.lock:
            agent = self._agent_of(request)
            service = agent.services.get(service_id)
            if service is None:
                raise _text(404, f'Unknown service ID "{service_id}"')
            self._require(request, "service", service["Service"], "write")
            check_id = f"{SERVICE_MAINTENANCE_PREFIX}{service_id}"
            if enable and check_id not in agent.checks:
                default = _MAINTENANCE_DEFAULT.format("service")
                agent.checks[check_id] = _maintenance_check(
                    check_id, "Service Maintenance Mode", request.query.get("reason", ""), default, service_id
                )
            elif not enable:
                agent.checks.pop(check_id, None)
            self._sync_agent(agent)
        return _empty()

    def _agent_node_maintenance(self, request: Request) -> Response:
        if "enable" not in request.query:
            raise _text(400, "Missing value for enable")
        enable = _parse_bool(request.query["enable"], "enable")
        with self.lock:
            agent = self._agent_of(request)
            self._require(request, "node", agent.node, "write")
            if enable and NODE_MAINTENANCE not in agent.checks:
                default = _MAINTENANCE_DEFAULT.format("node")
                agent.checks[NODE_MAINTENANCE] = _maintenance_check(
                    NODE_MAINTENANCE, "Node Maintenance Mode", request.query.get("reason", ""), default
                )
            elif not enable:
                agent.checks.pop(NODE_MAINTENANCE, None)
            self._sync_agent(agent)
        return _empty()

    def _agent_force_leave(self, request: Request, node: str) -> Response:
        self._require(request, "operator", "", "write")
        if self._agent_of(request).node == node:
            raise _text(500, "Cannot force-leave the agent answering the request")
        try:
            self.force_leave(node, prune=_flag(request, "prune"))
        except KeyError as exc:
            raise _text(500, f"agent: No node found with name '{node}'") from exc
        except ValueError as exc:
            raise _text(500, str(exc)) from exc
        return _empty()

    def _agent_checks(self, request: Request) -> Json:
        with self.lock:
            agent = self._agent_of(request)
            return {
                check_id: self._render_check(agent.node, check, agent.services)
                for check_id, check in sorted(agent.checks.items())
            }

    def _agent_check_register(self, request: Request) -> Response:
        body = _object(request.json())
        with self.lock:
            agent = self._agent_of(request)
            service_id = str(_field(body, "ServiceID") or "")
            service = agent.services.get(service_id) if service_id else None
            if service_id and service is None:
                raise _text(404, f'ServiceID "{service_id}" does not exist')
            if service is not None:
                self._require(request, "service", service["Service"], "write")
            else:
                self._require(request, "node", agent.node, "write")
            check = _parse_check(body, agent=True)
            check["ServiceID"] = service_id
            self._store_agent_check(agent, check)
            self._sync_agent(agent)
        return _empty()

    def _local_check(self, request: Request, check_id: str) -> tuple[_Agent, Json]:
        agent = self._agent_of(request)
        check = agent.checks.get(check_id)
        if check is None:
            raise _text(404, f'Unknown check ID "{check_id}"')
        service = agent.services.get(check["ServiceID"]) if check["ServiceID"] else None
        if service is not None:
            self._require(request, "service", service["Service"], "write")
        else:
            self._require(request, "node", agent.node, "write")
        return agent, check

    def _agent_check_deregister(self, request: Request, check_id: str) -> Response:
        with self.lock:
            agent, _check = self._local_check(request, check_id)
            del agent.checks[check_id]
            self._sync_agent(agent)
        return _empty()

    def _agent_check_ttl(self, request: Request, verb: str, check_id: str) -> Response:
        status = {"pass": "passing", "warn": "warning", "fail": "critical"}[verb]
        return self._update_check(request, check_id, status, request.query.get("note", ""))

    def _agent_check_update(self, request: Request, check_id: str) -> Response:
        body = _object(request.json() or {})
        return self._update_check(
            request, check_id, str(_field(body, "Status") or ""), str(_field(body, "Output") or "")
        )

    def _update_check(self, request: Request, check_id: str, status: str, output: str) -> Response:
        if status not in _STATUSES:
            raise _text(400, f"Invalid check status: {status!r}")
        with self.lock:
            agent, check = self._local_check(request, check_id)
            if check["Type"] != "ttl":
                raise _text(500, f'CheckID "{check_id}" does not have associated TTL')
            check.update(Status=status, Output=output)
            self._sync_agent(agent)
        return _empty()

    # catalog ----------------------------------------------------------------------------------
    def _catalog_register(self, request: Request) -> bool:
        body = _object(request.json())
        node = _field(body, "Node")
        if not isinstance(node, str) or not node:
            raise _text(400, "Must provide node")
        raw_service = _field(body, "Service")
        service = _parse_service(raw_service, "Service") if raw_service else None
        raw_checks: list[Any] = [_field(body, "Check")] if _field(body, "Check") else []
        more = _field(body, "Checks") or []
        if not isinstance(more, list):
            raise _text(400, "Request decode failed: Checks must be a list")
        raw_checks.extend(more)
        checks = [_parse_check(raw, agent=False) for raw in raw_checks]
        with self.lock:
            current = self._nodes.get(node)
            skip = bool(_field(body, "SkipNodeUpdate", False)) and current is not None
            record: Json | None = None
            if not skip:
                address = _field(body, "Address")
                if not isinstance(address, str) or not address:
                    raise _text(400, "Must provide address")
                record = {
                    "ID": str(_field(body, "ID") or (current or {}).get("ID") or _node_id(node)),
                    "Node": node,
                    "Address": address,
                    "Datacenter": DATACENTER,
                    "TaggedAddresses": _string_map(_field(body, "TaggedAddresses"), "TaggedAddresses"),
                    "Meta": _string_map(_field(body, "NodeMeta"), "NodeMeta"),
                }
                if current is None or _strip(current) != record:
                    self._require(request, "node", node, "write")
            if service is not None:
                self._require(request, "service", service["Service"], "write")
            services = self._services.get(node, {})
            for check in checks:
                owner = services.get(check["ServiceID"]) if check["ServiceID"] else None
                if check["ServiceID"] and owner is None and not (service and service["ID"] == check["ServiceID"]):
                    raise _text(500, f'Unknown service ID "{check["ServiceID"]}" for check "{check["CheckID"]}"')
                if not check["ServiceID"] and service is None:
                    self._require(request, "node", node, "write")
            index = self._index + 1
            if record is not None:
                self._ensure_node(node, record, index)
            if service is not None:
                _put(self._services[node], service["ID"], service, index)
            for check in checks:
                stored = {key: value for key, value in check.items() if not key.startswith("_")}
                _put(self._checks[node], check["CheckID"], {"Node": node, **stored}, index)
            self._commit()
        return True

    def _catalog_deregister(self, request: Request) -> bool:
        body = _object(request.json())
        node = _field(body, "Node")
        if not isinstance(node, str) or not node:
            raise _text(400, "Must provide node")
        service_id, check_id = str(_field(body, "ServiceID") or ""), str(_field(body, "CheckID") or "")
        with self.lock:
            if node not in self._nodes:
                return True
            if service_id:
                service = self._services[node].get(service_id)
                if service is not None:
                    self._require(request, "service", service["Service"], "write")
                    del self._services[node][service_id]
                    for cid in [c for c, check in self._checks[node].items() if check["ServiceID"] == service_id]:
                        del self._checks[node][cid]
            elif check_id:
                self._require(request, "node", node, "write")
                self._checks[node].pop(check_id, None)
            else:
                self._require(request, "node", node, "write")
                self._drop_node(node)
                return True
            self._commit()
        return True

    def _catalog_nodes(self, request: Request) -> Response:
        self._block(request)
        with self.lock:
            return self._read(request, [self._render_node(node) for node in sorted(self._nodes)])

    def _catalog_node(self, request: Request, node: str) -> Response:
        self._block(request)
        with self.lock:
            if node not in self._nodes:
                return self._read(request, None)
            services = {sid: self._render_service(svc) for sid, svc in sorted(self._services.get(node, {}).items())}
            return self._read(request, {"Node": self._render_node(node), "Services": services})

    def _catalog_services(self, request: Request) -> Response:
        self._block(request)
        with self.lock:
            names: dict[str, list[str]] = {}
            for node in sorted(self._nodes):
                for service in _ordered(self._services.get(node, {})):
                    tags = names.setdefault(service["Service"], [])
                    tags.extend(tag for tag in service["Tags"] if tag not in tags)
            return self._read(request, dict(sorted(names.items())))

    def _catalog_service(self, request: Request, name: str) -> Response:
        self._block(request)
        with self.lock:
            entries = []
            for node, service in self._instances(name, request.query.get("tag")):
                rendered = self._render_node(node)
                entries.append(
                    {
                        "ID": rendered["ID"],
                        "Node": node,
                        "Address": rendered["Address"],
                        "Datacenter": DATACENTER,
                        "TaggedAddresses": rendered["TaggedAddresses"],
                        "NodeMeta": rendered["Meta"],
                        "ServiceKind": service.get("Kind", ""),
                        "ServiceID": service["ID"],
                        "ServiceName": service["Service"],
                        "ServiceTags": list(service["Tags"]),
                        "ServiceAddress": service["Address"],
                        "ServiceTaggedAddresses": dict(service.get("TaggedAddresses") or {}),
                        "ServiceWeights": dict(service["Weights"]),
                        "ServiceMeta": dict(service["Meta"]),
                        "ServicePort": service["Port"],
                        "ServiceEnableTagOverride": service["EnableTagOverride"],
                        "CreateIndex": service["CreateIndex"],
                        "ModifyIndex": service["ModifyIndex"],
                    }
                )
            return self._read(request, entries)

    # health -----------------------------------------------------------------------------------
    def _health_service(self, request: Request, name: str) -> Response:
        passing = _flag(request, "passing")
        self._block(request)
        with self.lock:
            entries = []
            for node, service in self._instances(name, request.query.get("tag")):
                checks = [
                    self._render_check(node, check)
                    for check in _ordered(self._checks.get(node, {}))
                    if check["ServiceID"] in ("", service["ID"])
                ]
                # ?passing keeps only instances whose node and service checks all pass, as Consul does.
                if passing and any(check["Status"] != "passing" for check in checks):
                    continue
                entries.append(
                    {"Node": self._render_node(node), "Service": self._render_service(service), "Checks": checks}
                )
            return self._read(request, entries)

    def _health_node(self, request: Request, node: str) -> Response:
        self._block(request)
        with self.lock:
            return self._read(request, self._node_checks(node))

    def _health_checks(self, request: Request, name: str) -> Response:
        self._block(request)
        with self.lock:
            found = [
                check
                for node in sorted(self._nodes)
                for check in self._node_checks(node)
                if check["ServiceName"] == name and check["ServiceID"]
            ]
            return self._read(request, found)

    def _health_state(self, request: Request, state: str) -> Response:
        if state not in ("any", *_STATUSES):
            raise _text(400, "Invalid check state")
        self._block(request)
        with self.lock:
            found = [
                check
                for node in sorted(self._nodes)
                for check in self._node_checks(node)
                if state in ("any", check["Status"])
            ]
            return self._read(request, found)

    # acl --------------------------------------------------------------------------------------
    def _acl_bootstrap(self, request: Request) -> Json:
        self._acl_on()
        body = _object(request.json() or {})
        with self.lock:
            if self._bootstrapped:
                raise _text(403, f"Permission denied: ACL bootstrap no longer allowed (reset index: {self._index})")
            secret = str(_field(body, "BootstrapSecret") or uuid.uuid4())
            token = self._add_token(secret, "Bootstrap Token (Global Management)")
            self._bootstrapped = True
            return token.render()

    def _acl_token_create(self, request: Request) -> Json:
        self._acl_on()
        self._require(request, "acl", "", "write")
        body = _object(request.json() or {})
        services = _identities(_field(body, "ServiceIdentities"), ("ServiceName",), ("Datacenters",))
        nodes = _identities(_field(body, "NodeIdentities"), ("NodeName", "Datacenter"), ())
        with self.lock:
            policies = self._policy_links(_field(body, "Policies"))
            accessor = str(_field(body, "AccessorID") or "") or None
            secret = str(_field(body, "SecretID") or "") or str(uuid.uuid4())
            if accessor in self._tokens or any(token.secret == secret for token in self._tokens.values()):
                raise _text(400, "Invalid Token: AccessorID or SecretID is already in use")
            token = self._add_token(
                secret,
                str(_field(body, "Description") or ""),
                policies=policies,
                accessor=accessor,
                service_identities=services,
                node_identities=nodes,
                local=bool(_field(body, "Local", False)),
            )
            return token.render()

    def _acl_token_list(self, request: Request) -> list[Json]:
        self._acl_on()
        self._require(request, "acl", "", "read")
        with self.lock:
            return [token.render() for token in sorted(self._tokens.values(), key=lambda t: t.index)]

    def _acl_token_self(self, request: Request) -> Json:
        self._acl_on()
        return self._token_of(request).render()

    def _acl_token_read(self, request: Request, accessor: str) -> Json:
        self._acl_on()
        self._require(request, "acl", "", "read")
        with self.lock:
            token = self._tokens.get(accessor)
            if token is None:
                raise _text(403, "ACL not found")
            return token.render()

    def _acl_token_delete(self, request: Request, accessor: str) -> bool:
        self._acl_on()
        self._require(request, "acl", "", "write")
        with self.lock:
            if self._token_of(request).accessor == accessor:
                raise _text(400, "Deletion of the request's authorization token is not permitted")
            if self._tokens.pop(accessor, None) is not None:
                self._commit()
        return True

    # -- test controls (never ACL-protected) ----------------------------------------------------
    def _install_controls(self) -> None:
        add = self.router.add
        add("GET", "/_emulator/agents", lambda _r: self.agents())
        add("POST", "/_emulator/agents", self._control_add_agent)
        add("DELETE", "/_emulator/agents/(?P<node>[^/]+)", self._control_stop_agent)
        add("POST", "/_emulator/sync", lambda _r: {"changed": self.sync(), "index": self._index})
        add("DELETE", "/_emulator/state", self._control_reset)
        add("PUT", "/_emulator/checks/(?P<node>[^/]+)/(?P<check_id>[^/]+)", self._control_check)
        add("GET", "/_emulator/config", self._control_config)

    def _control_add_agent(self, request: Request) -> Response:
        body = request.json() or {}
        node, address = body.get("node"), body.get("address")
        if not isinstance(node, str) or not node or not isinstance(address, str) or not address:
            raise HttpError(400, {"message": "node and address (strings) are required"})
        try:
            port = self.add_agent(node, address)
        except ValueError as exc:
            raise HttpError(409, {"message": str(exc)}) from exc
        return Response({"port": port})

    def _control_stop_agent(self, _request: Request, node: str) -> Response:
        try:
            self.stop_agent(node)
        except KeyError as exc:
            raise HttpError(404, {"message": f"no agent for node {node!r}"}) from exc
        except ValueError as exc:
            raise HttpError(400, {"message": str(exc)}) from exc
        return Response(None, 204)

    def _control_reset(self, _request: Request) -> Response:
        self.reset()
        return Response(None, 204)

    def _control_check(self, request: Request, node: str, check_id: str) -> Json:
        body = request.json() or {}
        try:
            self.set_check_status(node, check_id, str(body.get("Status", "")), str(body.get("Output", "")))
        except ValueError as exc:
            raise HttpError(400, {"message": str(exc)}) from exc
        except KeyError as exc:
            raise HttpError(404, {"message": str(exc)}) from exc
        return {"Node": node, "CheckID": check_id, "Status": body.get("Status")}

    def _control_config(self, _request: Request) -> Json:
        return {
            "datacenter": DATACENTER,
            "acl_enabled": self.acl_enabled,
            "management_token": self.management_token,
            "sync_interval": self.sync_interval,
            "index": self._index,
            "port": self.port,
        }
