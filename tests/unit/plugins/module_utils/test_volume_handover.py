# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import volume_handover as vh

OLD = "i-0000000000000000a"
OLD2 = "i-0000000000000000b"
NEW = "i-1111111111111111a"
NEW2 = "i-1111111111111111b"
GROUP = {"AutoScalingGroupName": "web", "Tags": [{"Key": "spotmax:persistence_dev", "Value": "/dev/sdf"}]}


def ec2_instance(instance_id, zone="us-east-1a", state="running", launched="2026-11-22 07:00:00", devices=()):
    return {
        "InstanceId": instance_id,
        "Placement": {"AvailabilityZone": zone},
        "State": {"Name": state},
        "LaunchTime": launched,
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-root"}}]
        + [
            {"DeviceName": device, "Ebs": {"VolumeId": f"vol-{device[-1]}", "DeleteOnTermination": True}}
            for device in devices
        ],
    }


def retiring(instance_id=OLD, zone="us-east-1a"):
    return {
        "instance_id": instance_id,
        "group": "web",
        "device_name": "/dev/sdf",
        "availability_zone": zone,
        "known": True,
    }


def volume(volume_id, attached_to=None, device="/dev/sdf", state="attached", tag=None, zone="us-east-1a"):
    return {
        "VolumeId": volume_id,
        "AvailabilityZone": zone,
        "State": "in-use" if attached_to else "available",
        "Attachments": [{"InstanceId": attached_to, "Device": device, "State": state}] if attached_to else [],
        "Tags": [{"Key": vh.FROM_TAG, "Value": tag}] if tag else [],
    }


@pytest.mark.parametrize("device", ["/dev/sdf", "/dev/sdp", "/dev/xvdf", "/dev/xvdk"])
def test_allowed_devices(device):
    assert vh.device_error("device_name", device) is None


@pytest.mark.parametrize("device", ["/dev/sda1", "/dev/sdq", "/dev/nvme1n1", "sdf", "/dev/xvda", 5])
def test_other_devices_are_refused_naming_field_and_value(device):
    message = vh.device_error("device_name", device)
    assert message == f"device_name: {device!r} is not allowed; use {vh.DEVICE_HINT}"


def test_sd_and_xvd_names_are_the_same_slot():
    assert vh.same_device("/dev/sdf", "/dev/xvdf")
    assert not vh.same_device("/dev/sdf", "/dev/sdg")
    assert not vh.same_device("/dev/sda1", "/dev/sdf")


def test_instances_keep_order_ignore_extra_keys_and_merge_duplicates():
    given = [{"instance_id": OLD2, "group": "web", "kinds": ["spot_interruption"]}, {"instance_id": OLD}, OLD]
    assert vh.retiring_instances(given, None) == [
        {"instance_id": OLD2, "group": "web", "device_name": None},
        {"instance_id": OLD, "group": None, "device_name": None},
    ]


@pytest.mark.parametrize(
    ("instances", "device", "message"),
    [
        ([{"instance_id": "i-123"}], None, "instances[0].instance_id: 'i-123' is not allowed; use an EC2 instance id"),
        ([{"id": OLD}], None, "instances[0].instance_id: None is not allowed"),
        ([{"instance_id": OLD, "group": ""}], None, "instances[0].group: '' is not allowed"),
        (
            [{"instance_id": OLD, "device_name": "/dev/sda"}],
            None,
            "instances[0].device_name: '/dev/sda' is not allowed",
        ),
        (
            [{"instance_id": OLD}, {"instance_id": OLD, "group": "x"}],
            None,
            "instances[1].instance_id: '" + OLD + "' is given twice",
        ),
        ([7], None, "instances[0]: 7 is not allowed; use a dict"),
        ([], "/dev/sda1", "device_name: '/dev/sda1' is not allowed"),
    ],
)
def test_bad_instances_name_the_field(instances, device, message):
    with pytest.raises(vh.HandoverError) as caught:
        vh.retiring_instances(instances, device)
    assert message in str(caught.value)


def test_group_device_reads_the_tag_and_refuses_a_bad_value():
    assert vh.group_device(GROUP) == "/dev/sdf"
    assert vh.group_device({"AutoScalingGroupName": "web", "Tags": []}) is None
    with pytest.raises(vh.HandoverError, match=r"group 'web' tag spotmax:persistence_dev: '/dev/sda1' is not allowed"):
        vh.group_device({"AutoScalingGroupName": "web", "Tags": [{"Key": vh.DEVICE_TAG, "Value": "/dev/sda1"}]})


def test_resolve_takes_the_given_group_then_auto_scaling_then_the_tag():
    tagged = {**ec2_instance(OLD2), "Tags": [{"Key": "aws:autoscaling:groupName", "Value": "web"}]}
    entries = [
        {"instance_id": OLD, "group": None, "device_name": None},
        {"instance_id": OLD2, "group": None, "device_name": "/dev/xvdg"},
        {"instance_id": NEW, "group": None, "device_name": None},
        {"instance_id": NEW2, "group": "gone", "device_name": None},
    ]
    resolved, skipped = vh.resolve(
        entries, {OLD: "web"}, {OLD: ec2_instance(OLD), OLD2: tagged, NEW: ec2_instance(NEW)}, {"web": GROUP}, None
    )
    assert [(r["instance_id"], r["group"], r["device_name"]) for r in resolved] == [
        (OLD, "web", "/dev/sdf"),
        (OLD2, "web", "/dev/xvdg"),
    ]
    assert [(s["instance_id"], s["reason"]) for s in skipped] == [
        (NEW, "no Auto Scaling group known; give instances[].group"),
        (NEW2, "Auto Scaling group 'gone' does not exist"),
    ]


def test_resolve_skips_groups_that_keep_no_volume():
    plain = {"AutoScalingGroupName": "web", "Tags": []}
    resolved, skipped = vh.resolve(
        [{"instance_id": OLD, "group": "web", "device_name": None}], {}, {}, {"web": plain}, None
    )
    assert resolved == []
    assert skipped[0]["reason"] == "group 'web' keeps no volume (no spotmax:persistence_dev tag)"
    resolved, _skipped = vh.resolve(
        [{"instance_id": OLD, "group": "web", "device_name": None}], {}, {}, {"web": plain}, "/dev/sdh"
    )
    assert resolved[0]["device_name"] == "/dev/sdh"


def test_protect_writes_only_what_is_missing():
    instances = {OLD: ec2_instance(OLD, devices=["/dev/sdf"]), OLD2: ec2_instance(OLD2, devices=["/dev/xvdf"])}
    instances[OLD2]["BlockDeviceMappings"][1]["Ebs"].update(DeleteOnTermination=False, VolumeId="vol-f2")
    volumes = {
        "vol-f": {"VolumeId": "vol-f", "Tags": [{"Key": vh.FROM_TAG, "Value": OLD}]},
        "vol-f2": {"VolumeId": "vol-f2", "Tags": [{"Key": vh.FROM_TAG, "Value": NEW}]},
    }
    planned, skipped = vh.protect_plan([retiring(OLD), retiring(OLD2)], instances, volumes)
    assert skipped == []
    assert [
        (p["volume_id"], p["device_name"], p["set_delete_on_termination"], p["set_tag"], p["tag_before"], p["state"])
        for p in planned
    ] == [
        ("vol-f", "/dev/sdf", True, False, OLD, "protected"),
        ("vol-f2", "/dev/xvdf", False, True, NEW, "protected"),
    ]
    instances[OLD]["BlockDeviceMappings"][1]["Ebs"]["DeleteOnTermination"] = False
    again, _skipped = vh.protect_plan([retiring(OLD)], instances, volumes)
    assert again[0]["state"] == "unchanged"


def test_protect_skips_instances_without_the_volume():
    planned, skipped = vh.protect_plan(
        [retiring(OLD), retiring(OLD2)], {OLD: ec2_instance(OLD, devices=["/dev/sdg"])}, {}
    )
    assert planned == []
    assert [s["reason"] for s in skipped] == ["no EBS volume attached at /dev/sdf", "instance not found"]


def test_handover_plan_decides_per_volume():
    resolved = [retiring(OLD), retiring(OLD2)]
    volumes = [
        volume("vol-1", attached_to=OLD),  # still on the retiring instance
        volume("vol-2", tag=OLD2),  # detached, found by its tag
        volume("vol-1", attached_to=OLD),  # found twice (attachment and tag filters)
        volume("vol-root", attached_to=OLD, device="/dev/xvda"),  # not the kept device
        volume("vol-other", tag="i-99999999"),  # another instance's
    ]
    planned, skipped = vh.handover_plan(resolved, volumes, {"web": {NEW}})
    assert skipped == []
    assert [(p["volume_id"], p["from_instance"], p["action"], p["set_tag"]) for p in planned] == [
        ("vol-1", OLD, "detach", True),
        ("vol-2", OLD2, "attach", False),
    ]


def test_handover_plan_counts_a_volume_on_a_member_as_handed_over():
    volumes = [
        volume("vol-1", attached_to=NEW, device="/dev/xvdf", tag=OLD),
        volume("vol-2", attached_to="i-7777777777777777a", tag=OLD2),
    ]
    planned, skipped = vh.handover_plan([retiring(OLD), retiring(OLD2)], volumes, {"web": {NEW}})
    assert [(p["volume_id"], p["action"], p["state"], p["to_instance"]) for p in planned] == [
        ("vol-1", "none", "unchanged", NEW)
    ]
    assert skipped[0]["volume_id"] == "vol-2"
    assert "not a replacement in group 'web'" in skipped[0]["reason"]


def test_a_detaching_volume_is_waited_for_not_detached_again():
    planned, _skipped = vh.handover_plan([retiring(OLD)], [volume("vol-1", attached_to=OLD, state="detaching")], {})
    assert planned[0]["action"] == "attach"


def test_candidates_leave_out_retiring_terminating_and_stopped_instances_oldest_first():
    members = {
        NEW2: {"group": "web", "zone": "us-east-1a", "lifecycle": "InService"},
        NEW: {"group": "web", "zone": "us-east-1a", "lifecycle": "Pending:Wait"},
        OLD: {"group": "web", "zone": "us-east-1a", "lifecycle": "InService"},
        "i-2222222222222222a": {"group": "web", "zone": "us-east-1a", "lifecycle": "Terminating"},
        "i-3333333333333333a": {"group": "web", "zone": "us-east-1a", "lifecycle": "InService"},
    }
    instances = {
        NEW2: ec2_instance(NEW2, launched="2026-11-22 07:00:00"),
        NEW: ec2_instance(NEW, launched="2026-11-22 07:05:00", state="pending"),
        OLD: ec2_instance(OLD),
        "i-2222222222222222a": ec2_instance("i-2222222222222222a"),
        "i-3333333333333333a": ec2_instance("i-3333333333333333a", state="stopping"),
    }
    found = vh.candidates(members, instances, {OLD})
    assert [(c["instance_id"], c["ready"]) for c in found] == [(NEW2, True), (NEW, False)]


def candidate(instance_id, zone="us-east-1a", group="web", ready=True, devices=()):
    return {
        "instance_id": instance_id,
        "group": group,
        "availability_zone": zone,
        "ready": ready,
        "devices": list(devices),
    }


def test_choose_one_volume_per_replacement_in_the_same_group_and_zone():
    to_place = [
        {"volume_id": "vol-1", "group": "web", "availability_zone": "us-east-1a", "device_name": "/dev/sdf"},
        {"volume_id": "vol-2", "group": "web", "availability_zone": "us-east-1a", "device_name": "/dev/sdf"},
        {"volume_id": "vol-3", "group": "web", "availability_zone": "us-east-1b", "device_name": "/dev/sdf"},
        {"volume_id": "vol-4", "group": "api", "availability_zone": "us-east-1a", "device_name": "/dev/sdf"},
    ]
    available = [
        candidate("i-a0000000", devices=["/dev/xvdf"]),  # has something at the slot
        candidate("i-b0000000", ready=False),  # still pending
        candidate("i-c0000000"),
        candidate("i-d0000000", zone="us-east-1b", group="api"),
        candidate("i-e0000000"),
        candidate("i-f0000000"),
    ]
    assert vh.choose(to_place, available, {"i-e0000000"}) == {"vol-1": "i-c0000000", "vol-2": "i-f0000000"}


def test_pending_message_names_volumes_and_timeout():
    waiting = {"volume_id": "vol-1", "from_instance": OLD, "group": "web", "availability_zone": "us-east-1a"}
    message = vh.pending_message([waiting], 30)
    assert message.startswith("1 volume(s) not handed over within wait_timeout (30 s)")
    assert f"vol-1 from {OLD} (group web, zone us-east-1a);" in message
    attaching = vh.pending_message([{**waiting, "to_instance": NEW}], 30)
    assert f"(group web, zone us-east-1a, attaching to {NEW});" in attaching
