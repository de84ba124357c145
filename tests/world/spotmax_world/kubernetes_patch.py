"""PATCH bodies of the Kubernetes emulator: JSON patch, JSON merge patch and strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any, TypeVar, cast

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

# Lists that strategic merge patch merges instead of replacing, by field name: the merge key,
# or "" for lists of scalars merged as a set. Every other list (taints, tolerations...) is replaced,
# as on a real API server where those fields carry no patchStrategy.
MERGE_KEYS: dict[str, str] = {
    "ownerReferences": "uid",
    "finalizers": "",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "addresses": "type",
}
_SCALARS = frozenset({str, int, float, bool, type(None)})
_T = TypeVar("_T")


def clone(value: _T) -> _T:
    """A deep copy of JSON data (dicts, lists, scalars), several times faster than ``copy.deepcopy``.

    Anything else (a tuple, a set, an object) is handed to ``copy.deepcopy``.
    """
    kind = type(value)
    if kind is dict:
        items = cast(dict[Any, Any], value).items()
        return cast(_T, {k: v if type(v) in _SCALARS else clone(v) for k, v in items})
    if kind is list:
        return cast(_T, [v if type(v) in _SCALARS else clone(v) for v in cast(list[Any], value)])
    if kind in _SCALARS:
        return value
    return copy.deepcopy(value)


class PatchError(Exception):
    """A patch that cannot be applied; ``status`` is 400 (malformed) or 422 (does not apply)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Return ``target`` patched by ``patch`` (``target`` is not modified)."""
    if content_type == JSON_PATCH:
        result = json_patch(target, patch)
    elif content_type == MERGE_PATCH:
        result = merge_patch(target, patch)
    elif content_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("strategic merge patch must be a JSON object", 400)
        result = strategic_merge(target, patch)
    else:
        raise PatchError(f"unsupported patch type {content_type}", 415)
    if not isinstance(result, dict):
        raise PatchError("the patched object is not a JSON object")
    return result


# -- RFC 7386 ---------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- RFC 6902 ---------------------------------------------------------------------------------
def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer {path!r}", 400)
    if not path:
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path component {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"path component {token!r} is not a container")
    return node


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {'/'.join(parts)!r} does not exist")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, allow_end=False)]
    raise PatchError(f"path {'/'.join(parts)!r} does not exist")


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise PatchError("cannot remove the document root")
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"cannot remove missing path {'/'.join(parts)!r}")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, allow_end=False))
    raise PatchError(f"cannot remove missing path {'/'.join(parts)!r}")


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {'/'.join(parts)!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", 400)
    doc = clone(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise PatchError("every JSON patch operation needs an 'op'", 400)
        op = operation["op"]
        parts = _pointer(operation.get("path"))
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"operation {op} needs a 'value'", 400)
        if op == "add":
            doc = _add(doc, parts, clone(operation["value"]))
        elif op == "remove":
            _remove(doc, parts)
        elif op == "replace":
            if not parts:
                doc = clone(operation["value"])
                continue
            _get(doc, parts)
            _remove(doc, parts)
            doc = _add(doc, parts, clone(operation["value"]))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            value = _remove(doc, source) if op == "move" else clone(_get(doc, source))
            doc = _add(doc, parts, value)
        elif op == "test":
            if _get(doc, parts) != operation["value"]:
                raise PatchError(f"test operation failed at {operation.get('path')!r}")
        else:
            raise PatchError(f"unknown JSON patch operation {op!r}", 400)
    return doc


# -- strategic merge patch ----------------------------------------------------------------------
def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [clone(item) for item in patch if not (isinstance(item, dict) and "$patch" in item)]
    result = clone(current)
    if not key:
        for item in patch:
            if item not in result:
                result.append(clone(item))
        return result
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"list items must be objects carrying the merge key {key!r}", 400)
        found = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if found is not None:
                result.pop(found)
        elif found is None:
            result.append(strategic_merge({}, item))
        else:
            result[found] = strategic_merge(result[found], item)
    return result


def strategic_merge(target: Any, patch: dict[str, Any]) -> Any:
    """Merge maps recursively, merge the lists of :data:`MERGE_KEYS`, honour ``$patch`` directives."""
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            current = result.get(key)
            result[key] = _merge_list(current if isinstance(current, list) else [], value, MERGE_KEYS[key])
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = clone(value)
    return result
