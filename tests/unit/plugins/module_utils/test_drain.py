# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import drain

NOW = "2024-05-01T12:00:00Z"
TAINT = drain.Taint(**drain.DEFAULT_TAINT)


def node(name, provider_id=None, unschedulable=False, taints=None, version="7"):
    spec = {"providerID": provider_id} if provider_id else {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints is not None:
        spec["taints"] = taints
    return {"metadata": {"name": name, "resourceVersion": version}, "spec": spec}


def pod(name, namespace="default", owner="ReplicaSet", phase="Running", **extra):
    meta = {"name": name, "namespace": namespace, "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "x", "controller": True}]
    meta.update(extra.pop("metadata", {}))
    return {"metadata": meta, "spec": extra.pop("spec", {}), "status": {"phase": phase}}


# -- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instance_ids": [], "node_names": []}, "instance_ids, node_names: both are empty"),
        ({"instance_ids": ["i-123"]}, "instance_ids[0]: 'i-123' is not allowed; use an EC2 instance id"),
        ({"node_names": ["ok", "Bad_Name"]}, "node_names[1]: 'Bad_Name' is not allowed; use a Kubernetes node name"),
        ({"state": "gone"}, "state: 'gone' is not allowed; use drained or cordoned or absent"),
        ({"taint": {"effect": "NoRun"}}, "taint.effect: 'NoRun' is not allowed; use NoSchedule or PreferNoSchedule"),
        ({"taint": {"key": "bad key"}}, "taint.key: 'bad key' is not allowed"),
        ({"taint": {"value": "x" * 64}}, "taint.value: '" + "x" * 64 + "' is not allowed"),
        ({"delay_seconds": -1}, "delay_seconds: -1 is not allowed; use a number of seconds >= 0"),
        ({"drain_timeout": 0}, "drain_timeout: 0 is not allowed; use a number of seconds > 0"),
        ({"deadline": "soon"}, "deadline: 'soon' is not allowed; use an ISO 8601 UTC timestamp"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed; use 1 to 200 threads"),
        ({"concurrency": 201}, "concurrency: 201 is not allowed"),
        ({"delete_options": {"terminate_grace_period": -5}}, "delete_options.terminate_grace_period: -5 is not"),
        ({"delete_options": {"wait_timeout": 0}}, "delete_options.wait_timeout: 0 is not allowed"),
        ({"delete_options": {"wait_sleep": 0}}, "delete_options.wait_sleep: 0 is not allowed"),
    ],
)
def test_validation_names_field_value_and_what_is_allowed(kwargs, message):
    arguments = {"instance_ids": ["i-0123456789abcdef0"], "node_names": None, **kwargs}
    with pytest.raises(drain.DrainValidationError) as info:
        drain.validate_request(**arguments)
    assert message in str(info.value)


def test_valid_request_with_defaults():
    request = drain.validate_request(["i-0123456789abcdef0", "i-0123456789abcdef0"], None)
    assert request.instance_ids == ("i-0123456789abcdef0",)
    assert request.taint == TAINT
    assert request.delete == drain.DeleteOptions()
    request = drain.validate_request(None, ["n1"], add_taint=False, deadline="2024-05-01T12:02:00Z")
    assert request.taint is None
    assert request.deadline == drain.parse_deadline("2024-05-01T12:02:00+00:00")


def test_deadline_without_offset_is_utc():
    assert drain.parse_deadline("2024-05-01T12:02:00") == drain.parse_deadline("2024-05-01T14:02:00+02:00")
    assert drain.parse_deadline("2024-05-01T12:02:00Z") - drain.parse_deadline("2024-05-01T12:00:00Z") == 120


# -- nodes ------------------------------------------------------------------------------------
def test_instance_id_from_provider_id():
    assert drain.instance_id("aws:///us-east-1a/i-0123456789abcdef0") == "i-0123456789abcdef0"
    assert drain.instance_id("aws:///us-east-1a/i-01234567") == "i-01234567"
    assert drain.instance_id("gce://project/zone/i-0123456789abcdef0") is None
    assert drain.instance_id("aws:///us-east-1a/fargate-ip-10-0-0-1") is None
    assert drain.instance_id(None) is None


def test_select_nodes_by_instance_and_name_once_each():
    nodes = [
        node("a", "aws:///us-east-1a/i-0000000000000000a"),
        node("b", "aws:///us-east-1b/i-0000000000000000b"),
        node("c"),
    ]
    selected, missing = drain.select_nodes(
        nodes, ["i-0000000000000000b", "i-0000000000000000f", "i-0000000000000000a"], ["a", "c", "zz"]
    )
    assert [drain.node_name(n) for n in selected] == ["b", "a", "c"]
    assert missing == ["i-0000000000000000f", "zz"]


def test_cordon_patch_cordons_and_adds_the_taint_guarded_by_version():
    other = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    patch = drain.cordon_patch(node("a", taints=[other]), TAINT, NOW)
    assert patch == [
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/spec/unschedulable", "value": True},
        {"op": "add", "path": "/spec/taints", "value": [other, TAINT.describe()]},
    ]
    after = drain.apply_cordon(node("a", taints=[other]), patch)
    assert drain.node_view(after, None) == {"unschedulable": True, "taints": [other, TAINT.describe()]}
    assert drain.has_taint(after, TAINT)


def test_cordon_patch_is_none_when_already_done():
    done = node("a", unschedulable=True, taints=[TAINT.describe()])
    assert drain.cordon_patch(done, TAINT, NOW) is None
    assert drain.cordon_patch(node("a", unschedulable=True), None, NOW) is None


def test_taint_with_same_key_and_effect_gets_the_new_value_and_noexecute_a_time():
    old = {"key": TAINT.key, "value": "rebalance", "effect": "NoSchedule"}
    assert drain.merge_taint([old], TAINT, NOW) == [TAINT.describe()]
    execute = drain.Taint(TAINT.key, "spot", "NoExecute")
    assert drain.merge_taint([old], execute, NOW) == [old, {**execute.describe(), "timeAdded": NOW}]
    assert not drain.has_taint(node("a", taints=[old]), TAINT)


# -- pods -------------------------------------------------------------------------------------
def test_classify_pods_like_kubectl_drain():
    pods = [
        pod("web-1"),
        pod("ds-1", namespace="kube-system", owner="DaemonSet"),
        pod("static", metadata={"annotations": {drain.MIRROR_ANNOTATION: "abc"}}, owner="Node"),
        pod("job-done", owner="Job", phase="Succeeded"),
        pod("leaving", metadata={"deletionTimestamp": NOW}),
        pod("bare", owner=None),
        pod("cache", spec={"volumes": [{"name": "tmp", "emptyDir": {}}]}),
    ]
    plan = drain.classify_pods(pods, drain.DeleteOptions())
    assert [drain.pod_ref(p) for p in plan.evict] == ["default/web-1"]
    assert [b["pod"] for b in plan.blocked] == ["default/bare", "default/cache"]
    assert "delete_options.force" in plan.blocked[0]["reason"]
    assert "delete_options.delete_emptydir_data" in plan.blocked[1]["reason"]

    everything = drain.DeleteOptions(force=True, ignore_daemonsets=False, delete_emptydir_data=True)
    plan = drain.classify_pods(pods, everything)
    assert [drain.pod_ref(p) for p in plan.evict] == ["default/bare", "default/cache", "default/web-1"]
    assert plan.blocked == [
        {
            "pod": "kube-system/ds-1",
            "reason": "managed by a DaemonSet (set delete_options.ignore_daemonsets=true to leave it)",
        }
    ]


def test_pods_to_delete_keeps_daemonset_pods():
    pods = [pod("web-1"), pod("ds-1", owner="DaemonSet"), pod("bare", owner=None)]
    assert [drain.pod_ref(p) for p in drain.pods_to_delete(pods)] == ["default/bare", "default/web-1"]


def test_grace_period_is_capped_and_eviction_targets_the_uid():
    slow = pod("slow", spec={"terminationGracePeriodSeconds": 300})
    assert drain.grace_seconds(slow, None) is None
    assert drain.grace_seconds(slow, 60) == 60
    assert drain.grace_seconds(pod("quick", spec={"terminationGracePeriodSeconds": 5}), 60) == 5
    assert drain.grace_seconds(pod("default"), 60) == 30
    assert drain.eviction_body(slow, 60) == {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "slow", "namespace": "default"},
        "deleteOptions": {"preconditions": {"uid": "uid-slow"}, "gracePeriodSeconds": 60},
    }


# -- time -------------------------------------------------------------------------------------
def test_stop_time_is_the_earlier_of_timeout_and_deadline():
    assert drain.stop_time(100.0, 1000.0, 90.0, None) == 190.0
    assert drain.stop_time(100.0, 1000.0, 90.0, 1030.0) == 130.0
    assert drain.stop_time(100.0, 1000.0, 90.0, 2000.0) == 190.0
    assert drain.stop_time(100.0, 1000.0, 90.0, 900.0) == 100.0  # already past: no retries


def test_delay_never_goes_past_the_stop_time():
    assert drain.eviction_start(10.0, 5.0, 100.0) == 15.0
    assert drain.eviction_start(10.0, 500.0, 100.0) == 100.0
    assert drain.eviction_start(10.0, 5.0, 8.0) == 10.0


def test_next_retry_is_bounded_by_the_stop_time():
    assert drain.next_retry(10.0, 20.0) == drain.RETRY_SECONDS
    assert drain.next_retry(19.5, 20.0) == 0.5
    assert drain.next_retry(20.0, 20.0) is None


# -- result -----------------------------------------------------------------------------------
def test_outcome_diff_and_failure_message():
    kept = drain.NodeOutcome("a", "i-0000000000000000a", before={"unschedulable": False, "taints": []})
    kept.after = {"unschedulable": True, "taints": [TAINT.describe()]}
    kept.evicted = ["default/b", "default/a"]
    gone = drain.NodeOutcome("b", None, before={"unschedulable": False, "taints": []}, deleted=True)
    gone.error = "delete: 403 forbidden"
    assert drain.diff([kept, gone]) == {
        "before": {"a": kept.before, "b": gone.before},
        "after": {"a": kept.after},
    }
    assert kept.describe()["evicted"] == ["default/a", "default/b"]
    assert drain.failure_message([kept]) is None
    assert drain.failure_message([kept, gone]) == "Failed to drain: node b: delete: 403 forbidden"
