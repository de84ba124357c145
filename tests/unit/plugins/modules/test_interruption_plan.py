# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""interruption_plan against moto's in-process AWS: the plan for real instances, groups and hooks."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import interruption_plan

IMAGE = "ami-12c6146b"


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(interruption_plan, args, **kwargs)


def tags(group, **values):
    found = {"spotmax:group": group, **values}
    return [{"Key": k, "Value": v, "PropagateAtLaunch": k == "spotmax:group"} for k, v in found.items()]


def instances_of(aws, name):
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return sorted(instance["InstanceId"] for instance in group["Instances"])


def make_group(aws, name, desired, group_tags):
    aws["autoscaling"].create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": "fleet"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=desired,
        AvailabilityZones=["us-east-1a"],
        Tags=group_tags,
    )


@pytest.fixture(name="fleet")
def fleet_fixture(aws):
    # A known moto image: describe_images would load every default image (slow).
    aws["ec2"].create_launch_template(LaunchTemplateName="fleet", LaunchTemplateData={"ImageId": IMAGE})
    k8s_consul = {"spotmax:k8s_config_file_path": "/etc/k8s", "spotmax:consul_port": "8500"}
    make_group(aws, "web-spot", 3, tags("web-spot", **k8s_consul))
    make_group(aws, "broken", 1, tags("broken", **{"spotmax:consul_port": "abc"}))
    aws["autoscaling"].put_lifecycle_hook(
        AutoScalingGroupName="web-spot",
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=600,
    )
    plain = aws["ec2"].run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return {"web": instances_of(aws, "web-spot"), "broken": instances_of(aws, "broken"), "plain": plain}


def event(kind, instance_id, handle, **extra):
    return {
        "kind": kind,
        "instance_id": instance_id,
        "group": None,
        "time": "2026-11-21T14:05:06Z",
        "deadline": "2026-11-21T14:07:06Z" if kind == "spot_interruption" else None,
        "state": None,
        "lifecycle": None,
        "message_id": f"m-{handle}",
        "receipt_handle": handle,
        **extra,
    }


def test_plan_of_a_mixed_batch(aws, run, fleet):
    web = fleet["web"]
    aws["ec2"].create_tags(
        Resources=[web[2]], Tags=[{"Key": "spotmax:interruption_handled", "Value": "spot_interruption"}]
    )
    lifecycle = {"hook_name": "drain", "token": "tok-1", "group": "web-spot", "transition": "x"}
    events = [
        event("spot_interruption", web[0], "rh-spot"),
        event("lifecycle_terminate", web[1], "rh-life", group="web-spot", lifecycle=lifecycle),
        event("spot_interruption", web[2], "rh-handled"),
        event("rebalance", web[0], "rh-rebalance"),
        event("spot_interruption", fleet["plain"], "rh-plain"),
        event("spot_interruption", "i-0123456789abcdef0", "rh-unknown"),
        event("spot_interruption", fleet["broken"][0], "rh-broken"),
        {"kind": "spot_interruption", "instance_id": "web-1", "receipt_handle": "rh-malformed"},
    ]
    ignored = [{"message_id": "m-test", "receipt_handle": "rh-test", "reason": "autoscaling:TEST_NOTIFICATION"}]
    result = run({"events": events, "ignored": ignored})
    assert result["changed"] is False
    plan = result["plan"]
    assert [(e["instance_id"], e["kinds"], e["actions"]) for e in plan["instances"]] == sorted(
        [
            (web[0], ["spot_interruption"], ["cordon", "replace", "drain", "deregister"]),
            (web[1], ["lifecycle_terminate"], ["drain", "deregister", "complete_lifecycle"]),
        ]
    )
    described = aws["ec2"].describe_instances(InstanceIds=[web[0]])["Reservations"][0]["Instances"][0]
    first = next(e for e in plan["instances"] if e["instance_id"] == web[0])
    assert first["private_ip"] == described["PrivateIpAddress"]
    assert first["availability_zone"] == described["Placement"]["AvailabilityZone"]
    assert first["deadline"] == "2026-11-21T14:07:06Z"
    assert plan["lifecycle"] == [
        {"instance_id": web[1], "group": "web-spot", "hook_name": "drain", "token": "tok-1", "heartbeat_timeout": 600}
    ]
    assert {s["instance_id"]: s["reason"].split(":")[0] for s in plan["skipped"]} == {
        web[2]: "already handled",
        web[0]: "group 'web-spot' does not opt in",
        fleet["plain"]: "not managed",
        "i-0123456789abcdef0": "unknown to EC2 (gone or never existed)",
    }
    assert [(e["instance_id"], e["group"]) for e in plan["errors"]] == [(fleet["broken"][0], "broken"), ("web-1", None)]
    assert "tag spotmax:consul_port: 'abc' is not allowed" in plan["errors"][0]["message"]
    assert plan["held"] == ["rh-broken", "rh-malformed"]
    assert plan["receipt_handles"] == [
        "rh-test",
        "rh-spot",
        "rh-life",
        "rh-handled",
        "rh-rebalance",
        "rh-plain",
        "rh-unknown",
    ]
    assert plan["replace"] == [web[0]]
    assert plan["kubernetes"][0]["drain"] == sorted(web[:2])
    assert plan["kubernetes"][0]["cordon"] == [web[0]]
    assert plan["kubernetes"][0]["deadline"] == "2026-11-21T14:07:06Z"
    assert sorted(i["instance_id"] for i in plan["consul"][0]["instances"]) == sorted(web[:2])
    assert plan["handled_tags"] == {web[0]: "spot_interruption", web[1]: "lifecycle_terminate"}
    assert plan["groups"] == {"web-spot": {"spot_interruption": 1, "lifecycle_terminate": 1}}


def test_check_mode_gives_the_same_plan(run, fleet):
    args = {"instance_ids": fleet["web"][:1]}
    assert run(args, check_mode=True)["plan"] == run(args)["plan"]


def test_standalone_instance_ids(run, fleet):
    result = run({"instance_ids": fleet["web"][:2], "kind": "spot_interruption"})
    plan = result["plan"]
    assert [e["instance_id"] for e in plan["instances"]] == sorted(fleet["web"][:2])
    assert plan["replace"] == sorted(fleet["web"][:2])
    assert plan["receipt_handles"] == [] and plan["held"] == []


def test_standalone_rebalance_follows_the_group_opt_in(run, fleet):
    result = run({"instance_ids": fleet["web"][:1], "kind": "rebalance"})
    assert result["plan"]["instances"] == []
    assert "does not opt in" in result["plan"]["skipped"][0]["reason"]


def test_empty_batch_reads_nothing_and_plans_nothing(run):
    # No AWS mock here: a call would fail.
    result = run({"ignored": [{"message_id": "m", "receipt_handle": "rh", "reason": "duplicate"}]})
    assert result["plan"]["receipt_handles"] == ["rh"]
    assert result["plan"]["instances"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"instance_ids": ["i-0123", "web-1"]}, "instance_ids: 'i-0123', 'web-1' is not allowed; use EC2 instance ids"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed; use an integer >= 1"),
    ],
)
def test_bad_options_fail_before_any_call(run, args, message):
    result = run(args)
    assert result["failed"] is True
    assert result["msg"].startswith(message)
