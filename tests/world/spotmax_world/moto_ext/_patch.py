"""Idempotent monkey-patching of moto classes and modules, remembering what was replaced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = "__spotmax_patch__"
_ORIGINALS: dict[tuple[int, str], Any] = {}


def patch(owner: Any, name: str, replacement: Any, create: bool = False) -> None:
    """Set ``owner.name`` to ``replacement`` once; later calls are no-ops.

    Unless ``create``, the attribute must exist: a moto upgrade that renames it fails loudly here.
    """
    if not create and not hasattr(owner, name):
        raise AttributeError(f"moto has no {getattr(owner, '__name__', owner)}.{name}: update spotmax_world.moto_ext")
    current = getattr(owner, name, None)
    if getattr(current, _MARK, False):
        return
    _ORIGINALS[(id(owner), name)] = current
    if callable(replacement) and not isinstance(replacement, type):
        setattr(replacement, _MARK, True)
    setattr(owner, name, replacement)


def original(owner: Any, name: str) -> Any:
    """The attribute ``patch`` replaced (it must have been patched)."""
    return _ORIGINALS[(id(owner), name)]


def add_property(owner: type, name: str, getter: Callable[[Any], Any]) -> None:
    """Add a read-only property (used for response fields moto does not know)."""
    if isinstance(getattr(owner, name, None), _PatchedProperty):
        return
    setattr(owner, name, _PatchedProperty(getter))


class _PatchedProperty(property):
    """A property added by :func:`add_property` (recognised to stay idempotent)."""


def set_value(owner: Any, name: str, value: Any) -> None:
    """Set a plain attribute (a constant moto reads) once, remembering the first value."""
    key = (id(owner), name)
    if key not in _ORIGINALS:
        _ORIGINALS[key] = getattr(owner, name, None)
    setattr(owner, name, value)
