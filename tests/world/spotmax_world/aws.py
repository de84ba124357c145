"""The local AWS of the test world: moto in server mode plus the project's extensions.

moto's WSGI app is wrapped in a middleware that injects throttling, serialises requests
against the extensions' background ticker, and serves test controls under ``/_spotmax/``:

==========  ===============================  ==============================================
method      path                             body / effect
==========  ===============================  ==============================================
GET         /_spotmax/clock                  virtual clock offset and time
POST        /_spotmax/clock                  ``{"advance_seconds": n}``, then one tick
GET         /_spotmax/faults                 the active faults
PUT/DELETE  /_spotmax/faults/spot-capacity   ``{"instance_types": [..], "zones": [..]}``
PUT/DELETE  /_spotmax/faults/throttle        ``{"service": s, "actions": [..], "count": n}``
POST        /_spotmax/reset                  moto's reset, faults and clock cleared
POST        /_spotmax/tick                   apply time-based transitions now
POST        /_spotmax/interrupt              ``{"instance_ids": [..], "notice_seconds": 120}``
POST        /_spotmax/rebalance              ``{"instance_ids": [..]}``
GET/DELETE  /_spotmax/requests               API calls served, as ``{"service:Action": n}``; DELETE clears
==========  ===============================  ==============================================

moto keeps its state in module globals: run one emulator per process.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.error import HTTPError
from urllib.parse import parse_qs
from urllib.request import Request as UrlRequest
from urllib.request import urlopen

import boto3
from botocore.config import Config
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from spotmax_world import moto_ext
from spotmax_world._http import RESPONSE_BUFFER
from spotmax_world.moto_ext import eks, interruptions
from spotmax_world.moto_ext.faults import throttle_reply
from spotmax_world.moto_ext.runtime import RUNTIME

LOOPBACK = "127.0.0.1"
CONTROL_PREFIX = "/_spotmax/"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

StartResponse = Callable[..., Any]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def identify(environ: dict[str, Any]) -> tuple[str, str, bool]:
    """(signing service, action, JSON protocol?) of an AWS request; empty strings when unknown.

    Reads a form body and puts it back, so moto still sees it.
    """
    service = ""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3].lower()
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1], True
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        params.update(parse_qs(body.decode("utf-8", "replace")))
    action = (params.get("Action") or [""])[0]
    return service, action, False


class _Middleware:
    def __init__(self, emulator: AwsEmulator, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.emulator = emulator
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith(CONTROL_PREFIX):
            response = self.emulator.handle_control(Request(environ))
            return response(environ, start_response)
        service, action, json_protocol = identify(environ)
        if service and action:
            self.emulator.count_request(service, action)
        if service and action and RUNTIME.faults.take_throttle(service, action):
            status, headers, body = throttle_reply(service, json_protocol)
            start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(body)))])
            return [body]
        if service == "sqs" and action == "ReceiveMessage":
            # Long polls must not hold the lock the rest of the world needs.
            return self.app(environ, start_response)
        with RUNTIME.lock:
            return list(self.app(environ, start_response))


class _QuietHandler(MotoRequestHandler):
    # Status line, headers and body are buffered and sent with one write at werkzeug's flush.
    wbufsize = RESPONSE_BUFFER

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        del code, size  # no access log; werkzeug still logs errors

    def date_time_string(self, timestamp: float | None = None) -> str:
        # Clients that take "now" from AWS's Date header see the virtual clock, as they would AWS's.
        return formatdate(RUNTIME.clock.unix() if timestamp is None else timestamp, usegmt=True)


class AwsEmulator:
    """moto server with the spotmax extensions on ``127.0.0.1``, a free port, in a daemon thread.

    moto keeps its resources per process, so every start begins from an empty account; run one
    emulator at a time in a process.
    """

    def __init__(self, region: str = "us-east-1", tick_interval: float = 0.2, default_amis: bool = False) -> None:
        """``default_amis``: load moto's catalogue of public AMIs (slow; RunInstances accepts any image id)."""
        self.region = region
        self.default_amis = default_amis
        self.account_id = DEFAULT_ACCOUNT_ID
        self._ticker = moto_ext.Ticker(tick_interval)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._requests: Counter[str] = Counter()
        self._requests_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> AwsEmulator:
        if self._server is not None:
            return self
        moto_ext.apply()
        # moto's backends are process-wide: a new emulator must not inherit an earlier one's resources.
        with RUNTIME.lock:
            moto_api_backend.reset()
            RUNTIME.reset()
        RUNTIME.default_amis = self.default_amis
        app = _Middleware(self, DomainDispatcherApplication(create_backend_app))
        self._server = make_server(LOOPBACK, 0, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="spotmax-aws", daemon=True
        )
        self._thread.start()
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._ticker.stop()
        with RUNTIME.lock:  # the Kubernetes API the clusters pointed at goes away with the world
            RUNTIME.eks_api, RUNTIME.eks_clusters = None, []
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> AwsEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the AWS emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(service, **kwargs)`` against this emulator."""
        return {"endpoint_url": self.url, "region_name": self.region, **DUMMY_CREDENTIALS}

    def client(self, service: str, attempts: int | None = None) -> Any:
        """A boto3 client for ``service``; ``attempts=1`` turns botocore's retries off."""
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts}) if attempts else None
        return boto3.client(service, config=config, **self.client_kwargs())

    # -- test controls (the same as the HTTP endpoints) -------------------------------------
    def clock(self) -> dict[str, object]:
        return RUNTIME.clock.snapshot()

    def advance_clock(self, seconds: float) -> dict[str, object]:
        """Move the virtual clock forward and apply what became due."""
        RUNTIME.clock.advance(seconds)
        self.tick()
        return self.clock()

    def tick(self) -> None:
        moto_ext.tick()

    def faults(self) -> dict[str, Any]:
        return RUNTIME.faults.snapshot()

    def set_spot_capacity_fault(self, instance_types: Iterable[str] = (), zones: Iterable[str] = ()) -> None:
        RUNTIME.faults.set_spot_capacity(instance_types, zones)

    def clear_spot_capacity_fault(self) -> None:
        RUNTIME.faults.clear_spot_capacity()

    def set_throttle(self, service: str, actions: Iterable[str] = (), count: int = 1) -> None:
        RUNTIME.faults.set_throttle(service, actions, count)

    def clear_throttle(self, service: str | None = None) -> None:
        RUNTIME.faults.clear_throttle(service)

    def reset(self) -> None:
        """moto's reset; the EKS clusters of :meth:`serve_eks` come back at once."""
        with RUNTIME.lock:
            moto_api_backend.reset()
            RUNTIME.reset()
            eks.ensure_clusters(self.account_id, self.region, RUNTIME.eks_clusters)
        self.clear_requests()

    def serve_eks(self, endpoint: str, ca_pem: bytes | None, clusters: Iterable[str]) -> None:
        """EKS clusters report ``endpoint`` (and ``ca_pem``) as their API; ``clusters`` exist from now on."""
        with RUNTIME.lock:
            RUNTIME.eks_api = eks.EksApi(endpoint, ca_pem)
            RUNTIME.eks_clusters = list(clusters)
            eks.ensure_clusters(self.account_id, self.region, RUNTIME.eks_clusters)

    def interrupt(self, instance_ids: Iterable[str], notice_seconds: float = 120) -> dict[str, Any]:
        with RUNTIME.lock:
            return interruptions.interrupt(self.account_id, self.region, list(instance_ids), notice_seconds)

    def rebalance(self, instance_ids: Iterable[str]) -> dict[str, Any]:
        with RUNTIME.lock:
            return interruptions.rebalance(self.account_id, self.region, list(instance_ids))

    def count_request(self, service: str, action: str) -> None:
        with self._requests_lock:
            self._requests[f"{service}:{action}"] += 1

    def requests(self) -> dict[str, int]:
        """API calls served since start or the last :meth:`clear_requests`, by ``service:Action``."""
        with self._requests_lock:
            return dict(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    # -- HTTP controls -----------------------------------------------------------------------
    def handle_control(self, request: Request) -> Response:
        try:
            body = self._route(request.method, request.path[len(CONTROL_PREFIX) :].strip("/"), request)
        except ControlError as exc:
            return _json({"message": exc.message}, exc.status)
        except (TypeError, ValueError) as exc:
            return _json({"message": str(exc)}, 400)
        return _json(body, 200)

    def _route(self, method: str, path: str, request: Request) -> Any:
        routes: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
            "clock": {"GET": lambda _b: self.clock(), "POST": self._c_clock},
            "faults": {"GET": lambda _b: self.faults()},
            "faults/spot-capacity": {"PUT": self._c_spot, "DELETE": lambda _b: self._c_clear_spot()},
            "faults/throttle": {"PUT": self._c_throttle, "DELETE": lambda _b: self._c_clear_throttle(request)},
            "reset": {"POST": lambda _b: self._c_reset()},
            "tick": {"POST": lambda _b: self._c_tick()},
            "interrupt": {"POST": self._c_interrupt},
            "rebalance": {"POST": self._c_rebalance},
            "requests": {"GET": lambda _b: self.requests(), "DELETE": lambda _b: self._c_clear_requests()},
        }
        if path not in routes:
            raise ControlError(404, f"no control at {CONTROL_PREFIX}{path}")
        handler = routes[path].get(method)
        if handler is None:
            raise ControlError(405, f"{method} is not allowed on {CONTROL_PREFIX}{path}")
        return handler(_body(request))

    def _c_clock(self, body: dict[str, Any]) -> dict[str, object]:
        seconds = body.get("advance_seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ControlError(400, "advance_seconds: a number >= 0 is required")
        return self.advance_clock(float(seconds))

    def _c_spot(self, body: dict[str, Any]) -> dict[str, Any]:
        self.set_spot_capacity_fault(_strings(body, "instance_types"), _strings(body, "zones"))
        return self.faults()

    def _c_clear_spot(self) -> dict[str, Any]:
        self.clear_spot_capacity_fault()
        return self.faults()

    def _c_throttle(self, body: dict[str, Any]) -> dict[str, Any]:
        service, count = body.get("service"), body.get("count", 1)
        if not isinstance(service, str) or not service:
            raise ControlError(400, "service: a service name such as autoscaling, ec2 or sqs is required")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ControlError(400, "count: an integer >= 0 is required")
        self.set_throttle(service, _strings(body, "actions"), count)
        return self.faults()

    def _c_clear_throttle(self, request: Request) -> dict[str, Any]:
        self.clear_throttle(request.args.get("service") or None)
        return self.faults()

    def _c_reset(self) -> dict[str, str]:
        self.reset()
        return {"status": "ok"}

    def _c_clear_requests(self) -> dict[str, int]:
        self.clear_requests()
        return self.requests()

    def _c_tick(self) -> dict[str, object]:
        self.tick()
        return self.clock()

    def _c_interrupt(self, body: dict[str, Any]) -> dict[str, Any]:
        notice = body.get("notice_seconds", 120)
        if not isinstance(notice, (int, float)) or isinstance(notice, bool) or notice < 0:
            raise ControlError(400, "notice_seconds: a number >= 0 is required")
        return self.interrupt(_strings(body, "instance_ids"), float(notice))

    def _c_rebalance(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.rebalance(_strings(body, "instance_ids"))


def control(base_url: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """Call a ``/_spotmax/`` control of a running emulator; returns (HTTP status, JSON body)."""
    if not base_url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"controls are served on http://{LOOPBACK} only, not {base_url}")
    data = json.dumps(body).encode() if body is not None else None
    url = f"{base_url}{CONTROL_PREFIX}{path.strip('/')}"
    request = UrlRequest(url, data=data, method=method)  # noqa: S310 - loopback http only, checked above
    request.add_header("Content-Type", "application/json")
    try:
        with urlopen(request, timeout=10) as reply:  # noqa: S310 - loopback http only, checked above
            return int(reply.status), json.loads(reply.read() or b"null")
    except HTTPError as exc:
        return int(exc.code), json.loads(exc.read() or b"null")


def _body(request: Request) -> dict[str, Any]:
    data = request.get_data()
    if not data:
        return {}
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise ControlError(400, f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError(400, "request body must be a JSON object")
    return body


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError(400, f"{key}: a list of strings is required")
    return value


def _json(body: Any, status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
