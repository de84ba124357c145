# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.spotmax.maxgroup.plugins.module_utils.dashboard import DashboardError, fleet_body
from ansible_collections.spotmax.maxgroup.plugins.module_utils.metrics import DEFAULT_NAMESPACE

DOCUMENTATION = r"""
name: fleet_dashboard
version_added: 0.1.0
short_description: The body of the CloudWatch dashboard of a fleet of Auto Scaling groups
author:
  - spotmax.maxgroup maintainers (@spotmax)
description:
  - Builds the body of a CloudWatch dashboard for the given groups, to pass to M(spotmax.maxgroup.cloudwatch_dashboard).
  - "A fleet summary row on top (metric math over every group): interruptions, replacements and warm pool hits;
    longest drain, drain timeouts and Consul deregistrations; desired, in-service, pending and warm pool capacity;
    On-Demand vs Spot in service."
  - "Then one row per group: interruptions by kind, replacements and warm pool hits, drain seconds, drain timeouts and
    deregistrations, Auto Scaling capacity (with the standby group's in-service and warm pool capacity) and
    On-Demand vs Spot."
  - The SpotMax metrics are those M(spotmax.maxgroup.interruption_metrics) and the od_fallback runs send; the capacity
    metrics are C(AWS/AutoScaling) group metrics, which exist only for groups with metrics collection enabled.
  - A fleet that needs more than one dashboard holds (500 widgets, 2500 metrics, 500 metrics per widget) is refused
    with the number of groups that fit; split the fleet across several dashboards.
options:
  _input:
    description: Names of the Auto Scaling groups, one row each in this order; not their standby groups.
    type: list
    elements: str
    required: true
  standby:
    description:
      - "The standby group of a group (the group its C(spotmax:standby_for) tag names), as C({group: standby group})."
    type: dict
    default: {}
  region:
    description: The region of the groups and metrics.
    type: str
    required: true
  namespace:
    description: The CloudWatch namespace of the SpotMax metrics.
    type: str
    default: SpotMax
"""

EXAMPLES = r"""
- name: Dashboard of two groups, web with its standby group
  spotmax.maxgroup.cloudwatch_dashboard:
    name: fleet
    body: "{{ ['web', 'api'] | spotmax.maxgroup.fleet_dashboard(standby={'web': 'web-standby'}, region='us-east-1') }}"
"""

RETURN = r"""
_value:
  description: The dashboard body, a dict with its C(widgets).
  type: dict
"""


def fleet_dashboard(groups, standby=None, region=None, namespace=DEFAULT_NAMESPACE):
    try:
        return fleet_body(
            list(groups) if isinstance(groups, Sequence) and not isinstance(groups, str) else groups,
            dict(standby) if isinstance(standby, Mapping) else standby,
            region,
            namespace,
        )
    except DashboardError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"fleet_dashboard": fleet_dashboard}
