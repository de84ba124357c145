# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import group_tags as gt


def tags(**values):
    return [{"Key": f"spotmax:{key}", "Value": value} for key, value in values.items()]


def test_defaults_are_the_published_ones():
    settings = gt.group_settings("web", [])
    assert settings["detaching_delay_seconds"] == 30
    assert settings["k8s_node_drain_grace_second"] == 300
    assert settings["k8s_delay_draining_secs"] == 90
    assert settings["sd_delay_detach_secs"] == 30
    assert settings["is_enable_od_fallback"] is True
    assert settings["od_least_live_mins"] == 15
    assert settings["is_to_handle_rebalance_event"] is False
    assert settings["max_num_of_terminated_one_time"] == 1
    assert settings["k8s_config_file_path"] is None
    assert settings["consul_port"] is None


def test_reads_values_from_the_api_tag_list():
    settings = gt.group_settings(
        "web",
        tags(
            k8s_config_file_path="/data/spotmax/k8sconfig",
            detaching_delay_seconds="80",
            consul_port="8500",
            is_to_handle_rebalance_event="True",
            gurantee_living_mins="50",
            instance_duration_hours="1",
        ),
    )
    assert settings["k8s_config_file_path"] == "/data/spotmax/k8sconfig"
    assert settings["detaching_delay_seconds"] == 80
    assert settings["consul_port"] == 8500
    assert settings["is_to_handle_rebalance_event"] is True
    assert (settings["instance_duration_hours"], settings["guarantee_living_mins"]) == (1, 50)


def test_accepts_the_correct_spelling_of_the_guarantee_key():
    assert gt.group_settings("web", {"spotmax:guarantee_living_mins": "40"})["guarantee_living_mins"] == 40


def test_published_spelling_wins_when_both_are_present():
    found = {"spotmax:gurantee_living_mins": "50", "spotmax:guarantee_living_mins": "40"}
    assert gt.group_settings("web", found)["guarantee_living_mins"] == 50


@pytest.mark.parametrize(
    ("found", "message"),
    [
        (
            {"spotmax:consul_port": "eighty"},
            "group 'web' tag spotmax:consul_port: 'eighty' is not allowed; use an integer from 1 to 65535",
        ),
        ({"spotmax:consul_port": "70000"}, "group 'web' tag spotmax:consul_port: 70000 is not allowed"),
        (
            {"spotmax:is_warm_pool_first": "maybe"},
            "group 'web' tag spotmax:is_warm_pool_first: 'maybe' is not allowed; use true or false",
        ),
        ({"spotmax:k8s_config_file_path": " "}, "group 'web' tag spotmax:k8s_config_file_path: an empty value"),
        ({"spotmax:instance_duration_hours": "7"}, "use an integer from 1 to 6"),
        (
            {"spotmax:instance_duration_hours": "1", "spotmax:gurantee_living_mins": "60"},
            "it must be below spotmax:instance_duration_hours x 60 (60)",
        ),
    ],
)
def test_wrong_values_name_group_key_value_and_range(found, message):
    with pytest.raises(gt.TagError) as error:
        gt.group_settings("web", found)
    assert message in str(error.value)
    settings, problem = gt.group_settings_or_error("web", found)
    assert settings is None
    assert message in problem


def test_membership_is_the_spotmax_group_tag():
    assert gt.is_managed([{"Key": "spotmax:group", "Value": "web"}])
    assert not gt.is_managed({"Name": "web-1"})
    assert not gt.is_managed(None)
