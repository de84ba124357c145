# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Decisions about Auto Scaling capacity rebalance, as pure functions over API-shaped dicts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_CONCURRENCY = 20


class RebalanceError(ValueError):
    """Input that cannot be applied; the message names the field, the value and what is allowed."""


def check_names(names: list[str] | None) -> list[str]:
    """The group names as given: one or more, none empty, none repeated."""
    if not names:
        raise RebalanceError(f"names: {names!r} is not allowed; use a list of one or more Auto Scaling group names")
    empty = [index for index, name in enumerate(names) if not name or not name.strip()]
    if empty:
        raise RebalanceError(
            f"names: {names!r} is not allowed; entry {empty[0]} is empty, every entry must be a group name"
        )
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        raise RebalanceError(f"names: {names!r} is not allowed; {listed} listed more than once, list each group once")
    return list(names)


def check_concurrency(concurrency: int) -> int:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise RebalanceError(f"concurrency: {concurrency} is not allowed; use an integer from 1 to {MAX_CONCURRENCY}")
    return concurrency


def missing_groups(names: list[str], groups: list[dict[str, Any]]) -> list[str]:
    """The asked-for names no described group carries, in the order asked."""
    found = {group.get("AutoScalingGroupName") for group in groups}
    return [name for name in names if name not in found]


def missing_message(names: list[str], missing: list[str]) -> str:
    listed = ", ".join(repr(name) for name in missing)
    if len(names) == 1:
        return f"names: Auto Scaling group {listed} does not exist in this region"
    return f"names: {len(missing)} of the {len(names)} Auto Scaling groups do not exist in this region: {listed}"


def capacity_rebalance(group: dict[str, Any]) -> bool:
    """A group's setting; the API leaves ``CapacityRebalance`` out when it is off."""
    return bool(group.get("CapacityRebalance", False))


@dataclass(frozen=True)
class Plan:
    """What the run finds and leaves: settings per group (in the order asked) and the groups to update."""

    before: dict[str, bool]
    after: dict[str, bool]
    changed_groups: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changed_groups)

    def groups(self) -> list[dict[str, Any]]:
        return [{"name": name, "capacity_rebalance": value} for name, value in self.after.items()]

    def diff(self) -> dict[str, dict[str, dict[str, bool]]]:
        return {
            "before": {name: {"capacity_rebalance": value} for name, value in self.before.items()},
            "after": {name: {"capacity_rebalance": value} for name, value in self.after.items()},
        }

    def update_requests(self) -> list[dict[str, Any]]:
        """Arguments of the UpdateAutoScalingGroup calls: one per group whose setting differs."""
        return [{"AutoScalingGroupName": name, "CapacityRebalance": self.after[name]} for name in self.changed_groups]


def plan(names: list[str], groups: list[dict[str, Any]], enabled: bool) -> Plan:
    """Turn capacity rebalance to ``enabled`` on the named groups (all of which must be in ``groups``)."""
    by_name = {str(group["AutoScalingGroupName"]): group for group in groups}
    missing = missing_groups(names, groups)
    if missing:
        raise RebalanceError(missing_message(names, missing))
    before = {name: capacity_rebalance(by_name[name]) for name in names}
    return Plan(
        before=before,
        after=dict.fromkeys(names, enabled),
        changed_groups=[name for name in names if before[name] != enabled],
    )
