# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Event source: named timers, for the playbooks that run on a schedule (duration, fallback, revert).

ansible-rulebook loads this file by path: it imports nothing from the collection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

DOCUMENTATION = r"""
---
short_description: Emit an event per named schedule every so many seconds.
description:
  - An ansible-rulebook event source for periodic work, such as the spotmax.maxgroup.schedules rulebook
    running enforce_duration, od_fallback and revert_to_spot.
  - Each schedule emits C({"schedule": {"name", "at", "count"}}) at start (after O(first_delay)
    seconds) and then every O(schedules[].every) seconds. C(at) is the UTC time of the tick, C(count)
    numbers the schedule's ticks from 1.
  - Ticks that came due while the event loop was busy are not caught up one by one; the next tick is
    planned from the current time, so a slow consumer gets one event, not a burst.
  - Wrong arguments stop the source with a message naming the argument and what is allowed.
options:
  schedules:
    description: The timers, each C({name, every}); names are unique, C(every) is in seconds (1 to 86400).
    type: list
    elements: dict
    required: true
  first_delay:
    description: Seconds before the first ticks (0 to 86400).
    type: float
    default: 0
"""

EXAMPLES = r"""
- name: Duration guarantee and fallback on a timer
  hosts: all
  sources:
    - spotmax.maxgroup.schedule:
        schedules:
          - {name: od_fallback, every: 60}
          - {name: enforce_duration, every: 300}
  rules:
    - name: Fallback
      condition: event.schedule.name == "od_fallback"
      action:
        run_playbook:
          name: spotmax.maxgroup.od_fallback
"""

MAX_SECONDS = 86400.0


class EventQueue(Protocol):
    async def put(self, item: dict[str, Any]) -> None: ...


def _seconds(value: Any, where: str, low: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not allowed; use a number of seconds from {low:g} to {MAX_SECONDS:g}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not low <= number <= MAX_SECONDS:
        raise ValueError(f"{where}: {value!r} is not allowed; use a number of seconds from {low:g} to {MAX_SECONDS:g}")
    return number


def validate_args(args: Mapping[str, Any]) -> tuple[dict[str, float], float]:
    """(``{name: every}``, first_delay), or ValueError naming the argument, the value and what is allowed."""
    schedules = args.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise ValueError(f"schedules: {schedules!r} is not allowed; use a non-empty list of {{name, every}}")
    found: dict[str, float] = {}
    for index, entry in enumerate(schedules):
        where = f"schedules[{index}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: {entry!r} is not allowed; use a mapping with name and every")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}.name: {name!r} is not allowed; use a non-empty string")
        if name in found:
            raise ValueError(f"{where}.name: {name!r} is given twice; names are unique")
        found[name] = _seconds(entry.get("every"), f"{where}.every", 1.0)
    return found, _seconds(args.get("first_delay", 0), "first_delay", 0.0)


def due(next_at: Mapping[str, float], now: float) -> list[str]:
    """Schedules whose tick is due at ``now``, in name order."""
    return sorted(name for name, moment in next_at.items() if moment <= now)


def plan_next(every: float, now: float) -> float:
    """The next tick: a full interval from now (missed ticks are not caught up)."""
    return now + every


async def main(queue: EventQueue, args: dict[str, Any]) -> None:
    schedules, first_delay = validate_args(args)
    start = time.monotonic() + first_delay
    next_at = dict.fromkeys(schedules, start)
    counts = dict.fromkeys(schedules, 0)
    while True:
        now = time.monotonic()
        for name in due(next_at, now):
            counts[name] += 1
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            await queue.put({"schedule": {"name": name, "at": at, "count": counts[name]}})
            next_at[name] = plan_next(schedules[name], now)
        await asyncio.sleep(max(0.0, min(next_at.values()) - time.monotonic()))


if __name__ == "__main__":

    class _Printer:
        async def put(self, item: dict[str, Any]) -> None:
            print(item)

    asyncio.run(main(_Printer(), {"schedules": [{"name": "demo", "every": 1}]}))
