"""The schedules rulebook in the real ansible-rulebook: its timer runs od_fallback against the world."""

from __future__ import annotations

import time

import pytest
from test_duration_fallback import on_demand_share, serving, spot_group

from spotmax_world.pipeline import Rulebook


@pytest.mark.timeout(400)
def test_the_timer_falls_a_group_without_spot_capacity_back_to_on_demand(world, aws, collections_path, tmp_path):
    autoscaling = aws("autoscaling")
    world.aws.set_spot_capacity_fault()
    spot_group(aws, "timed", 2)
    env = world.environment()
    variables = {
        "schedule_od_fallback_seconds": 5,
        "schedule_enforce_duration_seconds": 3600,
        "schedule_revert_to_spot_seconds": 3600,
        "schedule_region": env["AWS_REGION"],
        "schedule_endpoint_url": env["AWS_ENDPOINT_URL"],
    }
    with Rulebook(world, collections_path, tmp_path, variables, rulebook="spotmax.maxgroup.schedules") as rulebook:
        rulebook.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
            on_demand_share(autoscaling, "timed") == 100 and len(serving(autoscaling, "timed")) == 2
        ):
            assert rulebook.running, rulebook.tail()
            time.sleep(1)
        assert on_demand_share(autoscaling, "timed") == 100, rulebook.tail()
        assert len(serving(autoscaling, "timed")) == 2
        assert "spotmax.maxgroup.enforce_duration" in rulebook.output() or "Enforce the duration" in rulebook.output()
