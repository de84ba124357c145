# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Dashboard body validation and the fleet dashboard over plain data."""

from __future__ import annotations

import json

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import dashboard as db
from ansible_collections.spotmax.maxgroup.plugins.module_utils.interruption import NOTICE_KINDS

REGION = "eu-west-1"


def graphs(body):
    return [w for w in body["widgets"] if w["type"] == "metric"]


def titled(body, title):
    (widget,) = [w for w in graphs(body) if w["properties"]["title"] == title]
    return widget


def metrics_of(widget):
    """(namespace, name, dimensions, options) of every metric (not expression) of a widget."""
    out = []
    for entry in widget["properties"]["metrics"]:
        if db.is_expression(entry):
            continue
        options = entry[-1] if isinstance(entry[-1], dict) else {}
        plain = entry[:-1] if isinstance(entry[-1], dict) else entry
        out.append((plain[0], plain[1], dict(zip(plain[2::2], plain[3::2], strict=True)), options))
    return out


def expressions_of(widget):
    return {e[0]["id"]: e[0]["expression"] for e in widget["properties"]["metrics"] if db.is_expression(e)}


def test_row_per_group_with_the_pipeline_metrics():
    body = db.fleet_body(["web", "api"], {"web": "web-standby"}, REGION)
    assert not db.body_errors(body)
    kinds = metrics_of(titled(body, "web: interruptions by kind"))
    assert {(m[1], m[2]["AutoScalingGroupName"], m[2]["Kind"]) for m in kinds} == {
        ("Interruptions", "web", kind) for kind in NOTICE_KINDS
    }
    assert all(m[0] == "SpotMax" for m in kinds)
    recovery = metrics_of(titled(body, "api: replacements, warm pool hits"))
    assert {(m[1], m[2]["AutoScalingGroupName"]) for m in recovery} == {
        ("Replacements", "api"),
        ("WarmPoolHits", "api"),
    }
    drain = metrics_of(titled(body, "web: drain, deregistration"))
    assert {(m[1], m[3].get("stat", "Sum")) for m in drain} == {
        ("DrainSeconds", "Maximum"),
        ("DrainSeconds", "Average"),
        ("DrainTimeouts", "Sum"),
        ("Deregistrations", "Sum"),
    }
    market = titled(body, "web: On-Demand vs Spot")
    assert {(m[0], m[1], m[2]["AutoScalingGroupName"]) for m in metrics_of(market)} == {
        ("SpotMax", "InServiceSpot", "web"),
        ("SpotMax", "InServiceOnDemand", "web"),
    }
    assert set(expressions_of(market).values()) == {"FILL(spot, REPEAT)", "FILL(od, REPEAT)"}


def test_capacity_shows_the_standby_group_warm_pool():
    body = db.fleet_body(["web", "api"], {"web": "web-standby", "other": "other-standby"}, REGION)
    web = {(m[1], m[2]["AutoScalingGroupName"]) for m in metrics_of(titled(body, "web: capacity"))}
    assert web == {
        ("GroupDesiredCapacity", "web"),
        ("GroupInServiceInstances", "web"),
        ("GroupPendingInstances", "web"),
        ("GroupInServiceInstances", "web-standby"),
        ("WarmPoolWarmedCapacity", "web-standby"),
    }
    api = {(m[1], m[2]["AutoScalingGroupName"]) for m in metrics_of(titled(body, "api: capacity"))}
    assert ("WarmPoolWarmedCapacity", "api") in api
    assert all(m[0] == "AWS/AutoScaling" for m in metrics_of(titled(body, "api: capacity")))
    assert "other" not in json.dumps(body)


def test_summary_sums_every_group_with_metric_math():
    groups = ["web", "api", "batch"]
    body = db.fleet_body(groups, {"web": "web-standby"}, REGION)
    top = [w for w in body["widgets"] if w["y"] < 8]
    assert [w["type"] for w in top] == ["text", "metric", "metric", "metric", "metric"]
    activity = titled(body, "Fleet: interruptions and replacements")
    hidden = metrics_of(activity)
    assert all(m[3]["visible"] is False for m in hidden)
    for name in ("Interruptions", "Replacements", "WarmPoolHits"):
        assert sorted(m[2]["AutoScalingGroupName"] for m in hidden if m[1] == name) == sorted(groups)
    assert expressions_of(activity)["interruptions"] == 'SUM(FILL(METRICS("int_"), 0))'
    # Each METRICS() filter selects exactly one metric per group, never an expression.
    for widget in graphs(body)[:4]:
        ids = [m[3]["id"] for m in metrics_of(widget)]
        assert len(ids) == len(set(ids))
        for expression in expressions_of(widget).values():
            for prefix in (
                p
                for p in (
                    "int_",
                    "rep_",
                    "hit_",
                    "dsec_",
                    "tmo_",
                    "dreg_",
                    "des_",
                    "ins_",
                    "pend_",
                    "warm_",
                    "sby_",
                    "spot_",
                    "od_",
                )
                if f'"{p}"' in expression
            ):
                selected = [i for i in ids if prefix in i]
                expected = 1 if prefix == "sby_" else len(groups)
                assert len(selected) == expected, (prefix, selected)
                assert not any(prefix in i for i in expressions_of(widget))
    capacity = titled(body, "Fleet: capacity")
    pools = {m[2]["AutoScalingGroupName"] for m in metrics_of(capacity) if m[1] == "WarmPoolWarmedCapacity"}
    assert pools == {"web-standby", "api", "batch"}
    assert "standbyinservice" in expressions_of(capacity)


def test_no_standby_no_standby_series():
    body = db.fleet_body(["api"], None, REGION)
    assert "standbyinservice" not in expressions_of(titled(body, "Fleet: capacity"))


def test_layout_stays_on_the_grid_without_overlap():
    body = db.fleet_body(["web", "api"], {}, REGION)
    cells = set()
    for widget in body["widgets"]:
        assert widget["x"] + widget["width"] <= db.GRID_WIDTH
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells
                cells.add((x, y))
    assert all(w["properties"]["region"] == REGION for w in graphs(body))


def test_namespace_is_used_for_the_spotmax_metrics_only():
    body = db.fleet_body(["web"], {}, REGION, namespace="Fleet/Events")
    namespaces = {m[0] for w in graphs(body) for m in metrics_of(w)}
    assert namespaces == {"Fleet/Events", "AWS/AutoScaling"}


def test_group_name_is_escaped_in_markdown_and_kept_in_metrics():
    body = db.fleet_body(["web_[x]"], {}, REGION)
    assert body["widgets"][5]["properties"]["markdown"] == "### web\\_\\[x\\]"
    assert ("Interruptions", "web_[x]") in {(m[1], m[2]["AutoScalingGroupName"]) for m in metrics_of(graphs(body)[4])}


def test_largest_fleet_that_fits_and_the_first_that_does_not():
    fitting = [f"g{n}" for n in range(75)]
    standby = {g: f"{g}-standby" for g in fitting}
    body = db.fleet_body(fitting, standby, REGION)
    assert not db.body_errors(body)
    assert sum(db.widget_metrics(w) for w in body["widgets"]) <= db.MAX_METRICS_PER_DASHBOARD
    with pytest.raises(db.DashboardError) as raised:
        db.fleet_body([f"g{n}" for n in range(200)], {}, REGION)
    message = str(raised.value)
    assert message.startswith("groups: 200 groups need 1205 widgets and 5800 metrics, more than one dashboard holds")
    limit = int(message.rsplit("at most ", 1)[1].split(maxsplit=1)[0])
    assert not db.body_errors(db.fleet_body([f"g{n}" for n in range(limit)], {}, REGION))
    with pytest.raises(db.DashboardError):
        db.fleet_body([f"g{n}" for n in range(limit + 1)], {}, REGION)


@pytest.mark.parametrize(
    ("groups", "standby", "region", "namespace", "message"),
    [
        ([], {}, REGION, "SpotMax", "groups: [] is not allowed; use a non-empty list of Auto Scaling group names"),
        (["web", ""], {}, REGION, "SpotMax", "groups: '' is not allowed"),
        (["web", "web"], {}, REGION, "SpotMax", "groups: ['web'] are listed more than once"),
        (["web", "web-sb"], {"web": "web-sb"}, REGION, "SpotMax", "groups: ['web-sb'] are standby groups"),
        (["web"], ["web-sb"], REGION, "SpotMax", "standby: ['web-sb'] is not allowed"),
        (["web"], {}, "", "SpotMax", "region: '' is not allowed"),
        (["web"], {}, REGION, "AWS/AutoScaling", "namespace: 'AWS/AutoScaling' is not allowed"),
    ],
)
def test_bad_inputs_name_the_field(groups, standby, region, namespace, message):
    with pytest.raises(db.DashboardError) as raised:
        db.fleet_body(groups, standby, region, namespace)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("fleet", True),
        ("a" * 255, True),
        ("my-fleet_2", True),
        ("", False),
        ("a" * 256, False),
        ("my fleet", False),
        ("fleet/1", False),
        (None, False),
    ],
)
def test_name(name, ok):
    error = db.name_error(name)
    assert (error is None) is ok
    if not ok:
        assert error.startswith(f"name: {name!r} is not allowed; use 1 to 255 characters")


TEXT = {"type": "text", "x": 0, "y": 0, "width": 6, "height": 3, "properties": {"markdown": "hi"}}


def metric_widget(count, expressions=0):
    metrics = [["SpotMax", "Interruptions", "AutoScalingGroupName", f"g{n}"] for n in range(count)]
    metrics += [[{"expression": "SUM(METRICS())", "id": f"e{n}"}] for n in range(expressions)]
    return {"type": "metric", "properties": {"region": REGION, "metrics": metrics}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body: [] is not allowed; use a dict with a widgets list"),
        ({}, "body.widgets: None is not allowed; use a list of widgets"),
        ({"widgets": [], "colour": "red"}, "body.colour: is not allowed; use only the keys widgets, start, end"),
        ({"widgets": [TEXT] * 501}, "body.widgets: 501 widgets are not allowed; use at most 500"),
        ({"widgets": ["x"]}, "body.widgets[0]: 'x' is not allowed; use a widget"),
        ({"widgets": [{**TEXT, "type": "chart"}]}, "body.widgets[0].type: 'chart' is not allowed; use one of metric"),
        ({"widgets": [{"type": "text"}]}, "body.widgets[0].properties: None is not allowed; use a dict"),
        ({"widgets": [{**TEXT, "width": 25}]}, "body.widgets[0].width: 25 is not allowed; use an integer from 1 to 24"),
        ({"widgets": [{**TEXT, "x": 20}]}, "body.widgets[0]: x 20 + width 6 is not allowed; the grid is 24 wide"),
        ({"widgets": [{**TEXT, "height": "3"}]}, "body.widgets[0].height: '3' is not allowed"),
        ({"widgets": [metric_widget(501)]}, "body.widgets[0].properties.metrics: 501 metrics are not allowed"),
        ({"widgets": [metric_widget(500)] * 6}, "body.widgets: 3000 metrics are not allowed; use at most 2500"),
        (
            {"widgets": [{"type": "metric", "properties": {"metrics": "x"}}]},
            "body.widgets[0].properties.metrics: 'x' is not allowed; use a list of metric arrays",
        ),
    ],
)
def test_body_errors_name_the_field(body, message):
    errors = db.body_errors(body)
    assert len(errors) == 1
    assert errors[0].startswith(message)


def test_expressions_do_not_count_as_metrics():
    assert db.body_errors({"widgets": [metric_widget(500, expressions=10), TEXT]}) == []
    assert db.widget_metrics(metric_widget(3, expressions=2)) == 3


def test_same_body_compares_parsed_json():
    wanted = {"widgets": [TEXT], "start": "-PT6H"}
    stored = db.parse_body(json.dumps({"start": "-PT6H", "widgets": [dict(reversed(list(TEXT.items())))]}, indent=2))
    assert db.same_body(stored, wanted)
    assert not db.same_body(None, wanted)
    assert not db.same_body(stored, {"widgets": [{**TEXT, "height": 4}], "start": "-PT6H"})
    assert db.parse_body(None) is None
    with pytest.raises(db.DashboardError):
        db.parse_body("[]")


def test_describe():
    assert db.describe("fleet", None, None) == {}
    assert db.describe("fleet", "arn:x", {"widgets": []}) == {"name": "fleet", "arn": "arn:x", "body": {"widgets": []}}
