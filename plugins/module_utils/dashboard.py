# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""CloudWatch dashboards: validation of a dashboard body and the fleet dashboard, as pure functions.

The fleet dashboard has a summary row on top (metric math over every group: a mass interruption and the
recovery in four graphs), then one row per group: interruptions by kind, replacements and warm pool hits,
drain and deregistration, Auto Scaling capacity (with the group's standby group) and On-Demand vs Spot.
The SpotMax metrics are those of :mod:`metrics` (interruption_metrics) and the od_fallback runs
(``InServiceSpot``, ``InServiceOnDemand``); the capacity metrics are AWS/AutoScaling group metrics, which
exist only for groups with metrics collection enabled.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.interruption import NOTICE_KINDS
from ansible_collections.spotmax.maxgroup.plugins.module_utils.metrics import (
    DEFAULT_NAMESPACE,
    GROUP_DIMENSION,
    KIND_DIMENSION,
    namespace_error,
)

NAME = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
# CloudWatch dashboard quotas: widgets per dashboard, metrics per graph widget, metrics per dashboard across
# all widgets. Metrics fetched only for metric math (hidden) count too.
MAX_WIDGETS = 500
MAX_METRICS_PER_WIDGET = 500
MAX_METRICS_PER_DASHBOARD = 2500
GRID_WIDTH = 24
MAX_HEIGHT = 1000
BODY_KEYS = ("widgets", "start", "end", "periodOverride", "variables")
WIDGET_TYPES = ("metric", "text", "log", "alarm", "explorer", "custom")
AUTOSCALING_NAMESPACE = "AWS/AutoScaling"
PERIOD = 60
MAX_GROUP_NAME = 255


class DashboardError(ValueError):
    """An input CloudWatch would refuse, or a fleet too large for one dashboard."""


def name_error(name: Any) -> str | None:
    if not isinstance(name, str) or not NAME.match(name):
        return f"name: {name!r} is not allowed; use 1 to 255 characters of letters A-Z a-z, digits 0-9, - and _"
    return None


def _int_error(field: str, value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"{field}: {value!r} is not allowed; use an integer from {low} to {high}"
    return None


def is_expression(entry: Any) -> bool:
    return isinstance(entry, list) and bool(entry) and isinstance(entry[-1], dict) and "expression" in entry[-1]


def widget_metrics(widget: dict[str, Any]) -> int:
    """Metrics a widget fetches (metric math expressions excluded, hidden metrics included)."""
    properties = widget.get("properties")
    metrics = properties.get("metrics") if isinstance(properties, dict) else None
    if not isinstance(metrics, list):
        return 0
    return sum(1 for entry in metrics if not is_expression(entry))


def _widget_errors(index: int, widget: Any) -> list[str]:
    field = f"body.widgets[{index}]"
    if not isinstance(widget, dict):
        return [f"{field}: {widget!r} is not allowed; use a widget (a dict with type and properties)"]
    errors: list[str] = []
    if widget.get("type") not in WIDGET_TYPES:
        errors.append(f"{field}.type: {widget.get('type')!r} is not allowed; use one of {', '.join(WIDGET_TYPES)}")
    if not isinstance(widget.get("properties"), dict):
        errors.append(f"{field}.properties: {widget.get('properties')!r} is not allowed; use a dict")
    limits = {"x": (0, GRID_WIDTH - 1), "y": (0, 10**9), "width": (1, GRID_WIDTH), "height": (1, MAX_HEIGHT)}
    placement = [_int_error(f"{field}.{key}", widget[key], *limits[key]) for key in limits if key in widget]
    errors.extend(error for error in placement if error)
    if not any(placement) and "x" in widget and "width" in widget:
        if widget["x"] + widget["width"] > GRID_WIDTH:
            errors.append(
                f"{field}: x {widget['x']} + width {widget['width']} is not allowed; the grid is {GRID_WIDTH} wide"
            )
    properties = widget.get("properties")
    metrics = properties.get("metrics") if isinstance(properties, dict) else None
    if metrics is not None:
        if not isinstance(metrics, list) or not all(isinstance(entry, list) for entry in metrics):
            errors.append(f"{field}.properties.metrics: {metrics!r} is not allowed; use a list of metric arrays")
        elif widget_metrics(widget) > MAX_METRICS_PER_WIDGET:
            errors.append(
                f"{field}.properties.metrics: {widget_metrics(widget)} metrics are not allowed; "
                f"use at most {MAX_METRICS_PER_WIDGET} per widget"
            )
    return errors


def body_errors(body: Any) -> list[str]:
    """What CloudWatch's dashboard body structure and quotas refuse in ``body``, one message per problem."""
    if not isinstance(body, dict):
        return [f"body: {body!r} is not allowed; use a dict with a widgets list"]
    errors = [
        f"body.{key}: is not allowed; use only the keys {', '.join(BODY_KEYS)}"
        for key in sorted(body)
        if key not in BODY_KEYS
    ]
    widgets = body.get("widgets")
    if not isinstance(widgets, list):
        return [*errors, f"body.widgets: {widgets!r} is not allowed; use a list of widgets"]
    if len(widgets) > MAX_WIDGETS:
        errors.append(f"body.widgets: {len(widgets)} widgets are not allowed; use at most {MAX_WIDGETS}")
    for index, widget in enumerate(widgets):
        errors.extend(_widget_errors(index, widget))
    total = sum(widget_metrics(widget) for widget in widgets if isinstance(widget, dict))
    if total > MAX_METRICS_PER_DASHBOARD:
        errors.append(
            f"body.widgets: {total} metrics are not allowed; use at most {MAX_METRICS_PER_DASHBOARD} per dashboard"
        )
    return errors


def parse_body(text: str | None) -> dict[str, Any] | None:
    """GetDashboard's ``DashboardBody`` as a dict; None for no dashboard."""
    if text is None:
        return None
    parsed = json.loads(text)
    if not isinstance(parsed, dict):
        raise DashboardError(f"DashboardBody: {text!r} is not a JSON object")
    return parsed


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as it reads back from JSON (tuples become lists), for comparison with a stored body."""
    result: dict[str, Any] = json.loads(json.dumps(body))
    return result


def same_body(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    return current is not None and current == normalise(wanted)


# The fleet dashboard.


def _metric(namespace: str, name: str, group: str, options: dict[str, Any], **dimensions: str) -> list[Any]:
    entry: list[Any] = [namespace, name, GROUP_DIMENSION, group]
    for key, value in dimensions.items():
        entry.extend([key, value])
    entry.append(options)
    return entry


def _expression(expression: str, label: str, ident: str, **extra: Any) -> list[Any]:
    return [{"expression": expression, "label": label, "id": ident, **extra}]


def _graph(
    title: str,
    metrics: list[list[Any]],
    region: str,
    position: tuple[int, int, int, int],
    stat: str = "Sum",
    stacked: bool = False,
    right_label: str | None = None,
) -> dict[str, Any]:
    x, y, width, height = position
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stacked": stacked,
        "stat": stat,
        "period": PERIOD,
        "metrics": metrics,
        "yAxis": {"left": {"min": 0}},
    }
    if right_label is not None:
        properties["yAxis"]["right"] = {"min": 0, "label": right_label, "showUnits": False}
    return {"type": "metric", "x": x, "y": y, "width": width, "height": height, "properties": properties}


def _text(markdown: str, y: int, height: int) -> dict[str, Any]:
    return {"type": "text", "x": 0, "y": y, "width": GRID_WIDTH, "height": height, "properties": {"markdown": markdown}}


def _markdown(text: str) -> str:
    """A group name as literal Markdown text."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def _hidden(namespace: str, name: str, group: str, ident: str, **options: Any) -> list[Any]:
    return _metric(namespace, name, group, {"id": ident, "visible": False, **options})


def _sum(prefix: str, fill: str = "0") -> str:
    return f'SUM(FILL(METRICS("{prefix}_"), {fill}))'


def _summary(groups: list[str], standby: dict[str, str], region: str, namespace: str) -> list[dict[str, Any]]:
    count = len(groups)
    text = (
        f"## Fleet: {count} Auto Scaling group{'s' if count != 1 else ''}\n"
        "Sums over every group below. A mass interruption shows as a spike of interruptions with replacements "
        "and warm pool hits, in-service capacity dipping below desired and coming back; On-Demand rising while "
        "Spot capacity is missing, then reverting."
    )
    activity: list[list[Any]] = []
    drain: list[list[Any]] = []
    capacity: list[list[Any]] = []
    market: list[list[Any]] = []
    for n, group in enumerate(groups):
        activity.append(_hidden(namespace, "Interruptions", group, f"int_{n}"))
        activity.append(_hidden(namespace, "Replacements", group, f"rep_{n}"))
        activity.append(_hidden(namespace, "WarmPoolHits", group, f"hit_{n}"))
        drain.append(_hidden(namespace, "DrainSeconds", group, f"dsec_{n}", stat="Maximum"))
        drain.append(_hidden(namespace, "DrainTimeouts", group, f"tmo_{n}"))
        drain.append(_hidden(namespace, "Deregistrations", group, f"dreg_{n}"))
        capacity.append(_hidden(AUTOSCALING_NAMESPACE, "GroupDesiredCapacity", group, f"des_{n}"))
        capacity.append(_hidden(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", group, f"ins_{n}"))
        capacity.append(_hidden(AUTOSCALING_NAMESPACE, "GroupPendingInstances", group, f"pend_{n}"))
        pool_owner = standby.get(group, group)
        capacity.append(_hidden(AUTOSCALING_NAMESPACE, "WarmPoolWarmedCapacity", pool_owner, f"warm_{n}"))
        if group in standby:
            capacity.append(_hidden(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", standby[group], f"sby_{n}"))
        market.append(_hidden(namespace, "InServiceSpot", group, f"spot_{n}", stat="Average"))
        market.append(_hidden(namespace, "InServiceOnDemand", group, f"od_{n}", stat="Average"))
    activity[:0] = [
        _expression(_sum("int"), "interruptions", "interruptions"),
        _expression(_sum("rep"), "replacements", "replacements"),
        _expression(_sum("hit"), "warm pool hits", "warmpoolhits"),
    ]
    drain[:0] = [
        _expression('MAX(FILL(METRICS("dsec_"), 0))', "longest drain (s)", "longestdrain", yAxis="right"),
        _expression(_sum("tmo"), "drain timeouts", "draintimeouts"),
        _expression(_sum("dreg"), "Consul deregistrations", "deregistrations"),
    ]
    capacity[:0] = [
        _expression('SUM(METRICS("des_"))', "desired", "desired"),
        _expression('SUM(METRICS("ins_"))', "in service", "inservice"),
        _expression('SUM(METRICS("pend_"))', "pending", "pending"),
        _expression('SUM(METRICS("warm_"))', "warm pool (warmed)", "warmpool"),
    ]
    if standby.keys() & set(groups):
        capacity.insert(4, _expression('SUM(METRICS("sby_"))', "standby groups in service", "standbyinservice"))
    market[:0] = [
        _expression(_sum("spot", "REPEAT"), "Spot in service", "spot"),
        _expression(_sum("od", "REPEAT"), "On-Demand in service", "ondemand"),
    ]
    return [
        _text(text, 0, 2),
        _graph("Fleet: interruptions and replacements", activity, region, (0, 2, 6, 6)),
        _graph("Fleet: drain and deregistration", drain, region, (6, 2, 6, 6), right_label="seconds"),
        _graph("Fleet: capacity", capacity, region, (12, 2, 6, 6), stat="Average"),
        _graph("Fleet: On-Demand vs Spot", market, region, (18, 2, 6, 6), stat="Average", stacked=True),
    ]


def _group_row(group: str, standby: str | None, region: str, namespace: str, y: int) -> list[dict[str, Any]]:
    header = f"### {_markdown(group)}" + (f" (standby group {_markdown(standby)})" if standby else "")
    kinds = [
        _metric(namespace, "Interruptions", group, {"label": kind}, **{KIND_DIMENSION: kind}) for kind in NOTICE_KINDS
    ]
    recovery = [
        _metric(namespace, "Replacements", group, {"label": "replacements"}),
        _metric(namespace, "WarmPoolHits", group, {"label": "warm pool hits"}),
    ]
    drain = [
        _metric(
            namespace, "DrainSeconds", group, {"label": "drain seconds (max)", "stat": "Maximum", "yAxis": "right"}
        ),
        _metric(
            namespace, "DrainSeconds", group, {"label": "drain seconds (avg)", "stat": "Average", "yAxis": "right"}
        ),
        _metric(namespace, "DrainTimeouts", group, {"label": "drain timeouts"}),
        _metric(namespace, "Deregistrations", group, {"label": "Consul deregistrations"}),
    ]
    capacity = [
        _metric(AUTOSCALING_NAMESPACE, "GroupDesiredCapacity", group, {"label": "desired"}),
        _metric(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", group, {"label": "in service"}),
        _metric(AUTOSCALING_NAMESPACE, "GroupPendingInstances", group, {"label": "pending"}),
    ]
    if standby:
        capacity.append(
            _metric(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", standby, {"label": "standby in service"})
        )
        capacity.append(
            _metric(AUTOSCALING_NAMESPACE, "WarmPoolWarmedCapacity", standby, {"label": "standby warm pool"})
        )
    else:
        capacity.append(_metric(AUTOSCALING_NAMESPACE, "WarmPoolWarmedCapacity", group, {"label": "warm pool"}))
    market = [
        _expression("FILL(spot, REPEAT)", "Spot", "spotfilled"),
        _expression("FILL(od, REPEAT)", "On-Demand", "odfilled"),
        _metric(namespace, "InServiceSpot", group, {"id": "spot", "visible": False}),
        _metric(namespace, "InServiceOnDemand", group, {"id": "od", "visible": False}),
    ]
    top = y + 1
    return [
        _text(header, y, 1),
        _graph(f"{group}: interruptions by kind", kinds, region, (0, top, 5, 6), stacked=True),
        _graph(f"{group}: replacements, warm pool hits", recovery, region, (5, top, 5, 6)),
        _graph(f"{group}: drain, deregistration", drain, region, (10, top, 5, 6), right_label="seconds"),
        _graph(f"{group}: capacity", capacity, region, (15, top, 5, 6), stat="Average"),
        _graph(f"{group}: On-Demand vs Spot", market, region, (20, top, 4, 6), stat="Average", stacked=True),
    ]


def _check_inputs(groups: Any, standby: Any, region: Any, namespace: Any) -> None:
    if not isinstance(groups, list) or not groups:
        raise DashboardError(f"groups: {groups!r} is not allowed; use a non-empty list of Auto Scaling group names")
    for group in groups:
        if not isinstance(group, str) or not 1 <= len(group) <= MAX_GROUP_NAME:
            raise DashboardError(
                f"groups: {group!r} is not allowed; use Auto Scaling group names (1 to {MAX_GROUP_NAME} characters)"
            )
    repeated = sorted({group for group in groups if groups.count(group) > 1})
    if repeated:
        raise DashboardError(f"groups: {repeated!r} are listed more than once; list each group once")
    if not isinstance(standby, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in standby.items()):
        raise DashboardError(f"standby: {standby!r} is not allowed; use {{served group: standby group}}")
    served_by = {standby[group]: group for group in groups if group in standby}
    listed = sorted(group for group in groups if group in served_by)
    if listed:
        raise DashboardError(
            f"groups: {listed!r} are standby groups (spotmax:standby_for) of {[served_by[g] for g in listed]!r}; "
            "list only the served groups, their standby groups are shown in their rows"
        )
    if not isinstance(region, str) or not region:
        raise DashboardError(f"region: {region!r} is not allowed; use an AWS region name such as us-east-1")
    error = namespace_error(namespace) if isinstance(namespace, str) else f"namespace: {namespace!r} is not allowed"
    if error:
        raise DashboardError(error)


def _build(groups: list[str], standby: dict[str, str], region: str, namespace: str) -> dict[str, Any]:
    widgets = _summary(groups, standby, region, namespace)
    y = 8
    for group in groups:
        widgets.extend(_group_row(group, standby.get(group), region, namespace, y))
        y += 7
    return {"widgets": widgets}


def _fits(body: dict[str, Any]) -> bool:
    return not body_errors(body)


def fleet_body(
    groups: list[str], standby: dict[str, str] | None, region: str, namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """The fleet dashboard's body for ``groups`` (rows in the order given).

    ``standby`` maps a served group to its standby group (``spotmax:standby_for``). A fleet too large for
    one dashboard is refused (no silent split): the message says how many groups fit, so the caller can
    split the fleet across dashboards.
    """
    standby = {} if standby is None else standby
    _check_inputs(groups, standby, region, namespace)
    body = _build(groups, standby, region, namespace)
    if _fits(body):
        return body
    fitting = 0
    low, high = 1, len(groups) - 1
    while low <= high:
        middle = (low + high) // 2
        if _fits(_build(groups[:middle], standby, region, namespace)):
            fitting, low = middle, middle + 1
        else:
            high = middle - 1
    widgets = body["widgets"]
    total = sum(widget_metrics(widget) for widget in widgets)
    raise DashboardError(
        f"groups: {len(groups)} groups need {len(widgets)} widgets and {total} metrics, more than one dashboard "
        f"holds ({MAX_WIDGETS} widgets, {MAX_METRICS_PER_DASHBOARD} metrics, {MAX_METRICS_PER_WIDGET} per widget); "
        f"split the fleet across dashboards of at most {fitting} groups each"
    )


def describe(name: str, arn: str | None, body: dict[str, Any] | None) -> dict[str, Any]:
    """The module's ``dashboard`` return value; empty when there is no dashboard."""
    if body is None:
        return {}
    return {"name": name, "arn": arn, "body": body}
