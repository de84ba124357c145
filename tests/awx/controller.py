"""A tiny automation controller API (/api/v2/) on 127.0.0.1: just what awx_configure's awx.awx modules use.

Objects live in memory per endpoint; lists filter on exact field values (and AWX's ``or__id`` / ``or__name``),
credentials hide their secret inputs as ``$encrypted$`` like the real API, job templates have a survey
spec and credential associations, projects report a finished project update. Every write (POST, PATCH,
DELETE) is counted in ``writes``.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API = "/api/v2/"
TOKEN = "awx-configure-test-token"
ENCRYPTED = "$encrypted$"
TYPES = {
    "organizations": "organization",
    "projects": "project",
    "credential_types": "credential_type",
    "credentials": "credential",
    "inventories": "inventory",
    "hosts": "host",
    "job_templates": "job_template",
    "schedules": "schedule",
    "execution_environments": "execution_environment",
    "project_updates": "project_update",
}
# Fields that name another object, and where it lives.
REFERENCES = {
    "organization": "organizations",
    "project": "projects",
    "inventory": "inventories",
    "credential_type": "credential_types",
    "execution_environment": "execution_environments",
    "default_environment": "execution_environments",
}
REQUIRED = {
    "projects": {"name", "organization", "scm_type", "scm_url"},
    "credential_types": {"name", "kind", "inputs", "injectors"},
    "credentials": {"name", "credential_type", "inputs"},
    "inventories": {"name", "organization"},
    "hosts": {"name", "inventory"},
    "job_templates": {"name", "project", "inventory", "playbook"},
    "schedules": {"name", "rrule", "unified_job_template"},
    "execution_environments": {"name", "image"},
}


class Controller:
    """The state, and an HTTP server serving it."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[int, dict[str, Any]]] = {endpoint: {} for endpoint in TYPES}
        self.survey_specs: dict[int, dict[str, Any]] = {}
        self.associations: dict[tuple[str, int, str], set[int]] = {}
        self.writes: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.add("organizations", {"name": "Default"})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Controller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # --- state -----------------------------------------------------------------------------------
    def add(self, endpoint: str, fields: dict[str, Any]) -> dict[str, Any]:
        object_id = next(self._ids)
        url = f"{API}{endpoint}/{object_id}/"
        item = {"summary_fields": {}, **fields, "id": object_id, "type": TYPES[endpoint], "url": url}
        item["related"] = {}
        if endpoint == "job_templates":
            item["related"] = {"survey_spec": f"{url}survey_spec/", "credentials": f"{url}credentials/"}
        self.objects[endpoint][object_id] = item
        return item

    def find(self, endpoint: str, **fields: Any) -> list[dict[str, Any]]:
        return [item for item in self.objects[endpoint].values() if all(item.get(k) == v for k, v in fields.items())]

    def one(self, endpoint: str, **fields: Any) -> dict[str, Any]:
        (item,) = self.find(endpoint, **fields)
        return item

    def _secret_inputs(self, credential: dict[str, Any]) -> set[str]:
        fields = self.objects["credential_types"][credential["credential_type"]]["inputs"].get("fields", [])
        return {field["id"] for field in fields if field.get("secret")}

    def _view(self, endpoint: str, item: dict[str, Any]) -> dict[str, Any]:
        if endpoint != "credentials":
            return item
        secret = self._secret_inputs(item)
        inputs = {key: ENCRYPTED if key in secret else value for key, value in item["inputs"].items()}
        return {**item, "inputs": inputs}

    def _invalid(self, endpoint: str, fields: dict[str, Any], creating: bool) -> dict[str, Any] | None:
        missing = REQUIRED.get(endpoint, set()) - set(fields) if creating else set()
        if missing:
            return {field: ["This field is required."] for field in sorted(missing)}
        for field, target in REFERENCES.items():
            if field in fields and fields[field] is not None and fields[field] not in self.objects[target]:
                return {field: [f"Invalid pk {fields[field]!r} - object does not exist."]}
        if endpoint == "schedules" and "rrule" in fields and not str(fields["rrule"]).startswith("DTSTART"):
            return {"rrule": ["DTSTART is required"]}
        if endpoint == "schedules" and "unified_job_template" in fields:
            template = fields["unified_job_template"]
            if template not in self.objects["job_templates"] and template not in self.objects["projects"]:
                return {"unified_job_template": ["Invalid pk"]}
        return None

    # --- HTTP --------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

            def _send(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", "24.6.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                return body

            def _route(self) -> tuple[str, int | None, str | None, dict[str, str]] | None:
                parts = urlsplit(self.path)
                if not parts.path.startswith(API):
                    return None
                segments = [segment for segment in parts.path[len(API) :].split("/") if segment]
                if not segments or segments[0] not in (*TYPES, "unified_job_templates"):
                    return None
                object_id = int(segments[1]) if len(segments) > 1 else None
                sub = segments[2] if len(segments) > 2 else None
                return segments[0], object_id, sub, dict(parse_qsl(parts.query))

            def _handle(self, method: str) -> None:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"detail": "Authentication credentials were not provided."})
                    return
                route = self._route()
                if route is None:
                    self._send(404, {"detail": "Not found."})
                    return
                with controller._lock:
                    if method != "GET":
                        controller.writes.append(f"{method} {self.path}")
                    status, body = controller.dispatch(method, *route, self._body() if method != "GET" else {})
                self._send(status, body)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler

    def dispatch(
        self,
        method: str,
        endpoint: str,
        object_id: int | None,
        sub: str | None,
        query: dict[str, str],
        body: dict[str, Any],
    ) -> tuple[int, Any]:
        if endpoint == "unified_job_templates":
            items = [*self.objects["job_templates"].values(), *self.objects["projects"].values()]
            return 200, self._page(items, query)
        store = self.objects[endpoint]
        if object_id is None:
            if method == "GET":
                return 200, self._page([self._view(endpoint, item) for item in store.values()], query)
            if method == "POST":
                invalid = self._invalid(endpoint, body, creating=True)
                if invalid:
                    return 400, invalid
                if self.find(
                    endpoint, name=body["name"], **{k: body[k] for k in ("organization", "inventory") if k in body}
                ):
                    return 400, {"__all__": [f"{TYPES[endpoint]} with this name already exists."]}
                item = self.add(endpoint, body)
                if endpoint == "projects":
                    update = self.add("project_updates", {"name": body["name"], "status": "successful"})
                    item.update(scm_revision="0" * 40, summary_fields={"current_update": {"id": update["id"]}})
                return 201, self._view(endpoint, item)
            return 405, {"detail": "Method not allowed."}
        if object_id not in store:
            return 404, {"detail": "Not found."}
        item = store[object_id]
        if sub is None:
            if method == "GET":
                return 200, self._view(endpoint, item)
            if method == "PATCH":
                invalid = self._invalid(endpoint, body, creating=False)
                if invalid:
                    return 400, invalid
                if endpoint == "credentials" and "inputs" in body:
                    old = item["inputs"]
                    body["inputs"] = {k: old.get(k) if v == ENCRYPTED else v for k, v in body["inputs"].items()}
                item.update(body)
                return 200, self._view(endpoint, item)
            return 405, {"detail": "Method not allowed."}
        if endpoint == "job_templates" and sub == "survey_spec":
            if method == "GET":
                return 200, self.survey_specs.get(object_id, {})
            if method == "POST":
                self.survey_specs[object_id] = body
                return 200, None
            if method == "DELETE":
                self.survey_specs.pop(object_id, None)
                return 200, None
        if endpoint == "job_templates" and sub == "credentials":
            associated = self.associations.setdefault((endpoint, object_id, sub), set())
            if method == "GET":
                return 200, self._page([self.objects["credentials"][i] for i in sorted(associated)], {})
            if method == "POST":
                if body["id"] not in self.objects["credentials"]:
                    return 400, {"msg": "no such credential"}
                if body.get("disassociate"):
                    associated.discard(body["id"])
                else:
                    associated.add(body["id"])
                return 204, None
        return 404, {"detail": "Not found."}

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        either = {key[4:]: value for key, value in query.items() if key.startswith("or__")}
        exact = {key: value for key, value in query.items() if not key.startswith(("or__", "page"))}

        def matches(item: dict[str, Any]) -> bool:
            if any(str(item.get(key)) != value for key, value in exact.items()):
                return False
            return not either or any(str(item.get(key)) == value for key, value in either.items())

        results = [item for item in items if matches(item)]
        return {"count": len(results), "next": None, "previous": None, "results": results}
