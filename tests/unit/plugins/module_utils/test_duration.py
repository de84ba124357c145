# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import autoscaling as asg
from ansible_collections.spotmax.maxgroup.plugins.module_utils import duration as dur

HOURS = "spotmax:instance_duration_hours"
MINS = "spotmax:gurantee_living_mins"
MINS_CORRECT = "spotmax:guarantee_living_mins"


def tag(key, value, propagate=False, group="g"):
    return {
        "ResourceId": group,
        "ResourceType": "auto-scaling-group",
        "Key": key,
        "Value": value,
        "PropagateAtLaunch": propagate,
    }


# --- validate ------------------------------------------------------------------------------------


def test_validate_accepts_the_edges():
    assert dur.validate(1, 1) == dur.Duration(1, 1)
    assert dur.validate(6, 359) == dur.Duration(6, 359)


@pytest.mark.parametrize(
    ("hours", "mins", "message"),
    [
        (0, 50, "instance_duration_hours: 0 is not allowed; use an integer from 1 to 6"),
        (7, 50, "instance_duration_hours: 7 is not allowed; use an integer from 1 to 6"),
        (None, 50, "instance_duration_hours: a value is required with state=present; use an integer from 1 to 6"),
        (True, 50, "instance_duration_hours: True is not allowed; use an integer from 1 to 6"),
        (
            1,
            0,
            "guarantee_living_mins: 0 is not allowed; use an integer from 1 to 59 "
            "(below instance_duration_hours * 60 = 60)",
        ),
        (
            1,
            60,
            "guarantee_living_mins: 60 is not allowed; use an integer from 1 to 59 "
            "(below instance_duration_hours * 60 = 60)",
        ),
        (
            2,
            -5,
            "guarantee_living_mins: -5 is not allowed; use an integer from 1 to 119 "
            "(below instance_duration_hours * 60 = 120)",
        ),
        (1, None, "guarantee_living_mins: a value is required with state=present; use an integer from 1 to 59"),
    ],
)
def test_validate_names_field_value_and_range(hours, mins, message):
    with pytest.raises(dur.DurationError, match=re.escape(message)):
        dur.validate(hours, mins)


# --- parse_duration ------------------------------------------------------------------------------


def test_parse_reads_the_published_keys():
    assert dur.parse_duration("g", {HOURS: "1", MINS: "50", "team": "x"}) == dur.Duration(1, 50)


def test_parse_accepts_the_correct_spelling():
    assert dur.parse_duration("g", {HOURS: "2", MINS_CORRECT: "100"}) == dur.Duration(2, 100)


def test_parse_accepts_both_spellings_when_they_agree():
    assert dur.parse_duration("g", {HOURS: "6", MINS: "350", MINS_CORRECT: "350"}) == dur.Duration(6, 350)


def test_parse_without_duration_tags_is_none():
    assert dur.parse_duration("g", {"team": "x"}) is None


def test_parse_fills_a_missing_value_with_the_published_default():
    assert dur.parse_duration("g", {HOURS: "3"}) == dur.Duration(3, 50)
    assert dur.parse_duration("g", {MINS: "30"}) == dur.Duration(1, 30)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({HOURS: "one", MINS: "50"}, f"group 'web': tag {HOURS} has the value 'one', which is not an integer"),
        ({HOURS: "1", MINS: "5.5"}, f"group 'web': tag {MINS} has the value '5.5', which is not an integer"),
        ({HOURS: "9", MINS: "50"}, f"group 'web': tag {HOURS} has the value '9'; allowed is an integer from 1 to 6"),
        (
            {HOURS: "1", MINS_CORRECT: "60"},
            f"group 'web': tag {MINS_CORRECT} has the value '60'; allowed is an integer from 1 to 59",
        ),
        ({HOURS: "1", MINS: "0"}, f"group 'web': tag {MINS} has the value '0'; allowed is an integer from 1 to 59"),
        ({HOURS: "1", MINS: "40", MINS_CORRECT: "45"}, f"group 'web': the tags {MINS} and {MINS_CORRECT} disagree"),
    ],
)
def test_parse_names_group_key_and_value(tags, message):
    with pytest.raises(dur.DurationError, match=re.escape(message)):
        dur.parse_duration("web", tags)


def test_tags_to_dict_reads_api_and_snake_case_tags():
    assert dur.tags_to_dict([{"Key": HOURS, "Value": "1"}, {"key": MINS, "value": "50"}]) == {HOURS: "1", MINS: "50"}


# --- describe ------------------------------------------------------------------------------------


def test_describe_reports_malformed_values_as_found():
    described = dur.describe([tag(HOURS, "soon"), tag(MINS, "50", True), tag("team", "x")])
    assert described == {
        "instance_duration_hours": "soon",
        "guarantee_living_mins": 50,
        "tags": [
            {"key": MINS, "value": "50", "propagate_at_launch": True},
            {"key": HOURS, "value": "soon", "propagate_at_launch": False},
        ],
    }


def test_describe_prefers_the_published_spelling():
    assert dur.describe([tag(MINS_CORRECT, "45"), tag(MINS, "40")])["guarantee_living_mins"] == 40
    assert dur.describe([tag(MINS_CORRECT, "45")])["guarantee_living_mins"] == 45
    assert dur.describe([]) == {"instance_duration_hours": None, "guarantee_living_mins": None, "tags": []}


# --- plan ----------------------------------------------------------------------------------------


def test_plan_adds_published_keys_to_an_untagged_group():
    result = dur.plan("g", [tag("team", "x")], dur.Duration(1, 50))
    assert result.changed
    assert {(t["Key"], t["Value"], t["PropagateAtLaunch"]) for t in result.put} == {
        (HOURS, "1", False),
        (MINS, "50", False),
    }
    assert all(t["ResourceId"] == "g" and t["ResourceType"] == "auto-scaling-group" for t in result.put)
    assert result.delete == []
    assert result.before["tags"] == []
    assert (result.after["instance_duration_hours"], result.after["guarantee_living_mins"]) == (1, 50)


def test_plan_is_empty_when_tags_already_match():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS, "50"), tag("team", "x")], dur.Duration(1, 50))
    assert not result.changed
    assert result.before == result.after


def test_plan_updates_only_the_differing_tag():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS, "50")], dur.Duration(1, 40))
    assert [(t["Key"], t["Value"]) for t in result.put] == [(MINS, "40")]
    assert result.before["guarantee_living_mins"] == 50
    assert result.after["guarantee_living_mins"] == 40


def test_plan_rewrites_a_differing_propagate_at_launch():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS, "50")], dur.Duration(1, 50), propagate_at_launch=True)
    assert {t["Key"] for t in result.put} == {HOURS, MINS}
    assert all(t["PropagateAtLaunch"] is True for t in result.put)
    assert all(t["propagate_at_launch"] for t in result.after["tags"])


def test_plan_updates_the_correct_spelling_in_place():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS_CORRECT, "50")], dur.Duration(2, 90))
    assert {(t["Key"], t["Value"]) for t in result.put} == {(HOURS, "2"), (MINS_CORRECT, "90")}
    assert [t["key"] for t in result.after["tags"]] == [MINS_CORRECT, HOURS]


def test_plan_keeps_both_spellings_consistent():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS, "50"), tag(MINS_CORRECT, "45")], dur.Duration(1, 50))
    assert [(t["Key"], t["Value"]) for t in result.put] == [(MINS_CORRECT, "50")]


def test_plan_overwrites_malformed_values():
    result = dur.plan("g", [tag(HOURS, "soon"), tag(MINS, "")], dur.Duration(1, 50))
    assert {(t["Key"], t["Value"]) for t in result.put} == {(HOURS, "1"), (MINS, "50")}
    assert result.before["instance_duration_hours"] == "soon"
    assert result.before["guarantee_living_mins"] == ""


def test_plan_absent_deletes_every_spelling_and_nothing_else():
    result = dur.plan("g", [tag(HOURS, "1"), tag(MINS, "50"), tag(MINS_CORRECT, "50"), tag("team", "x")], None)
    assert sorted(t["Key"] for t in result.delete) == sorted([HOURS, MINS, MINS_CORRECT])
    assert all("Value" not in t for t in result.delete)
    assert result.put == []
    assert result.after == dur.describe([])


def test_plan_absent_on_an_untagged_group_changes_nothing():
    assert not dur.plan("g", [tag("team", "x")], None).changed


# --- batching ------------------------------------------------------------------------------------


def test_tag_batches_respect_the_size_and_keep_groups_whole():
    tags = [tag(key, "1", group=f"g{i}") for i in range(150) for key in (HOURS, MINS)]
    batches = asg.tag_batches(tags)
    assert len(batches) == 15
    assert all(len(batch) <= asg.TAG_WRITE_BATCH for batch in batches)
    assert [t for batch in batches for t in batch] == tags
    owners = [{t["ResourceId"] for t in batch} for batch in batches]
    assert all(not (a & b) for i, a in enumerate(owners) for b in owners[i + 1 :])


def test_tag_batches_with_odd_group_sizes():
    tags = [tag(HOURS, "1", group="a"), *(tag(f"k{i}", "v", group="b") for i in range(3))]
    assert [len(batch) for batch in asg.tag_batches(tags, size=3)] == [1, 3]
    assert asg.tag_batches([]) == []
