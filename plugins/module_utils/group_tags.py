# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The MaxGroup ``spotmax:`` tag contract: read a group's settings from its tags, validated.

Keys and defaults are the published ones (see docs and ``reference/maxgroup-tags.md``); keys this
collection adds are marked as such. A value that does not parse is an error naming the group, the
key, the value and what is allowed: a wrong tag must never be acted on silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import HOURS_KEY
from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import MINS_KEY as GUARANTEE_KEY
from ansible_collections.spotmax.maxgroup.plugins.module_utils.duration import MINS_KEY_CORRECT as GUARANTEE_KEY_CORRECT

PREFIX = "spotmax:"
MEMBERSHIP_KEY = "spotmax:group"
TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}


class TagError(ValueError):
    """A ``spotmax:`` tag value that does not satisfy the contract."""


@dataclass(frozen=True)
class Setting:
    name: str
    key: str
    kind: str  # "int", "bool", "str"
    default: Any
    minimum: int | None = None
    maximum: int | None = None


# name -> setting; `name` is the key without the prefix, the name used in playbooks and results.
SETTINGS: dict[str, Setting] = {
    setting.name: setting
    for setting in (
        Setting("k8s_config_file_path", "spotmax:k8s_config_file_path", "str", None),
        Setting("eks_cluster_name", "spotmax:eks_cluster_name", "str", None),  # collection-owned
        Setting("detaching_delay_seconds", "spotmax:detaching_delay_seconds", "int", 30, 0),
        Setting("k8s_node_drain_grace_second", "spotmax:k8s_node_drain_grace_second", "int", 300, 0),
        Setting("k8s_delay_draining_secs", "spotmax:k8s_delay_draining_secs", "int", 90, 0),
        Setting("consul_port", "spotmax:consul_port", "int", None, 1, 65535),
        Setting("sd_delay_detach_secs", "spotmax:sd_delay_detach_secs", "int", 30, 0),
        Setting("persistence_dev", "spotmax:persistence_dev", "str", None),
        Setting("instance_duration_hours", HOURS_KEY, "int", None, 1, 6),
        Setting("guarantee_living_mins", GUARANTEE_KEY, "int", None, 1),
        Setting("is_enable_od_fallback", "spotmax:is_enable_od_fallback", "bool", True),
        Setting("od_least_live_mins", "spotmax:od_least_live_mins", "int", 15, 0),
        Setting("is_to_handle_rebalance_event", "spotmax:is_to_handle_rebalance_event", "bool", False),
        Setting("warm_pool_min_size", "spotmax:warm_pool_min_size", "int", 0, -1),
        Setting("is_warm_pool_first", "spotmax:is_warm_pool_first", "bool", False),
        Setting("max_num_of_terminated_one_time", "spotmax:max_num_of_terminated_one_time", "int", 1, 1),
        Setting("standby_for", "spotmax:standby_for", "str", None),  # collection-owned: on a standby group
    )
}


def tag_map(tags: list[dict[str, Any]] | dict[str, str] | None) -> dict[str, str]:
    """``{key: value}`` from the API's tag list (``Key``/``Value``) or an existing dict."""
    if not tags:
        return {}
    if isinstance(tags, dict):
        return dict(tags)
    return {tag["Key"]: tag.get("Value", "") for tag in tags}


def _parse(setting: Setting, group: str, key: str, raw: str) -> Any:
    value = raw.strip()
    where = f"group {group!r} tag {key}"
    if setting.kind == "str":
        if not value:
            raise TagError(f"{where}: an empty value is not allowed; remove the tag or give a value")
        return value
    if setting.kind == "bool":
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise TagError(f"{where}: {raw!r} is not allowed; use true or false")
    allowed = _range_text(setting)
    try:
        number = int(value)
    except ValueError:
        raise TagError(f"{where}: {raw!r} is not allowed; use an integer {allowed}") from None
    if (setting.minimum is not None and number < setting.minimum) or (
        setting.maximum is not None and number > setting.maximum
    ):
        raise TagError(f"{where}: {number} is not allowed; use an integer {allowed}")
    return number


def _range_text(setting: Setting) -> str:
    if setting.minimum is not None and setting.maximum is not None:
        return f"from {setting.minimum} to {setting.maximum}"
    if setting.minimum is not None:
        return f">= {setting.minimum}"
    return "value"


def group_settings(group: str, tags: list[dict[str, Any]] | dict[str, str] | None) -> dict[str, Any]:
    """Every setting of the contract for ``group``, from its tags or the published default.

    Raises :class:`TagError` for the first tag whose value breaks the contract.
    """
    found = tag_map(tags)
    settings: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        key = setting.key
        if name == "guarantee_living_mins" and key not in found and GUARANTEE_KEY_CORRECT in found:
            key = GUARANTEE_KEY_CORRECT
        settings[name] = _parse(setting, group, key, found[key]) if key in found else setting.default
    _check_duration(group, settings)
    return settings


def _check_duration(group: str, settings: dict[str, Any]) -> None:
    hours, mins = settings["instance_duration_hours"], settings["guarantee_living_mins"]
    if hours is not None and mins is not None and mins >= hours * 60:
        raise TagError(
            f"group {group!r} tag {GUARANTEE_KEY}: {mins} is not allowed; it must be below "
            f"{HOURS_KEY} x 60 ({hours * 60})"
        )


def group_settings_or_error(
    group: str, tags: list[dict[str, Any]] | dict[str, str] | None
) -> tuple[dict[str, Any] | None, str | None]:
    """(settings, None), or (None, message) when a tag breaks the contract: for batch callers."""
    try:
        return group_settings(group, tags), None
    except TagError as exc:
        return None, str(exc)


def is_managed(instance_tags: list[dict[str, Any]] | dict[str, str] | None) -> bool:
    """Whether an instance belongs to a managed group (it carries ``spotmax:group``)."""
    return MEMBERSHIP_KEY in tag_map(instance_tags)
