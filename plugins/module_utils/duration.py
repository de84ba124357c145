# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""MaxGroup's duration contract on Auto Scaling group tags, as pure functions over plain data.

A group asks for "duration" (keep every instance alive for a guaranteed time, then replace it
proactively) with two tags:

``spotmax:instance_duration_hours``
    the guaranteed block, in whole hours (1 to 6);
``spotmax:gurantee_living_mins`` (sic)
    replace the instance after this many minutes (1 to hours * 60 - 1).

The second key is misspelled in the published contract and existing groups carry it, so it is
the key written to groups that have neither spelling. The correctly spelled
``spotmax:guarantee_living_mins`` is accepted when reading, and a group that already carries it
is updated under that key. A group that carries both spellings gets the same value under both,
so that readers of either spelling agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HOURS_KEY = "spotmax:instance_duration_hours"
MINS_KEY = "spotmax:gurantee_living_mins"  # sic: the published key
MINS_KEY_CORRECT = "spotmax:guarantee_living_mins"
MINS_KEYS = (MINS_KEY, MINS_KEY_CORRECT)
DURATION_KEYS = (HOURS_KEY, *MINS_KEYS)

MIN_HOURS = 1
MAX_HOURS = 6
# The defaults the MaxGroup manual publishes, used when a group carries only one of the two tags.
DEFAULT_HOURS = 1
DEFAULT_MINS = 50

RESOURCE_TYPE = "auto-scaling-group"


class DurationError(ValueError):
    """Invalid duration input or tags; the message names the field (or group and tag), the value and what is allowed."""


@dataclass(frozen=True)
class Duration:
    """A group's duration settings."""

    instance_duration_hours: int
    guarantee_living_mins: int


@dataclass(frozen=True)
class TagPlan:
    """What one group's duration tags are, what they become, and the writes that get there."""

    name: str
    put: list[dict[str, Any]]
    delete: list[dict[str, Any]]
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.put or self.delete)


def tags_to_dict(tags: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{key: value}`` from API tags (``Key``/``Value``) or amazon.aws's snake_case ones (``key``/``value``)."""
    result: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            value = tag.get("Value", tag.get("value"))
            result[str(key)] = "" if value is None else str(value)
    return result


def _integer(value: str) -> int | None:
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _mins_range(hours: int) -> str:
    return f"an integer from 1 to {hours * 60 - 1} (below instance_duration_hours * 60 = {hours * 60})"


def _hours_range() -> str:
    return f"an integer from {MIN_HOURS} to {MAX_HOURS}"


def validate(instance_duration_hours: Any, guarantee_living_mins: Any) -> Duration:
    """The wanted settings, or :class:`DurationError` naming the field, the value and the allowed range."""
    hours, mins = instance_duration_hours, guarantee_living_mins
    if hours is None:
        raise DurationError(f"instance_duration_hours: a value is required with state=present; use {_hours_range()}")
    if isinstance(hours, bool) or not isinstance(hours, int) or not MIN_HOURS <= hours <= MAX_HOURS:
        raise DurationError(f"instance_duration_hours: {hours!r} is not allowed; use {_hours_range()}")
    if mins is None:
        raise DurationError(f"guarantee_living_mins: a value is required with state=present; use {_mins_range(hours)}")
    if isinstance(mins, bool) or not isinstance(mins, int) or not 1 <= mins < hours * 60:
        raise DurationError(f"guarantee_living_mins: {mins!r} is not allowed; use {_mins_range(hours)}")
    return Duration(hours, mins)


def parse_duration(group_name: str, tags: Mapping[str, str]) -> Duration | None:
    """The duration a group's tags ask for; None when the group carries no duration tag.

    ``tags`` maps keys to values (see :func:`tags_to_dict`). Either spelling of the minutes key is
    read; a group carrying only one of hours and minutes gets the published default for the other.
    Malformed, out-of-range or conflicting values raise :class:`DurationError` naming the group,
    the key and the value.
    """
    present = [key for key in DURATION_KEYS if key in tags]
    if not present:
        return None

    def number(key: str) -> int:
        value = _integer(tags[key])
        if value is None:
            raise DurationError(f"group {group_name!r}: tag {key} has the value {tags[key]!r}, which is not an integer")
        return value

    hours = number(HOURS_KEY) if HOURS_KEY in tags else DEFAULT_HOURS
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise DurationError(
            f"group {group_name!r}: tag {HOURS_KEY} has the value {tags[HOURS_KEY]!r}; allowed is {_hours_range()}"
        )
    found = {key: number(key) for key in MINS_KEYS if key in tags}
    if len(set(found.values())) > 1:
        values = ", ".join(f"{key}={tags[key]!r}" for key in found)
        raise DurationError(
            f"group {group_name!r}: the tags {' and '.join(found)} disagree ({values}); give them the same value"
        )
    mins = next(iter(found.values()), DEFAULT_MINS)
    if not 1 <= mins < hours * 60:
        key = next(iter(found), None)
        source = f"tag {key} has the value {tags[key]!r}" if key else f"the default guarantee of {DEFAULT_MINS} minutes"
        raise DurationError(f"group {group_name!r}: {source}; allowed is {_mins_range(hours)}")
    return Duration(hours, mins)


def describe(tags: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A group's duration tags as returned by the module (snake_case); never fails on malformed values.

    Values that are integers are returned as numbers, anything else as the raw string; a missing
    tag is None. ``guarantee_living_mins`` is read from the published key first.
    """
    duration_tags = sorted(
        (
            {
                "key": str(tag["Key"]),
                "value": str(tag.get("Value", "")),
                "propagate_at_launch": bool(tag.get("PropagateAtLaunch", False)),
            }
            for tag in tags
            if tag.get("Key") in DURATION_KEYS
        ),
        key=lambda tag: str(tag["key"]),
    )
    values = {str(tag["key"]): str(tag["value"]) for tag in duration_tags}

    def reported(*keys: str) -> int | str | None:
        for key in keys:
            if key in values:
                number = _integer(values[key])
                return values[key] if number is None else number
        return None

    return {
        "instance_duration_hours": reported(HOURS_KEY),
        "guarantee_living_mins": reported(*MINS_KEYS),
        "tags": duration_tags,
    }


def api_tag(name: str, key: str, value: str | None = None, propagate: bool | None = None) -> dict[str, Any]:
    """Group ``name``'s tag as CreateOrUpdateTags / DeleteTags take it (no value: for DeleteTags)."""
    tag: dict[str, Any] = {"ResourceId": name, "ResourceType": RESOURCE_TYPE, "Key": key}
    if value is not None:
        tag["Value"] = value
    if propagate is not None:
        tag["PropagateAtLaunch"] = propagate
    return tag


def plan(
    name: str,
    tags: Iterable[Mapping[str, Any]],
    wanted: Duration | None,
    propagate_at_launch: bool = False,
) -> TagPlan:
    """The tag writes that give group ``name`` (with API-shaped ``tags``) the ``wanted`` duration.

    ``wanted=None`` removes the duration tags, every spelling. Otherwise the hours key and the
    minutes key(s) get the wanted values and ``propagate_at_launch``: the minutes go under every
    spelling the group already carries, or under the published key when it carries neither. A tag
    is written only when its value or PropagateAtLaunch differs; other tags are never touched.
    """
    current = {str(tag["Key"]): dict(tag) for tag in tags if tag.get("Key") in DURATION_KEYS}
    put: list[dict[str, Any]] = []
    delete: list[dict[str, Any]] = []
    after = {key: dict(tag) for key, tag in current.items()}
    if wanted is None:
        for key in DURATION_KEYS:
            if key in current:
                delete.append(api_tag(name, key))
                del after[key]
    else:
        mins_keys = [key for key in MINS_KEYS if key in current] or [MINS_KEY]
        wanted_values = {HOURS_KEY: str(wanted.instance_duration_hours)}
        wanted_values.update({key: str(wanted.guarantee_living_mins) for key in mins_keys})
        for key, value in wanted_values.items():
            tag = current.get(key)
            same = (
                tag is not None
                and str(tag.get("Value", "")) == value
                and bool(tag.get("PropagateAtLaunch", False)) == propagate_at_launch
            )
            if not same:
                put.append(api_tag(name, key, value, propagate_at_launch))
                after[key] = {"Key": key, "Value": value, "PropagateAtLaunch": propagate_at_launch}
    return TagPlan(name, put, delete, describe(current.values()), describe(after.values()))
