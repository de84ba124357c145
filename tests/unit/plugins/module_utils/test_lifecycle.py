# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

from ansible_collections.spotmax.maxgroup.plugins.module_utils import lifecycle


def test_only_waiting_instances_need_a_call():
    described = [
        {"InstanceId": "i-1", "AutoScalingGroupName": "web", "LifecycleState": "Terminating:Wait"},
        {"InstanceId": "i-2", "AutoScalingGroupName": "web", "LifecycleState": "Terminated"},
    ]
    actions = [{"instance_id": i, "hook_name": "drain"} for i in ("i-1", "i-2", "i-3")]
    entries = [entry for action, entry in lifecycle.plan(actions, described)]
    assert [(e["instance_id"], e["group"], e["reason"]) for e in entries] == [
        ("i-1", "web", None),
        ("i-2", "web", "not waiting in a lifecycle hook (state Terminated)"),
        ("i-3", None, "not in an Auto Scaling group"),
    ]
