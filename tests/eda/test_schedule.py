"""The schedule event source: argument checks and the ticks it emits (bounded real-time runs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schedule


class Collector:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def put(self, item: dict[str, Any]) -> None:
        self.events.append(item)


def run_for(args: dict[str, Any], seconds: float) -> list[dict[str, Any]]:
    collector = Collector()

    async def bounded() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(schedule.main(collector, args), timeout=seconds)

    asyncio.run(bounded())
    return collector.events


def test_each_schedule_ticks_at_start_and_then_every_interval() -> None:
    events = run_for({"schedules": [{"name": "fast", "every": 1}, {"name": "slow", "every": 60}]}, 2.5)
    ticks = [(e["schedule"]["name"], e["schedule"]["count"]) for e in events]
    assert ticks[:2] == [("fast", 1), ("slow", 1)]
    assert [count for name, count in ticks if name == "fast"] == [1, 2, 3]
    assert [count for name, count in ticks if name == "slow"] == [1]
    assert all(e["schedule"]["at"].endswith("Z") for e in events)


def test_first_delay_holds_the_first_tick() -> None:
    assert run_for({"schedules": [{"name": "later", "every": 1}], "first_delay": 5}, 1.0) == []


def test_missed_ticks_are_not_caught_up() -> None:
    assert schedule.due({"a": 10.0, "b": 30.0}, 20.0) == ["a"]
    assert schedule.plan_next(60.0, 1000.0) == 1060.0


@pytest.mark.parametrize(
    "args, message",
    [
        ({}, "schedules: None is not allowed"),
        ({"schedules": []}, "schedules: [] is not allowed"),
        ({"schedules": ["x"]}, "schedules[0]: 'x' is not allowed"),
        ({"schedules": [{"every": 5}]}, "schedules[0].name: None is not allowed"),
        (
            {"schedules": [{"name": "a", "every": 5}, {"name": "a", "every": 6}]},
            "schedules[1].name: 'a' is given twice",
        ),
        ({"schedules": [{"name": "a", "every": 0}]}, "schedules[0].every: 0 is not allowed; use a number of seconds"),
        ({"schedules": [{"name": "a", "every": "soon"}]}, "schedules[0].every: 'soon' is not allowed"),
        ({"schedules": [{"name": "a", "every": True}]}, "schedules[0].every: True is not allowed"),
        ({"schedules": [{"name": "a", "every": 5}], "first_delay": -1}, "first_delay: -1 is not allowed"),
    ],
)
def test_wrong_arguments_name_the_argument(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        schedule.validate_args(args)


def test_string_intervals_from_rulebook_templates_are_accepted() -> None:
    assert schedule.validate_args({"schedules": [{"name": "a", "every": "60"}]}) == ({"a": 60.0}, 0.0)
