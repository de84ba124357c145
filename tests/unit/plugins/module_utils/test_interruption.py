# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The interruption plan over plain data: every decision branch, no server."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import interruption

I1, I2, I3, I4 = "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d"
K8S = {"spotmax:k8s_config_file_path": "/etc/k8s"}
CONSUL = {"spotmax:consul_port": "8500"}


def event(kind, instance_id, handle="rh-1", **extra):
    found = {
        "kind": kind,
        "instance_id": instance_id,
        "group": None,
        "time": "2026-11-21T14:05:06Z",
        "deadline": None,
        "state": None,
        "lifecycle": None,
        "message_id": f"m-{handle}",
        "receipt_handle": handle,
    }
    found.update(extra)
    return found


def lifecycle_event(instance_id, handle="rh-l", group="web", hook="drain", token="tok-1"):  # noqa: S107
    return event(
        "lifecycle_terminate",
        instance_id,
        handle,
        group=group,
        lifecycle={
            "hook_name": hook,
            "token": token,
            "group": group,
            "transition": "autoscaling:EC2_INSTANCE_TERMINATING",
        },
    )


def instance(instance_id, group="web", managed=True, handled=None, ip="10.0.0.1", state="running", member_of=None):
    tags = [{"Key": "aws:autoscaling:groupName", "Value": group}] if group else []
    if managed:
        tags.append({"Key": "spotmax:group", "Value": group or member_of or ""})
    if handled is not None:
        tags.append({"Key": "spotmax:interruption_handled", "Value": handled})
    found = {
        "InstanceId": instance_id,
        "Tags": tags,
        "Placement": {"AvailabilityZone": "us-east-1a"},
        "State": {"Name": state},
    }
    if ip:
        found["PrivateIpAddress"] = ip
    return found


def group(name="web", **tags):
    return {"AutoScalingGroupName": name, "Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}


def full_group(name="web", **tags):
    return group(name, **K8S, **CONSUL, **tags)


def plan(events, instances, groups, hooks=None, ignored=None):
    return interruption.plan(events, ignored or [], instances, groups, hooks or {})


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("not a dict", "event: 'not a dict' is not allowed; use a normalised event (a dict)"),
        (
            {"kind": "reboot", "instance_id": I1},
            "kind: 'reboot' is not allowed; use one of spot_interruption, rebalance",
        ),
        ({"kind": "rebalance", "instance_id": "web-1"}, "instance_id: 'web-1' is not allowed; use an EC2 instance id"),
        ({"kind": "rebalance", "instance_id": "i-XYZ12345"}, "instance_id: 'i-XYZ12345' is not allowed"),
        ({"kind": "rebalance", "instance_id": I1, "time": "yesterday"}, "time: 'yesterday' is not allowed; use an ISO"),
        ({"kind": "rebalance", "instance_id": I1, "deadline": 5}, "deadline: 5 is not allowed; use an ISO 8601"),
        ({"kind": "rebalance", "instance_id": I1, "receipt_handle": ""}, "receipt_handle: '' is not allowed"),
        (
            {"kind": "state_change", "instance_id": I1, "state": "exploded"},
            "state: 'exploded' is not allowed for state_change",
        ),
        ({"kind": "state_change", "instance_id": I1}, "state: None is not allowed for state_change"),
        ({"kind": "lifecycle_terminate", "instance_id": I1}, "lifecycle: None is not allowed for lifecycle_terminate"),
        (
            {"kind": "lifecycle_terminate", "instance_id": I1, "lifecycle": {"hook_name": "h", "group": "g"}},
            "lifecycle.token: None is not allowed; use a non-empty string",
        ),
    ],
)
def test_malformed_events_are_named(broken, message):
    assert interruption.event_error(broken).startswith(message)


def test_well_formed_events_pass():
    assert interruption.event_error(event("spot_interruption", I1, deadline="2026-11-21T14:07:06Z")) is None
    assert interruption.event_error(lifecycle_event(I1)) is None
    assert interruption.event_error(event("state_change", I1, state="terminated")) is None


def test_standalone_events_have_no_receipt_handle_and_are_distinct():
    built = interruption.standalone_events([I1, I1, I2], "rebalance")
    assert [(e["kind"], e["instance_id"], e["receipt_handle"]) for e in built] == [
        ("rebalance", I1, None),
        ("rebalance", I2, None),
    ]
    assert all(interruption.event_error(e) is None for e in built)


def test_reads_needed():
    events = [
        event("spot_interruption", I2),
        event("state_change", I3, state="running"),
        lifecycle_event(I1, group="hooked"),
        {"kind": "nope"},
    ]
    assert interruption.instances_to_read(events) == [I1, I2]
    assert interruption.lifecycle_groups(events) == ["hooked"]
    assert interruption.groups_to_read(events, [instance(I2, group="web")]) == ["hooked", "web"]


# --- decisions -----------------------------------------------------------------------------------


def test_spot_interruption_on_a_full_group():
    result = plan(
        [event("spot_interruption", I1, deadline="2026-11-21T14:07:06Z")],
        [instance(I1)],
        [full_group(**{"spotmax:k8s_delay_draining_secs": "5", "spotmax:sd_delay_detach_secs": "7"})],
    )
    assert result["instances"] == [
        {
            "instance_id": I1,
            "kinds": ["spot_interruption"],
            "group": "web",
            "private_ip": "10.0.0.1",
            "availability_zone": "us-east-1a",
            "actions": ["cordon", "replace", "drain", "deregister"],
            "deadline": "2026-11-21T14:07:06Z",
            "persistence_dev": None,
        }
    ]
    assert result["kubernetes"] == [
        {
            "kubeconfig": "/etc/k8s",
            "eks_cluster_name": None,
            "cordon": [I1],
            "drain": [I1],
            "cleanup": [],
            "delay_seconds": 5,
            "grace_seconds": 300,
            "deadline": "2026-11-21T14:07:06Z",
        }
    ]
    assert result["consul"] == [
        {
            "agent_port": 8500,
            "delay_seconds": 7,
            "mode": "auto",
            "instances": [{"instance_id": I1, "private_ip": "10.0.0.1", "agent_port": 8500}],
        }
    ]
    assert result["replace"] == [I1]
    assert result["retire"] == []
    assert result["handover"] == []
    assert result["lifecycle"] == []
    assert result["receipt_handles"] == ["rh-1"]
    assert result["held"] == []
    assert result["handled_tags"] == {I1: "spot_interruption"}
    assert result["groups"] == {"web": {"spot_interruption": 1}}
    assert result["skipped"] == [] and result["errors"] == []


def test_group_without_kubernetes_or_consul_only_replaces():
    result = plan([event("spot_interruption", I1)], [instance(I1)], [group()])
    assert result["instances"][0]["actions"] == ["replace"]
    assert result["kubernetes"] == [] and result["consul"] == []


def test_eks_cluster_counts_as_kubernetes():
    result = plan([event("spot_interruption", I1)], [instance(I1)], [group(**{"spotmax:eks_cluster_name": "prod"})])
    assert result["instances"][0]["actions"] == ["cordon", "replace", "drain"]
    assert result["kubernetes"][0]["eks_cluster_name"] == "prod"
    assert result["kubernetes"][0]["kubeconfig"] is None


@pytest.mark.parametrize("kind", ["rebalance", "scheduled_change"])
def test_opt_in_kinds_act_only_when_the_group_opts_in(kind):
    skipped = plan([event(kind, I1)], [instance(I1)], [full_group()])
    assert skipped["instances"] == []
    assert skipped["skipped"] == [
        {
            "instance_id": I1,
            "kind": kind,
            "reason": "group 'web' does not opt in: spotmax:is_to_handle_rebalance_event is false",
        }
    ]
    assert skipped["receipt_handles"] == ["rh-1"]
    assert skipped["handled_tags"] == {}
    acted = plan([event(kind, I1)], [instance(I1)], [full_group(**{"spotmax:is_to_handle_rebalance_event": "true"})])
    assert acted["instances"][0]["actions"] == ["replace", "drain", "deregister", "retire"]
    assert acted["retire"] == [I1] and acted["replace"] == [I1]
    assert acted["kubernetes"][0]["cordon"] == [] and acted["kubernetes"][0]["drain"] == [I1]


def test_lifecycle_terminate_completes_with_the_heartbeat_timeout_and_deadline():
    hooks = {"web": [{"LifecycleHookName": "drain", "HeartbeatTimeout": 300}, {"LifecycleHookName": "other"}]}
    result = plan([lifecycle_event(I1)], [instance(I1)], [full_group()], hooks)
    entry = result["instances"][0]
    assert entry["actions"] == ["drain", "deregister", "complete_lifecycle"]
    # Heartbeats keep the action alive past 300 s: the deadline is the global timeout, 100 x 300 s.
    assert entry["deadline"] == "2026-11-21T22:25:06Z"
    assert result["lifecycle"] == [
        {"instance_id": I1, "group": "web", "hook_name": "drain", "token": "tok-1", "heartbeat_timeout": 300}
    ]
    assert result["replace"] == []


@pytest.mark.parametrize(
    ("hook", "deadline"),
    [
        ({"HeartbeatTimeout": 30, "GlobalTimeout": 600}, "2026-11-21T14:15:06Z"),
        ({"HeartbeatTimeout": 7200}, "2026-11-23T14:05:06Z"),  # 100 x 2 h is capped at 48 h
    ],
)
def test_lifecycle_deadline_is_the_hooks_global_timeout(hook, deadline):
    hooks = {"web": [{"LifecycleHookName": "drain", **hook}]}
    result = plan([lifecycle_event(I1)], [instance(I1)], [full_group()], hooks)
    assert result["instances"][0]["deadline"] == deadline
    assert result["lifecycle"][0]["heartbeat_timeout"] == hook["HeartbeatTimeout"]


def test_lifecycle_hook_not_found_leaves_timeout_and_deadline_null():
    result = plan([lifecycle_event(I1)], [instance(I1)], [full_group()], {"web": []})
    assert result["lifecycle"][0]["heartbeat_timeout"] is None
    assert result["instances"][0]["deadline"] is None


@pytest.mark.parametrize("state", ["stopping", "stopped", "shutting-down", "terminated"])
def test_state_change_to_a_gone_state_cleans_up_through_the_catalog(state):
    result = plan([event("state_change", I1, state=state)], [instance(I1, state=state)], [full_group()])
    assert result["instances"][0]["actions"] == ["deregister", "cleanup"]
    assert result["kubernetes"][0]["cleanup"] == [I1]
    assert result["kubernetes"][0]["drain"] == []
    assert result["consul"][0]["mode"] == "catalog"
    # A terminated instance cannot carry the handled tag any more.
    assert (I1 in result["handled_tags"]) is (state != "terminated")


@pytest.mark.parametrize("state", ["pending", "running"])
def test_state_change_to_running_is_skipped_without_reading(state):
    result = plan([event("state_change", I1, state=state)], [], [])
    assert result["skipped"] == [
        {"instance_id": I1, "kind": "state_change", "reason": f"the instance is {state}: not an interruption"}
    ]
    assert result["receipt_handles"] == ["rh-1"]


def test_skips_unknown_unmanaged_handled_and_groupless_instances():
    events = [
        event("spot_interruption", I1, "rh-1"),
        event("spot_interruption", I2, "rh-2"),
        event("spot_interruption", I3, "rh-3"),
        event("spot_interruption", I4, "rh-4"),
    ]
    instances = [
        instance(I2, managed=False),
        instance(I3, handled="rebalance spot_interruption"),
        instance(I4, group=None),
    ]
    result = plan(events, instances, [full_group()])
    assert [(s["instance_id"], s["reason"]) for s in result["skipped"]] == [
        (I1, "unknown to EC2 (gone or never existed)"),
        (I2, "not managed: the instance has no spotmax:group tag"),
        (I3, "already handled: spotmax:interruption_handled lists spot_interruption"),
        (I4, "in no Auto Scaling group (no aws:autoscaling:groupName tag, empty spotmax:group)"),
    ]
    assert result["instances"] == []
    assert result["receipt_handles"] == ["rh-1", "rh-2", "rh-3", "rh-4"]


def test_detached_instance_acts_for_the_group_named_by_its_membership_tag():
    # A run that detached the instance and stopped before tagging it: the next run finishes the work.
    result = plan([event("spot_interruption", I1)], [instance(I1, group=None, member_of="web")], [full_group()])
    assert result["skipped"] == []
    assert [(entry["instance_id"], entry["group"]) for entry in result["instances"]] == [(I1, "web")]
    assert result["replace"] == [I1]
    assert result["handled_tags"] == {I1: "spot_interruption"}


def test_detached_instance_of_a_deleted_group_is_skipped():
    result = plan([event("spot_interruption", I1)], [instance(I1, group=None, member_of="gone")], [full_group()])
    assert result["skipped"][0]["reason"] == "group 'gone' does not exist"


def test_missing_group_is_skipped():
    result = plan([event("spot_interruption", I1)], [instance(I1, group="gone")], [full_group()])
    assert result["skipped"][0]["reason"] == "group 'gone' does not exist"


def test_handled_for_another_kind_still_acts_and_extends_the_tag():
    result = plan([event("spot_interruption", I1)], [instance(I1, handled="rebalance")], [full_group()])
    assert result["instances"][0]["kinds"] == ["spot_interruption"]
    assert result["handled_tags"] == {I1: "spot_interruption rebalance"}


def test_tag_error_and_malformed_event_hold_their_messages_only():
    events = [
        event("spot_interruption", I1, "rh-bad-group"),
        event("spot_interruption", I2, "rh-shared"),
        {"kind": "spot_interruption", "instance_id": "nope", "receipt_handle": "rh-shared"},
        event("spot_interruption", I3, "rh-ok"),
    ]
    instances = [instance(I1, group="broken"), instance(I2), instance(I3)]
    groups = [full_group(), group("broken", **{"spotmax:consul_port": "abc"})]
    result = plan(
        events, instances, groups, ignored=[{"message_id": "m-t", "receipt_handle": "rh-test", "reason": "x"}]
    )
    assert result["errors"] == [
        {
            "instance_id": I1,
            "kind": "spot_interruption",
            "group": "broken",
            "message": "group 'broken' tag spotmax:consul_port: 'abc' is not allowed; use an integer from 1 to 65535",
        },
        {
            "instance_id": "nope",
            "kind": "spot_interruption",
            "group": None,
            "message": "instance_id: 'nope' is not allowed; use an EC2 instance id (i- and 8 to 17 hex digits)",
        },
    ]
    assert result["held"] == ["rh-bad-group", "rh-shared"]
    assert result["receipt_handles"] == ["rh-test", "rh-ok"]
    # The well-formed event of the held message is still handled: its instance is acted on.
    assert [entry["instance_id"] for entry in result["instances"]] == [I2, I3]


def test_events_for_one_instance_are_merged():
    hooks = {"web": [{"LifecycleHookName": "drain", "HeartbeatTimeout": 3600}]}
    events = [
        event("rebalance", I1, "rh-1"),
        event("spot_interruption", I1, "rh-2", deadline="2026-11-21T14:07:06Z"),
        lifecycle_event(I1, "rh-3"),
        event("spot_interruption", I1, "rh-4", deadline="2026-11-21T14:09:00Z"),
    ]
    groups = [full_group(**{"spotmax:is_to_handle_rebalance_event": "yes"})]
    result = plan(events, [instance(I1)], groups, hooks)
    assert len(result["instances"]) == 1
    entry = result["instances"][0]
    assert entry["kinds"] == ["rebalance", "spot_interruption", "lifecycle_terminate"]
    assert entry["actions"] == ["cordon", "replace", "drain", "deregister", "retire", "complete_lifecycle"]
    assert entry["deadline"] == "2026-11-21T14:07:06Z"
    assert result["lifecycle"][0]["token"] == "tok-1"
    assert result["handled_tags"] == {I1: "spot_interruption rebalance lifecycle_terminate"}
    assert result["groups"] == {"web": {"rebalance": 1, "spot_interruption": 1, "lifecycle_terminate": 1}}
    assert result["receipt_handles"] == ["rh-1", "rh-2", "rh-3", "rh-4"]
    assert len(result["kubernetes"]) == 1 and result["kubernetes"][0]["cordon"] == [I1]


def test_replaced_instances_of_a_group_keeping_a_volume_hand_it_over():
    keeping = full_group(**{"spotmax:persistence_dev": "/dev/sdf", "spotmax:is_to_handle_rebalance_event": "true"})
    events = [
        event("spot_interruption", I1, "rh-1"),
        event("rebalance", I2, "rh-2"),
        lifecycle_event(I3, "rh-3"),
        event("state_change", I4, "rh-4", state="terminated"),
    ]
    instances = [instance(I1), instance(I2), instance(I3), instance(I4, state="terminated")]
    result = plan(events, instances, [keeping], {"web": [{"LifecycleHookName": "drain", "HeartbeatTimeout": 60}]})
    by_id = {entry["instance_id"]: entry for entry in result["instances"]}
    assert by_id[I1]["actions"] == ["cordon", "replace", "drain", "deregister", "handover"]
    assert by_id[I2]["actions"] == ["replace", "drain", "deregister", "handover", "retire"]
    # A lifecycle action may be a scale-in (no replacement comes) and a state change has no replacement
    # of ours: their volumes are left as the instance's mapping says.
    assert "handover" not in by_id[I3]["actions"] and "handover" not in by_id[I4]["actions"]
    assert {entry["persistence_dev"] for entry in result["instances"]} == {"/dev/sdf"}
    assert result["handover"] == [
        {"instance_id": I1, "group": "web", "device_name": "/dev/sdf"},
        {"instance_id": I2, "group": "web", "device_name": "/dev/sdf"},
    ]
    assert result["errors"] == []


def test_a_renewed_instance_of_a_group_keeping_a_volume_hands_it_over_before_it_is_retired():
    keeping = full_group(**{"spotmax:persistence_dev": "/dev/xvdg"})
    result = plan([event("renewal", I1, None)], [instance(I1)], [keeping])
    assert result["instances"][0]["actions"] == ["cordon", "drain", "deregister", "handover"]
    assert result["handover"] == [{"instance_id": I1, "group": "web", "device_name": "/dev/xvdg"}]


def test_groups_without_a_kept_volume_hand_nothing_over():
    result = plan([event("spot_interruption", I1)], [instance(I1)], [full_group()])
    assert result["instances"][0]["persistence_dev"] is None
    assert "handover" not in result["instances"][0]["actions"]
    assert result["handover"] == []


def test_a_kept_volume_device_that_is_not_allowed_holds_the_message():
    broken = full_group(**{"spotmax:persistence_dev": "/dev/sda1"})
    events = [event("spot_interruption", I1, "rh-1"), lifecycle_event(I2, "rh-2")]
    result = plan(events, [instance(I1), instance(I2)], [broken])
    assert result["errors"] == [
        {
            "instance_id": I1,
            "kind": "spot_interruption",
            "group": "web",
            "message": "group 'web' tag spotmax:persistence_dev: '/dev/sda1' is not allowed; "
            "use a device name /dev/sd[f-p] or /dev/xvd[f-p] (for example /dev/sdf)",
        }
    ]
    assert result["held"] == ["rh-1"]
    # The device matters only to a handover: the lifecycle action is handled as usual.
    assert [entry["instance_id"] for entry in result["instances"]] == [I2]
    assert result["receipt_handles"] == ["rh-2"]
    assert result["handover"] == []


def test_kubernetes_and_consul_entries_split_by_connection_and_timings():
    events = [event("spot_interruption", i, f"rh-{n}") for n, i in enumerate((I1, I2, I3, I4))]
    instances = [instance(I1, "a"), instance(I2, "b"), instance(I3, "c"), instance(I4, "d", ip=None)]
    groups = [
        group("a", **K8S, **CONSUL),
        group("b", **K8S, **CONSUL),  # same connection and timings as a: same entries
        group("c", **{"spotmax:k8s_config_file_path": "/other", "spotmax:consul_port": "8501"}),
        group("d", **K8S, **CONSUL, **{"spotmax:k8s_node_drain_grace_second": "60"}),
    ]
    result = plan(events, instances, groups)
    assert [(k["kubeconfig"], k["grace_seconds"], k["drain"]) for k in result["kubernetes"]] == [
        ("/etc/k8s", 300, [I1, I2]),
        ("/etc/k8s", 60, [I4]),
        ("/other", 300, [I3]),
    ]
    assert [(c["agent_port"], [i["instance_id"] for i in c["instances"]]) for c in result["consul"]] == [
        (8500, [I1, I2]),
        (8501, [I3]),
    ]
    # I4 has no private IP: no Consul node can be found for it.
    assert "deregister" not in result["instances"][3]["actions"]
    assert result["groups"] == {name: {"spot_interruption": 1} for name in "abcd"}


def test_kubernetes_deadline_is_the_earliest_and_null_when_unknown():
    events = [
        event("spot_interruption", I1, deadline="2026-11-21T14:09:00Z"),
        event("spot_interruption", I2, deadline="2026-11-21T14:07:00+00:00"),
        event("spot_interruption", I3),
    ]
    result = plan(events, [instance(I1), instance(I2), instance(I3)], [full_group()])
    assert result["kubernetes"][0]["deadline"] == "2026-11-21T14:07:00Z"
    assert result["instances"][2]["deadline"] is None
    none = plan([event("spot_interruption", I3)], [instance(I3)], [full_group()])
    assert none["kubernetes"][0]["deadline"] is None


def test_standalone_events_acknowledge_nothing():
    result = plan(interruption.standalone_events([I1], "spot_interruption"), [instance(I1)], [full_group()])
    assert result["instances"][0]["actions"] == ["cordon", "replace", "drain", "deregister"]
    assert result["receipt_handles"] == [] and result["held"] == []


def test_handled_value_orders_kinds():
    assert interruption.handled_value(["state_change", "custom"], ["spot_interruption"]) == (
        "spot_interruption state_change custom"
    )


def test_a_held_handle_is_never_acknowledged_even_when_also_ignored():
    events = [{"kind": "spot_interruption", "instance_id": "bad", "receipt_handle": "rh-1"}]
    result = plan(events, [], [], ignored=[{"message_id": "m", "receipt_handle": "rh-1", "reason": "duplicate"}])
    assert result["held"] == ["rh-1"]
    assert result["receipt_handles"] == []
