# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Consul: deregister the services of interrupted instances, through their agents or the catalog.

Identity (docs/design/interruptions.md): the Consul node of an instance is the catalog node whose
``Address`` is the instance's private IP; its agent listens on ``<address>:<agent port>`` unless an
explicit ``host:port`` is given for the node name or the instance id.

Pure planning functions come first (typed, unit-tested without a server); the HTTP client
(``ansible.module_utils.urls``, no other dependency) and the per-node runner follow.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.urls import Request

try:
    from ansible.module_utils.urls import make_context
except ImportError:  # ansible-core without it builds a context per request, which is only slower
    make_context = None

Json = dict[str, Any]

MODES = ("auto", "agent", "catalog")
SCHEMES = ("http", "https")
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 8500
DEFAULT_SCHEME = "http"
CONSUL_SERVICE = "consul"
NODE_MAINTENANCE_CHECK = "_node_maintenance"
SERF_CHECK = "serfHealth"
MAX_CONCURRENCY = 256
# How much of an error body goes into a message: enough for Consul's one-line errors.
BODY_LIMIT = 500


class ConsulValidationError(ValueError):
    """Input that cannot work; the message names the field, the value and what is allowed."""


class ConsulError(Exception):
    """Consul answered a request with an error status, or could not be reached (``status`` is None)."""

    def __init__(self, method: str, url: str, status: int | None, body: str) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        super().__init__(self.describe())

    @property
    def unreachable(self) -> bool:
        return self.status is None

    def describe(self) -> str:
        if self.status is None:
            return f"{self.method} {self.url} failed: {self.body}"
        return f"{self.method} {self.url} answered HTTP {self.status}: {self.body.strip()[:BODY_LIMIT]}"


class DeadlineExceeded(Exception):
    """The overall deadline passed before the work was done."""


# -- addresses ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """Where an HTTP API listens."""

    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        suffix = f"?{urlencode(sorted(query.items()))}" if query else ""
        return f"{self.scheme}://{self.netloc}{path}{suffix}"


def parse_address(value: str, what: str, default_scheme: str, default_port: int | None) -> Endpoint:
    """``host``, ``host:port``, ``[v6]:port`` or ``scheme://host:port`` as an :class:`Endpoint`."""
    text = value.strip()
    if not text:
        raise ConsulValidationError(f"{what}: {value!r} is not allowed; use host:port or scheme://host:port")
    parts = urlsplit(text if "://" in text else f"{default_scheme}://{text}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    scheme = parts.scheme.lower()
    if (
        scheme not in SCHEMES
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
        or port == -1
        or (port is None and default_port is None)
    ):
        raise ConsulValidationError(
            f"{what}: {value!r} is not allowed; use host:port or scheme://host:port (scheme http or https)"
        )
    return Endpoint(scheme, parts.hostname, port if port is not None else int(default_port or 0))


def catalog_endpoint(host: str | None, port: int | None, scheme: str | None, http_addr: str | None) -> Endpoint:
    """The catalog API's endpoint: explicit options win, then ``CONSUL_HTTP_ADDR``, then localhost:8500 over http."""
    from_env = None
    if http_addr:
        from_env = parse_address(http_addr, "CONSUL_HTTP_ADDR", scheme or DEFAULT_SCHEME, DEFAULT_PORT)
    chosen_port = port if port is not None else (from_env.port if from_env else DEFAULT_PORT)
    if not 0 < chosen_port < 65536:
        raise ConsulValidationError(f"port: {chosen_port} is not allowed; use a TCP port between 1 and 65535")
    return Endpoint(
        scheme or (from_env.scheme if from_env else DEFAULT_SCHEME),
        host or (from_env.host if from_env else DEFAULT_HOST),
        chosen_port,
    )


# -- validation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instance:
    instance_id: str
    private_ip: str
    agent_port: int | None = None


@dataclass(frozen=True)
class Options:
    """What to do on every node, validated."""

    mode: str = "auto"
    maintenance: bool = True
    reason: str = ""
    services: tuple[str, ...] | None = None
    agent_port: int = DEFAULT_PORT
    timeout: float = 5.0
    deadline: float = 90.0
    concurrency: int = 20


def _check_port(value: int | None, what: str) -> None:
    if value is not None and not 0 < value < 65536:
        raise ConsulValidationError(f"{what}: {value} is not allowed; use a TCP port between 1 and 65535")


def validate_instances(raw: Sequence[Mapping[str, Any]]) -> list[Instance]:
    """The ``instances`` option as :class:`Instance` values; ids and addresses must be unique."""
    instances: list[Instance] = []
    seen_ids: dict[str, int] = {}
    seen_ips: dict[str, str] = {}
    for number, item in enumerate(raw):
        where = f"instances[{number}]"
        instance_id = str(item.get("instance_id") or "").strip()
        if not instance_id:
            raise ConsulValidationError(f"{where}.instance_id: {item.get('instance_id')!r} is not allowed; use an id")
        raw_ip = str(item.get("private_ip") or "").strip()
        try:
            private_ip = str(ipaddress.ip_address(raw_ip))
        except ValueError as exc:
            raise ConsulValidationError(
                f"{where}.private_ip: {item.get('private_ip')!r} is not allowed; use the instance's private IP address"
            ) from exc
        agent_port = item.get("agent_port")
        _check_port(agent_port, f"{where}.agent_port")
        if instance_id in seen_ids:
            raise ConsulValidationError(
                f"{where}.instance_id: {instance_id!r} is not allowed; it is already instances[{seen_ids[instance_id]}]"
            )
        if private_ip in seen_ips:
            raise ConsulValidationError(
                f"{where}.private_ip: {private_ip!r} is not allowed; it is already the address of "
                f"{seen_ips[private_ip]!r} (one Consul node per address)"
            )
        seen_ids[instance_id] = number
        seen_ips[private_ip] = instance_id
        instances.append(Instance(instance_id, private_ip, agent_port))
    return instances


def validate_options(
    mode: str,
    maintenance: bool,
    reason: str | None,
    services: Sequence[str] | None,
    agent_port: int,
    timeout: float,
    deadline: float,
    concurrency: int,
) -> Options:
    if mode not in MODES:
        raise ConsulValidationError(f"mode: {mode!r} is not allowed; use one of {', '.join(MODES)}")
    _check_port(agent_port, "agent_port")
    if not timeout > 0:
        raise ConsulValidationError(f"timeout: {timeout} is not allowed; use a number of seconds > 0")
    if not deadline > 0:
        raise ConsulValidationError(f"deadline: {deadline} is not allowed; use a number of seconds > 0")
    if not 0 < concurrency <= MAX_CONCURRENCY:
        raise ConsulValidationError(
            f"concurrency: {concurrency} is not allowed; use a number of parallel nodes between 1 and {MAX_CONCURRENCY}"
        )
    wanted = None
    if services is not None:
        blank = [name for name in services if not str(name).strip()]
        if blank or not services:
            raise ConsulValidationError(
                f"services: {list(services)!r} is not allowed; use a non-empty list of service names or ids, "
                "or omit it for every service but consul"
            )
        wanted = tuple(sorted({str(name) for name in services}))
    return Options(mode, maintenance, reason or "", wanted, agent_port, float(timeout), float(deadline), concurrency)


def validate_agent_addresses(raw: Mapping[str, Any] | None, scheme: str) -> dict[str, Endpoint]:
    """``agent_addresses`` (node name or instance id -> host:port) as endpoints."""
    return {
        str(key): parse_address(str(value), f"agent_addresses[{key!r}]", scheme, None)
        for key, value in (raw or {}).items()
    }


# -- planning -----------------------------------------------------------------------------------
@dataclass
class Job:
    """One instance's work: its node (None when it has none) and where its agent answers."""

    instance: Instance
    node: str | None
    agent: Endpoint | None
    error: str | None = None


def plan_jobs(
    instances: Sequence[Instance],
    catalog_nodes: Sequence[Mapping[str, Any]],
    agent_addresses: Mapping[str, Endpoint],
    agent_port: int,
    scheme: str,
) -> list[Job]:
    """Match instances to catalog nodes by ``Address`` == private IP, and decide where each agent answers.

    An address shared by several nodes is an error for that instance: guessing could empty the wrong node.
    """
    by_address: dict[str, list[str]] = {}
    for entry in catalog_nodes:
        address = str(entry.get("Address") or "")
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            pass
        by_address.setdefault(address, []).append(str(entry.get("Node")))
    jobs = []
    for instance in instances:
        names = sorted(by_address.get(instance.private_ip, []))
        if not names:
            jobs.append(Job(instance, None, None))
            continue
        if len(names) > 1:
            jobs.append(
                Job(
                    instance,
                    None,
                    None,
                    f"private_ip {instance.private_ip} is the address of several Consul nodes ({', '.join(names)}); "
                    "deregister the stale node first",
                )
            )
            continue
        node = names[0]
        agent = agent_addresses.get(node) or agent_addresses.get(instance.instance_id)
        if agent is None:
            agent = Endpoint(scheme, instance.private_ip, instance.agent_port or agent_port)
        jobs.append(Job(instance, node, agent))
    return jobs


def select_services(services: Mapping[str, Mapping[str, Any]], wanted: Sequence[str] | None) -> list[str]:
    """IDs of the services to deregister: those named (by name or id) in ``wanted``, else all but ``consul``."""
    chosen = []
    for service_id, service in services.items():
        name = str(service.get("Service") or service_id)
        if wanted is None:
            if CONSUL_SERVICE not in (service_id, name):
                chosen.append(service_id)
        elif service_id in wanted or name in wanted:
            chosen.append(service_id)
    return sorted(chosen)


@dataclass(frozen=True)
class Plan:
    """The writes one node needs: enable node maintenance first, then deregister these services."""

    enable_maintenance: bool
    deregister: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return self.enable_maintenance or bool(self.deregister)


def plan_agent(
    services: Mapping[str, Mapping[str, Any]],
    checks: Mapping[str, Any],
    wanted: Sequence[str] | None,
    maintenance: bool,
) -> Plan:
    """What the node's agent must do; nothing when maintenance is on already and the services are gone."""
    return Plan(maintenance and NODE_MAINTENANCE_CHECK not in checks, tuple(select_services(services, wanted)))


def plan_catalog(services: Mapping[str, Mapping[str, Any]], wanted: Sequence[str] | None) -> Plan:
    """What the catalog must drop (node maintenance is an agent feature: the catalog cannot set it)."""
    return Plan(False, tuple(select_services(services, wanted)))


def agent_alive(health_checks: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the leader still sees the node's agent (``serfHealth`` passing): it would undo a catalog removal."""
    return any(check.get("CheckID") == SERF_CHECK and check.get("Status") == "passing" for check in health_checks)


# -- results ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one instance (or would, in check mode)."""

    job: Job
    mode: str | None = None
    before: list[str] = field(default_factory=list)
    deregistered: list[str] = field(default_factory=list)
    maintenance_before: bool = False
    maintenance_after: bool = False
    error: str | None = None
    warning: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.deregistered) or (self.maintenance_after and not self.maintenance_before)

    def describe(self) -> Json:
        """One element of ``consul_deregistrations``."""
        return {
            "instance_id": self.job.instance.instance_id,
            "private_ip": self.job.instance.private_ip,
            "node": self.job.node,
            "agent_address": self.job.agent.netloc if self.job.agent and self.mode == "agent" else None,
            "mode": self.mode,
            "services": list(self.deregistered),
            "maintenance": self.maintenance_after,
            "changed": self.changed,
            "error": self.error,
        }


def diff(outcomes: Sequence[Outcome]) -> Json:
    """``before``/``after`` per node: its services and whether it is in maintenance."""
    before: Json = {}
    after: Json = {}
    for outcome in outcomes:
        node = outcome.job.node
        if node is None or outcome.mode is None:
            continue
        removed = set(outcome.deregistered)
        before[node] = {"services": sorted(outcome.before), "maintenance": outcome.maintenance_before}
        after[node] = {
            "services": sorted(set(outcome.before) - removed),
            "maintenance": outcome.maintenance_after,
        }
    return {"before": before, "after": after}


def failure_message(outcomes: Sequence[Outcome]) -> str | None:
    """The module's failure message naming every failed instance and its Consul error, or None."""
    failed = [outcome for outcome in outcomes if outcome.error]
    if not failed:
        return None
    details = "; ".join(f"{o.job.instance.instance_id} ({o.job.node or 'no node'}): {o.error}" for o in failed)
    return f"Consul deregistration failed for {len(failed)} of {len(outcomes)} instances: {details}"


# -- HTTP ---------------------------------------------------------------------------------------
class Clock:
    """The overall deadline; every request's timeout is capped by what is left of it."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._end = now() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return self._end - self._now()

    def timeout(self, per_request: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(f"deadline: the {self.seconds:g} seconds allowed for the whole run have passed")
        return min(per_request, left)


class ConsulClient:
    """Consul's HTTP API with one token and TLS setting for the catalog endpoint and every agent."""

    def __init__(
        self,
        token: str | None,
        validate_certs: bool,
        ca_path: str | None,
        timeout: float,
        clock: Clock,
    ) -> None:
        self._token = token
        self._timeout = timeout
        self._clock = clock
        # One TLS context for every request: building one loads the CA store, which costs more than a request.
        settings: dict[str, Any] = dict(validate_certs=validate_certs, ca_path=ca_path, follow_redirects="none")
        if make_context is not None:
            settings["context"] = make_context(cafile=ca_path, validate_certs=validate_certs)
        try:
            self._session = Request(use_netrc=False, **settings)
        except TypeError:  # an ansible-core whose Request takes no context
            settings.pop("context", None)
            self._session = Request(use_netrc=False, **settings)
        self.writes = 0
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        endpoint: Endpoint,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """Send one request; return its decoded JSON body (None when empty); raise :class:`ConsulError`."""
        url = endpoint.url(path, query)
        headers = {"Accept": "application/json"}
        if self._token:
            headers["X-Consul-Token"] = self._token
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        timeout = self._clock.timeout(self._timeout)
        if method != "GET":
            with self._lock:
                self.writes += 1
        try:
            with self._session.open(method, url, data=data, headers=headers, timeout=timeout) as response:
                raw = response.read()
        except HTTPError as exc:
            text = exc.read().decode("utf-8", "replace") if exc.fp is not None else str(exc.reason)
            raise ConsulError(method, url, exc.code, text) from exc
        except URLError as exc:
            raise ConsulError(method, url, None, f"cannot connect: {exc.reason}") from exc
        except (OSError, HTTPException) as exc:  # timeouts, resets, broken replies
            raise ConsulError(method, url, None, f"{type(exc).__name__}: {exc}") from exc
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConsulError(method, url, 200, f"not JSON: {raw[:BODY_LIMIT]!r}") from exc


# -- per-node work ------------------------------------------------------------------------------
def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"unexpected answer to {what}: {value!r}"[:BODY_LIMIT])
    return value


def _via_agent(client: ConsulClient, outcome: Outcome, options: Options, check_mode: bool, fallback: bool) -> bool:
    """Agent mode; False when the agent did not answer and ``fallback`` allows the catalog instead."""
    job = outcome.job
    if job.agent is None or job.node is None:
        return False
    try:
        own = _as_dict(client.request("GET", job.agent, "/v1/agent/self"), "GET /v1/agent/self")
    except ConsulError as exc:
        if fallback and exc.unreachable:
            return False
        raise
    outcome.mode = "agent"
    name = (own.get("Config") or {}).get("NodeName")
    if name != job.node:
        raise ValueError(
            f"the agent at {job.agent.netloc} is node {name!r}, not {job.node!r}: nothing was changed "
            "(check agent_addresses and agent_port)"
        )
    services = _as_dict(client.request("GET", job.agent, "/v1/agent/services"), "GET /v1/agent/services")
    checks = _as_dict(client.request("GET", job.agent, "/v1/agent/checks"), "GET /v1/agent/checks")
    outcome.before = sorted(services)
    outcome.maintenance_before = outcome.maintenance_after = NODE_MAINTENANCE_CHECK in checks
    plan = plan_agent(services, checks, options.services, options.maintenance)
    if check_mode:
        outcome.maintenance_after = outcome.maintenance_before or plan.enable_maintenance
        outcome.deregistered = list(plan.deregister)
        return True
    if plan.enable_maintenance:
        query = {"enable": "true"}
        if options.reason:
            query["reason"] = options.reason
        client.request("PUT", job.agent, "/v1/agent/maintenance", query)
        outcome.maintenance_after = True
    for service_id in plan.deregister:
        try:
            client.request("PUT", job.agent, f"/v1/agent/service/deregister/{quote(service_id, safe='')}")
        except ConsulError as exc:
            if exc.status != 404:  # gone meanwhile: what we wanted
                raise
        outcome.deregistered.append(service_id)
    return True


def _via_catalog(client: ConsulClient, catalog: Endpoint, outcome: Outcome, options: Options, check_mode: bool) -> None:
    job = outcome.job
    if job.node is None:
        return
    outcome.mode = "catalog"
    path = f"/v1/catalog/node/{quote(job.node, safe='')}"
    entry = _as_dict(client.request("GET", catalog, path), f"GET {path}")
    services = _as_dict(entry.get("Services"), f"GET {path}")
    outcome.before = sorted(services)
    health = client.request("GET", catalog, f"/v1/health/node/{quote(job.node, safe='')}")
    checks = [check for check in health if isinstance(check, dict)] if isinstance(health, list) else []
    outcome.maintenance_before = outcome.maintenance_after = any(
        check.get("CheckID") == NODE_MAINTENANCE_CHECK for check in checks
    )
    plan = plan_catalog(services, options.services)
    if plan.deregister and options.mode == "catalog" and agent_alive(checks):
        outcome.warning = (
            f"node {job.node} ({job.instance.instance_id}): its agent is alive, so anti-entropy will "
            "register the services again; use mode agent or auto"
        )
    if check_mode:
        outcome.deregistered = list(plan.deregister)
        return
    for service_id in plan.deregister:
        client.request("PUT", catalog, "/v1/catalog/deregister", body={"Node": job.node, "ServiceID": service_id})
        outcome.deregistered.append(service_id)


def deregister_one(client: ConsulClient, catalog: Endpoint, job: Job, options: Options, check_mode: bool) -> Outcome:
    """All the work of one instance; errors end up in the outcome, never raised."""
    outcome = Outcome(job, error=job.error)
    if job.node is None or job.error:
        return outcome
    try:
        done = False
        if options.mode in ("agent", "auto"):
            done = _via_agent(client, outcome, options, check_mode, fallback=options.mode == "auto")
        if not done:
            _via_catalog(client, catalog, outcome, options, check_mode)
    except (ConsulError, DeadlineExceeded, ValueError) as exc:
        outcome.error = str(exc)
    return outcome


def deregister_all(
    client: ConsulClient, catalog: Endpoint, jobs: Sequence[Job], options: Options, check_mode: bool
) -> list[Outcome]:
    """Every instance's work on a bounded thread pool; outcomes in the order of ``jobs``."""
    busy = [job for job in jobs if job.node is not None and not job.error]
    if not busy:
        return [Outcome(job, error=job.error) for job in jobs]
    with ThreadPoolExecutor(max_workers=min(options.concurrency, len(busy))) as pool:
        futures = [pool.submit(deregister_one, client, catalog, job, options, check_mode) for job in jobs]
        return [future.result() for future in futures]


def read_catalog_nodes(client: ConsulClient, catalog: Endpoint) -> list[Json]:
    """Every catalog node (one request for the whole batch)."""
    nodes = client.request("GET", catalog, "/v1/catalog/nodes")
    if not isinstance(nodes, list):
        raise ConsulError("GET", catalog.url("/v1/catalog/nodes"), 200, f"expected a list of nodes, got {nodes!r}")
    return [node for node in nodes if isinstance(node, dict)]
