# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Metrics aggregation and PutMetricData batching over plain data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import metrics

PLAN = {
    "instances": [
        {"instance_id": "i-1", "group": "web"},
        {"instance_id": "i-2", "group": "web"},
        {"instance_id": "i-3", "group": "api"},
    ],
    "groups": {"web": {"spot_interruption": 1, "rebalance": 1}, "api": {"spot_interruption": 1}},
}


def by_key(datums):
    return {(d["metric_name"], tuple(sorted(d["dimensions"].items()))): d for d in datums}


def value(datums, name, group, **extra):
    key = (name, tuple(sorted({"AutoScalingGroupName": group, **extra}.items())))
    return by_key(datums)[key]


def test_interruptions_per_group_and_per_kind():
    datums, unattributed = metrics.aggregate(PLAN)
    assert value(datums, "Interruptions", "web")["value"] == 2
    assert value(datums, "Interruptions", "web", Kind="rebalance")["value"] == 1
    assert value(datums, "Interruptions", "api", Kind="spot_interruption")["value"] == 1
    assert len(datums) == 5
    assert unattributed == []


def test_replacements_and_warm_pool_hits_attributed_to_the_served_group():
    replacement = {
        "detached": {"web": ["i-1", "i-2"], "api": ["i-3"]},
        "standby": {"web-standby": {"from": 1, "to": 3, "capped": False}},
        "skipped": [],
    }
    datums = metrics.aggregate(PLAN, replacement=replacement, served={"web-standby": "web"})[0]
    assert value(datums, "Replacements", "web")["value"] == 2
    assert value(datums, "WarmPoolHits", "web")["value"] == 2
    assert value(datums, "Replacements", "api")["value"] == 1
    assert value(datums, "WarmPoolHits", "api")["value"] == 0
    # Without the standby tag the standby group is its own dimension.
    unmapped = metrics.aggregate(PLAN, replacement=replacement)[0]
    assert value(unmapped, "WarmPoolHits", "web-standby")["value"] == 2


def test_drain_statistics_and_timeouts_per_group():
    drain = [
        {"nodes": [{"name": "n1", "instance_id": "i-1", "evicted": ["a"], "not_evicted": [], "seconds": 30.5}]},
        {
            "nodes": [
                {
                    "name": "n2",
                    "instance_id": "i-2",
                    "evicted": [],
                    "not_evicted": [{"pod": "p", "reason": "pdb"}],
                    "seconds": 45,
                },
                {"name": "n9", "instance_id": "i-9", "evicted": [], "not_evicted": [], "seconds": 1},
            ]
        },
    ]
    datums, unattributed = metrics.aggregate(PLAN, drain=drain)
    assert value(datums, "DrainSeconds", "web")["statistic_values"] == {
        "sample_count": 2,
        "sum": 75.5,
        "minimum": 30.5,
        "maximum": 45.0,
    }
    assert value(datums, "DrainSeconds", "web")["unit"] == "Seconds"
    assert value(datums, "DrainTimeouts", "web")["value"] == 1
    assert unattributed == ["i-9"]


def test_deregistrations_count_instances_with_services_and_no_error():
    deregistrations = [
        {"instance_id": "i-1", "services": ["web"], "changed": True, "error": None},
        {"instance_id": "i-2", "services": [], "changed": False, "error": None},
        {"instance_id": "i-3", "services": ["api"], "changed": True, "error": "500"},
    ]
    datums = metrics.aggregate(PLAN, deregistrations=deregistrations)[0]
    assert value(datums, "Deregistrations", "web")["value"] == 1
    assert value(datums, "Deregistrations", "api")["value"] == 0


def test_nothing_given_no_datums():
    assert metrics.aggregate() == ([], [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"plan": []}, "plan: [] is not allowed; use the plan returned by spotmax.maxgroup.interruption_plan"),
        ({"drain": [1]}, "drain: [1] is not allowed"),
        ({"drain": [{"nodes": "x"}]}, "drain[0].nodes: 'x' is not allowed"),
        ({"replacement": {"detached": []}}, "replacement.detached: [] is not allowed"),
        ({"deregistrations": {"a": 1}}, "deregistrations: {'a': 1} is not allowed"),
    ],
)
def test_wrong_shapes_name_the_field(kwargs, message):
    with pytest.raises(metrics.MetricsError) as caught:
        metrics.aggregate(**kwargs)
    assert str(caught.value).startswith(message)


def test_to_api_value_and_statistics():
    now = datetime(2026, 11, 21, tzinfo=UTC)
    datums = metrics.aggregate(PLAN, drain=[{"nodes": [{"instance_id": "i-1", "not_evicted": [], "seconds": 3}]}])[0]
    api = {d["MetricName"]: d for d in (metrics.to_api(d, now) for d in datums)}
    assert api["Interruptions"]["Value"] == 1.0
    assert api["DrainSeconds"]["StatisticValues"] == {"SampleCount": 1.0, "Sum": 3.0, "Minimum": 3.0, "Maximum": 3.0}
    assert "Value" not in api["DrainSeconds"]
    assert api["DrainSeconds"]["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": "web"}]
    assert api["DrainSeconds"]["Timestamp"] == now


def test_one_call_unless_a_limit_needs_more():
    datums = [{"metric_name": "M", "dimensions": {"AutoScalingGroupName": f"g{n}"}} for n in range(2500)]
    assert [len(batch) for batch in metrics.calls(datums[:1000])] == [1000]
    assert [len(batch) for batch in metrics.calls(datums)] == [1000, 1000, 500]
    small = metrics.calls(datums[:10], max_bytes=300 * metrics.ENCODING_FACTOR)
    assert len(small) > 1 and sum(len(batch) for batch in small) == 10
    assert metrics.calls([]) == []


@pytest.mark.parametrize("name", ["AWS/EC2", "", "bad space", "x" * 256])
def test_namespace_rules(name):
    assert metrics.namespace_error(name).startswith(f"namespace: {name!r} is not allowed")


def test_standby_served_reads_the_tag():
    groups = [
        {"AutoScalingGroupName": "web-standby", "Tags": [{"Key": "spotmax:standby_for", "Value": "web"}]},
        {"AutoScalingGroupName": "other", "Tags": []},
    ]
    assert metrics.standby_served(groups, "spotmax:standby_for") == {"web-standby": "web"}
