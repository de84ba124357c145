# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""cloudwatch_dashboard against moto's in-process AWS: outcomes in the (mocked) account, not calls."""

from __future__ import annotations

import json

import boto3
import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils.dashboard import fleet_body
from ansible_collections.spotmax.maxgroup.plugins.modules import cloudwatch_dashboard

TEXT = {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": "# fleet"}}
BODY = {"widgets": [TEXT]}
REGION = "us-east-1"


@pytest.fixture(name="cloudwatch")
def cloudwatch_fixture(aws):
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(cloudwatch_dashboard, args, **kwargs)


def stored(cloudwatch, name="fleet"):
    names = [entry["DashboardName"] for entry in cloudwatch.list_dashboards()["DashboardEntries"]]
    if name not in names:
        return None
    return json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])


def modified(cloudwatch, name="fleet"):
    (entry,) = [e for e in cloudwatch.list_dashboards()["DashboardEntries"] if e["DashboardName"] == name]
    return entry["LastModified"]


def test_creates_then_is_idempotent(cloudwatch, run):
    body = fleet_body(["web", "api"], {"web": "web-standby"}, REGION)
    first = run({"name": "fleet", "body": body})
    assert first["changed"] is True
    assert first["dashboard"]["name"] == "fleet"
    assert first["dashboard"]["arn"].endswith(":dashboard/fleet")
    assert stored(cloudwatch) == body
    assert first["dashboard"]["body"] == body
    written = modified(cloudwatch)
    again = run({"name": "fleet", "body": body})
    assert again["changed"] is False
    assert modified(cloudwatch) == written


def test_formatting_and_key_order_of_the_stored_body_do_not_count(cloudwatch, run):
    cloudwatch.put_dashboard(DashboardName="fleet", DashboardBody=json.dumps(BODY, indent=4, sort_keys=True))
    written = modified(cloudwatch)
    assert run({"name": "fleet", "body": {"widgets": [dict(reversed(list(TEXT.items())))]}})["changed"] is False
    assert modified(cloudwatch) == written


def test_update_shows_diff(cloudwatch, run):
    run({"name": "fleet", "body": BODY})
    changed = {"widgets": [{**TEXT, "height": 3}]}
    result = run({"name": "fleet", "body": changed}, diff=True)
    assert result["changed"] is True
    assert result["diff"] == {"before": BODY, "after": changed}
    assert stored(cloudwatch) == changed


def test_check_mode_reports_change_without_writing(cloudwatch, run):
    result = run({"name": "fleet", "body": BODY}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["diff"] == {"before": {}, "after": BODY}
    assert result["dashboard"] == {"name": "fleet", "arn": None, "body": BODY}
    assert stored(cloudwatch) is None


def test_check_mode_update_keeps_the_stored_body(cloudwatch, run):
    run({"name": "fleet", "body": BODY})
    result = run({"name": "fleet", "body": {"widgets": [{**TEXT, "height": 3}]}}, check_mode=True)
    assert result["changed"] is True
    assert stored(cloudwatch) == BODY


def test_absent_deletes_and_is_idempotent(cloudwatch, run):
    run({"name": "fleet", "body": BODY})
    run({"name": "other", "body": BODY})
    check = run({"name": "fleet", "state": "absent"}, check_mode=True, diff=True)
    assert check["changed"] is True
    assert check["diff"] == {"before": BODY, "after": {}}
    assert stored(cloudwatch) == BODY
    result = run({"name": "fleet", "state": "absent"})
    assert result["changed"] is True
    assert result["dashboard"] == {}
    assert stored(cloudwatch) is None
    assert stored(cloudwatch, "other") == BODY
    assert run({"name": "fleet", "state": "absent"})["changed"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "my fleet", "body": BODY}, "name: 'my fleet' is not allowed; use 1 to 255 characters"),
        ({"name": "x" * 256, "state": "absent"}, "name: 'xxx"),
        ({"name": "fleet", "body": {"widgets": "none"}}, "body.widgets: 'none' is not allowed; use a list of widgets"),
        (
            {"name": "fleet", "body": {"widgets": [{**TEXT, "type": "chart"}]}},
            "body.widgets[0].type: 'chart' is not allowed",
        ),
        ({"name": "fleet"}, "state is present but all of the following are missing: body"),
    ],
)
def test_invalid_input_fails_before_calling_aws(run, args, message):
    # No AWS mock here: any API call would fail differently.
    result = run(args)
    assert result["failed"] is True
    assert result["msg"].startswith(message)


def test_body_cloudwatch_refuses_is_surfaced(cloudwatch, run, monkeypatch):
    # moto validates only that the body is JSON: make the module send a body moto refuses.
    monkeypatch.setattr(cloudwatch_dashboard, "encode", lambda body: "not json")
    result = run({"name": "fleet", "body": BODY})
    assert result["failed"] is True
    assert result["msg"].startswith("body: CloudWatch refused the body of dashboard 'fleet'")
    assert result["error"]["code"] == "InvalidParameterInput"
    assert result["dashboard_validation_messages"] == []
    assert stored(cloudwatch) is None
