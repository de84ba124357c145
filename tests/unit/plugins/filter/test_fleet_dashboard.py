# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The fleet_dashboard filter: the module_utils body, errors as Ansible filter errors."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.spotmax.maxgroup.plugins.filter.fleet_dashboard import FilterModule
from ansible_collections.spotmax.maxgroup.plugins.module_utils.dashboard import fleet_body

FILTER = FilterModule().filters()["fleet_dashboard"]


def test_body_of_the_groups():
    body = FILTER(("web", "api"), standby={"web": "web-standby"}, region="us-east-1", namespace="Fleet")
    assert body == fleet_body(["web", "api"], {"web": "web-standby"}, "us-east-1", "Fleet")


def test_error_is_a_filter_error_naming_the_field():
    with pytest.raises(AnsibleFilterError, match=r"^region: None is not allowed"):
        FILTER(["web"])
