"""Small HTTP plumbing shared by the Kubernetes and Consul emulators (stdlib only)."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LOOPBACK = "127.0.0.1"
# What reading from or writing to a client that went away raises (e.g. a kept-alive connection
# reset when its client process exits).
CLIENT_GONE = (ConnectionResetError, BrokenPipeError)
# Responses are assembled in a buffer this large and sent with one write when the request is done.
RESPONSE_BUFFER = 64 * 1024


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Daemon request threads and a listen backlog deep enough for a storm of new connections."""

    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that reset or closed its connection is not an error; print anything else."""
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class HttpError(Exception):
    """Raised by a route to answer with ``status`` and a JSON ``body``."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class Request:
    """What a route sees of one HTTP request."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        self.method = method
        self.path = unquote(parts.path)
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        length = int(handler.headers.get("Content-Length") or 0)
        self.body = handler.rfile.read(length) if length else b""
        self.port = int(handler.server.server_address[1])  # type: ignore[index]

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(400, {"message": f"request body is not JSON: {exc}"}) from exc


class Response:
    """A reply; ``body`` is serialised as JSON unless it is ``bytes``."""

    def __init__(self, body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status = status
        self.headers = headers or {}


Handler = Callable[..., Any]


class Router:
    """Maps (method, path regex) to a callable ``fn(request, **groups)``."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler, str]] = []

    def add(self, method: str, pattern: str, fn: Handler) -> None:
        self._routes.append((method, re.compile(f"^{pattern}$"), fn, pattern))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn

        return decorate

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str], str] | None:
        """Return the handler, its path parameters and the route pattern (for counters)."""
        allowed = False
        for route_method, regex, fn, pattern in self._routes:
            found = regex.match(path)
            if not found:
                continue
            if route_method == method:
                return fn, found.groupdict(), pattern
            allowed = True
        if allowed:
            raise HttpError(405, {"message": f"method {method} not allowed on {path}"})
        return None


class Emulator:
    """Base of an HTTP emulator: routing, a per-request counter, injected latency, lifecycle.

    Subclasses fill ``self.router`` and may override :meth:`authorize` and :meth:`not_found`.
    """

    def __init__(self) -> None:
        self.router = Router()
        self.lock = threading.RLock()
        self.latency = 0.0
        self.requests: Counter[str] = Counter()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._handler: type[BaseHTTPRequestHandler] | None = None

    # -- request handling -------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        """Raise :class:`HttpError` when the request may not proceed."""

    def not_found(self, request: Request) -> HttpError:
        return HttpError(404, {"message": f"no route for {request.method} {request.path}"})

    def internal_error(self, request: Request, exc: Exception) -> Response:
        return Response({"message": f"{request.method} {request.path}: {type(exc).__name__}: {exc}"}, 500)

    def dispatch(self, request: Request) -> Response:
        try:
            found = self.router.match(request.method, request.path)
            if found is None:
                raise self.not_found(request)
            fn, params, pattern = found
            if not request.path.startswith("/_emulator/"):
                with self.lock:
                    self.requests[f"{request.method} {pattern}"] += 1
                if self.latency:
                    time.sleep(self.latency)
                self.authorize(request)
            result = fn(request, **params)
        except HttpError as exc:
            return Response(exc.body, exc.status, exc.headers)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # answer 500, never drop the connection
            return self.internal_error(request, exc)
        if isinstance(result, Response):
            return result
        return Response(result)

    # -- lifecycle ------------------------------------------------------------------------
    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The request handler answering through :meth:`dispatch` (for listeners a subclass runs itself)."""
        if self._handler is not None:
            return self._handler
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are buffered and sent with one write (flushed after each request);
            # a body larger than the buffer still goes out in a second write, and then, with Nagle
            # on, a keep-alive client would wait for its delayed ACK (~40 ms).
            wbufsize = RESPONSE_BUFFER
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                del format, args

            def _handle(self) -> None:
                reply = emulator.dispatch(Request(self, self.command))
                if isinstance(reply.body, bytes):
                    payload = reply.body
                    content_type = reply.headers.pop("Content-Type", "application/octet-stream")
                else:
                    payload = b"" if reply.body is None and reply.status == 204 else json.dumps(reply.body).encode()
                    content_type = reply.headers.pop("Content-Type", "application/json")
                self.send_response(reply.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _handle

        self._handler = _Handler
        return _Handler

    def serve(self, port: int = 0, ssl_context: Any = None) -> int:
        """Listen on 127.0.0.1:``port`` (0 picks a free port) in a daemon thread; return the port."""
        server = EmulatorHTTPServer((LOOPBACK, port), self.handler_class())
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        thread.start()
        with self.lock:
            self._servers.append(server)
            self._threads.append(thread)
        return int(server.server_address[1])

    def stop(self) -> None:
        with self.lock:
            servers, threads = self._servers, self._threads
            self._servers, self._threads = [], []
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)

    # -- test controls shared by all emulators --------------------------------------------
    def add_control_routes(self) -> None:
        """``/_emulator/requests`` (GET counters, DELETE resets) and ``/_emulator/latency`` (PUT)."""
        self.router.add("GET", "/_emulator/requests", lambda _req: dict(self.requests))
        self.router.add("DELETE", "/_emulator/requests", self._reset_requests)
        self.router.add("PUT", "/_emulator/latency", self._set_latency)

    def _reset_requests(self, _request: Request) -> Response:
        with self.lock:
            self.requests.clear()
        return Response(None, 204)

    def _set_latency(self, request: Request) -> dict[str, float]:
        body = request.json() or {}
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise HttpError(400, {"message": "seconds: a number >= 0 is required"})
        self.latency = float(seconds)
        return {"seconds": self.latency}
