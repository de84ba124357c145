"""Label and field selectors of the Kubernetes emulator (query strings and LabelSelector objects)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_SET_RE = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP_RE = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[-A-Za-z0-9_.]*)$")
_EXISTS_RE = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")

# Fields each resource accepts in ``fieldSelector`` (besides metadata.name / metadata.namespace).
FIELD_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "pods": {
        "spec.nodeName": ("spec", "nodeName"),
        "spec.restartPolicy": ("spec", "restartPolicy"),
        "spec.schedulerName": ("spec", "schedulerName"),
        "spec.serviceAccountName": ("spec", "serviceAccountName"),
        "spec.hostNetwork": ("spec", "hostNetwork"),
        "status.phase": ("status", "phase"),
        "status.podIP": ("status", "podIP"),
        "status.nominatedNodeName": ("status", "nominatedNodeName"),
    },
    "nodes": {"spec.unschedulable": ("spec", "unschedulable")},
    "namespaces": {"status.phase": ("status", "phase")},
}
_DEFAULT_FIELDS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


class SelectorError(ValueError):
    """An unparsable or unsupported selector (answered with 400 BadRequest)."""


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def _requirement(text: str) -> Predicate:
    found = _SET_RE.match(text)
    if found:
        key, values = found["key"], {v.strip() for v in found["values"].split(",") if v.strip()}
        if found["op"] == "in":
            return lambda obj: _labels(obj).get(key) in values
        return lambda obj: _labels(obj).get(key) not in values
    found = _CMP_RE.match(text)
    if found:
        key, op, value = found["key"], found["op"], found["value"]
        if op in ("=", "=="):
            return lambda obj: _labels(obj).get(key) == value
        if op == "!=":
            return lambda obj: _labels(obj).get(key) != value
        try:
            bound = int(value)
        except ValueError as exc:
            raise SelectorError(f"couldn't parse the selector string {text!r}: {op} needs an integer") from exc
        if op == ">":
            return lambda obj: _numeric(_labels(obj).get(key), lambda n: n > bound)
        return lambda obj: _numeric(_labels(obj).get(key), lambda n: n < bound)
    found = _EXISTS_RE.match(text)
    if found:
        key = found["key"]
        if found["neg"]:
            return lambda obj: key not in _labels(obj)
        return lambda obj: key in _labels(obj)
    raise SelectorError(f"unable to parse requirement: {text!r}")


def _numeric(value: str | None, test: Callable[[int], bool]) -> bool:
    if value is None:
        return False
    try:
        return test(int(value))
    except ValueError:
        return False


def parse_label_selector(text: str) -> Predicate:
    """Compile a ``labelSelector`` query string (equality and set-based forms)."""
    if not text.strip():
        return lambda _obj: True
    requirements = [_requirement(part) for part in _split_top_level(text)]
    return lambda obj: all(req(obj) for req in requirements)


def field_value(obj: dict[str, Any], path: tuple[str, ...]) -> str:
    """The text a field selector compares for ``path`` of ``obj`` ("" when absent)."""
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    if path == ("spec", "hostNetwork") and node is None:
        return "false"
    if path == ("spec", "unschedulable") and node is None:
        return "false"
    return "" if node is None else str(node)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


class FieldSelector:
    """A compiled ``fieldSelector``: call it on an object; :meth:`equality` serves indexed lookups."""

    def __init__(self, terms: list[tuple[tuple[str, ...], bool, str]]) -> None:
        self.terms = terms

    def __call__(self, obj: dict[str, Any]) -> bool:
        return all((field_value(obj, path) == value) != negate for path, negate, value in self.terms)

    def equality(self, path: tuple[str, ...]) -> str | None:
        """The value of the first ``path=value`` term (an object must have it to match), else None."""
        return next((value for term_path, negate, value in self.terms if term_path == path and not negate), None)


def parse_field_selector(text: str, resource: str) -> FieldSelector:
    """Compile a ``fieldSelector`` (``=``, ``==``, ``!=``, comma-joined) for ``resource`` (plural)."""
    if not text.strip():
        return FieldSelector([])
    fields = {**_DEFAULT_FIELDS, **FIELD_PATHS.get(resource, {})}
    terms: list[tuple[tuple[str, ...], bool, str]] = []
    for part in re.split(r"(?<!\\),", text):
        found = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)(.*)$", part)
        if not found:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        name, op, value = found.groups()
        if name not in fields:
            raise SelectorError(f"field label not supported: {name}")
        terms.append((fields[name], op == "!=", _unescape(value.strip())))
    return FieldSelector(terms)


def label_selector_object(selector: Any) -> Predicate:
    """Compile a ``metav1.LabelSelector`` (matchLabels / matchExpressions); ``None`` matches nothing."""
    if selector is None:
        return lambda _obj: False
    if not isinstance(selector, dict):
        raise SelectorError("a label selector must be an object")
    tests: list[Predicate] = [
        _expression(key, "In", [value]) for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        tests.append(_expression(expression.get("key"), expression.get("operator"), expression.get("values") or []))
    return lambda obj: all(test(obj) for test in tests)


def _expression(key: Any, op: Any, values: list[Any]) -> Predicate:
    wanted = set(values)
    if op == "In":
        return lambda obj: _labels(obj).get(key) in wanted
    if op == "NotIn":
        return lambda obj: _labels(obj).get(key) not in wanted
    if op == "Exists":
        return lambda obj: key in _labels(obj)
    if op == "DoesNotExist":
        return lambda obj: key not in _labels(obj)
    raise SelectorError(f"{op!r} is not a valid label selector operator")
