"""Injectable faults: Spot capacity shortages and API throttling, with AWS's error shapes."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.exceptions import HTTPException

SPOT_CAPACITY_MESSAGE = "There is no Spot capacity available that matches your request."
THROTTLE_MESSAGES = {"ec2": "Request limit exceeded.", "query": "Rate exceeded", "json": "Rate exceeded"}


@dataclass(frozen=True)
class SpotCapacityFault:
    """Spot launches of ``instance_types`` in ``zones`` fail; an empty set matches everything."""

    instance_types: frozenset[str]
    zones: frozenset[str]

    def matches(self, instance_type: str, zone: str) -> bool:
        return (not self.instance_types or instance_type in self.instance_types) and (
            not self.zones or zone in self.zones
        )

    def as_dict(self) -> dict[str, list[str]]:
        return {"instance_types": sorted(self.instance_types), "zones": sorted(self.zones)}


@dataclass
class ThrottleRule:
    """The next ``remaining`` calls of ``actions`` (empty: any action) on ``service`` are throttled."""

    service: str
    actions: frozenset[str]
    remaining: int

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "actions": sorted(self.actions), "count": self.remaining}


class Faults:
    """The fault switchboard shared by the HTTP middleware and the moto extensions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spot: SpotCapacityFault | None = None
        self._throttles: dict[str, ThrottleRule] = {}
        # Bumped on every change so groups waiting on capacity know when to retry.
        self.generation = 0

    def set_spot_capacity(self, instance_types: Iterable[str], zones: Iterable[str]) -> SpotCapacityFault:
        fault = SpotCapacityFault(frozenset(instance_types), frozenset(zones))
        with self._lock:
            self._spot = fault
            self.generation += 1
        return fault

    def clear_spot_capacity(self) -> None:
        with self._lock:
            self._spot = None
            self.generation += 1

    def spot_blocked(self, instance_type: str, zone: str) -> bool:
        with self._lock:
            return self._spot is not None and self._spot.matches(instance_type, zone)

    def set_throttle(self, service: str, actions: Iterable[str], count: int) -> ThrottleRule:
        rule = ThrottleRule(service.lower(), frozenset(actions), count)
        with self._lock:
            if count > 0:
                self._throttles[rule.service] = rule
            else:
                self._throttles.pop(rule.service, None)
        return rule

    def clear_throttle(self, service: str | None = None) -> None:
        with self._lock:
            if service is None:
                self._throttles.clear()
            else:
                self._throttles.pop(service.lower(), None)

    def take_throttle(self, service: str, action: str) -> bool:
        """Consume one throttled call for ``service``/``action``; True when it must be refused."""
        with self._lock:
            rule = self._throttles.get(service.lower())
            if rule is None or (rule.actions and action not in rule.actions):
                return False
            rule.remaining -= 1
            if rule.remaining <= 0:
                del self._throttles[rule.service]
            return True

    def reset(self) -> None:
        with self._lock:
            self._spot = None
            self._throttles.clear()
            self.generation += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "spot_capacity": self._spot.as_dict() if self._spot else None,
                "throttle": [rule.as_dict() for rule in self._throttles.values()],
            }


def ec2_error_xml(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
        f"</Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    )


class InsufficientCapacityError(HTTPException):
    """EC2's ``InsufficientInstanceCapacity`` (a server error, HTTP 500) for a Spot launch.

    An ``HTTPException`` so moto's dispatcher answers it as is from ``RunInstances``;
    the Auto Scaling launcher catches it to try other pools.
    """

    code = 500

    def __init__(self, instance_type: str, zone: str) -> None:
        super().__init__(description=ec2_error_xml("InsufficientInstanceCapacity", SPOT_CAPACITY_MESSAGE))
        self.instance_type = instance_type
        self.zone = zone

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        del args, kwargs
        return [("Content-Type", "text/xml;charset=UTF-8")]


def throttle_reply(service: str, json_protocol: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the throttling error ``service`` really returns."""
    request_id = str(uuid.uuid4())
    if json_protocol:
        body = json.dumps({"__type": "ThrottlingException", "message": THROTTLE_MESSAGES["json"]})
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", "ThrottlingException"),
            ("x-amzn-RequestId", request_id),
        ]
        return 400, headers, body.encode()
    if service == "ec2":
        return (
            503,
            [("Content-Type", "text/xml;charset=UTF-8")],
            ec2_error_xml("RequestLimitExceeded", THROTTLE_MESSAGES["ec2"]).encode(),
        )
    namespace = f"http://{service}.amazonaws.com/doc/"
    body = (
        f'<ErrorResponse xmlns="{escape(namespace)}"><Error><Type>Sender</Type><Code>Throttling</Code>'
        f"<Message>{THROTTLE_MESSAGES['query']}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return 400, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body.encode()
