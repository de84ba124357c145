# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ec2_volume_handover against moto's in-process AWS: mappings, tags and attachments after the run."""

from __future__ import annotations

import pytest

from ansible_collections.spotmax.maxgroup.plugins.modules import ec2_volume_handover

GROUP = "web-data"
DATA = {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "DeleteOnTermination": True}}


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(ec2_volume_handover, args, **kwargs)


def members(aws):
    group = aws["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return sorted(instance["InstanceId"] for instance in group["Instances"])


def instance(aws, instance_id):
    return aws["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def data_mapping(aws, instance_id):
    found = [m for m in instance(aws, instance_id)["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf"]
    return found[0] if found else None


def volume(aws, volume_id):
    return aws["ec2"].describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def attachments(aws, volume_id):
    return {(a["InstanceId"], a["Device"]) for a in volume(aws, volume_id)["Attachments"]}


def stop_creating_volumes(aws):
    """The group's new instances get no volume of their own at /dev/sdf (the kept one moves to them)."""
    image = aws["ec2"].describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    aws["ec2"].create_launch_template_version(
        LaunchTemplateName=GROUP, LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"}
    )
    aws["ec2"].modify_launch_template(LaunchTemplateName=GROUP, DefaultVersion="2")  # what moto launches from


def replace(aws, instance_ids):
    """What asg_replace_instances does: detach without decrement, so the group launches replacements."""
    aws["autoscaling"].detach_instances(
        AutoScalingGroupName=GROUP, InstanceIds=instance_ids, ShouldDecrementDesiredCapacity=False
    )


@pytest.fixture(name="fleet")
def fleet_fixture(aws, make_group):
    """web-data (us-east-1a) with 2 instances, each with its own /dev/sdf volume (DeleteOnTermination true)."""
    make_group(
        GROUP,
        {"BlockDeviceMappings": [DATA]},
        DesiredCapacity=2,
        Tags=[{"Key": "spotmax:persistence_dev", "Value": "/dev/sdf", "PropagateAtLaunch": True}],
    )
    stop_creating_volumes(aws)
    return members(aws)


def entries(instance_ids):
    return [
        {"instance_id": instance_id, "group": GROUP, "kinds": ["spot_interruption"]} for instance_id in instance_ids
    ]


def test_protect_keeps_the_volume_and_a_second_run_changes_nothing(aws, run, fleet):
    retiring = fleet[:1]
    volume_id = data_mapping(aws, retiring[0])["Ebs"]["VolumeId"]
    result = run({"step": "protect", "instances": entries(retiring)}, diff=True)
    assert result["changed"] is True
    assert data_mapping(aws, retiring[0])["Ebs"]["DeleteOnTermination"] is False
    assert data_mapping(aws, fleet[1])["Ebs"]["DeleteOnTermination"] is True
    assert {"Key": "spotmax:handover_from", "Value": retiring[0]} in volume(aws, volume_id)["Tags"]
    assert result["volume_handover"]["volumes"] == [
        {
            "volume_id": volume_id,
            "from_instance": retiring[0],
            "to_instance": None,
            "group": GROUP,
            "availability_zone": "us-east-1a",
            "device_name": "/dev/sdf",
            "state": "protected",
        }
    ]
    assert result["diff"]["before"][volume_id] == {"delete_on_termination": True, "handover_from": None}
    assert result["diff"]["after"][volume_id] == {"delete_on_termination": False, "handover_from": retiring[0]}
    again = run({"step": "protect", "instances": entries(retiring)})
    assert again["changed"] is False
    assert again["volume_handover"]["volumes"][0]["state"] == "unchanged"


def test_protect_in_check_mode_writes_nothing(aws, run, fleet):
    result = run({"step": "protect", "instances": entries(fleet[:1]), "device_name": "/dev/sdf"}, check_mode=True)
    assert result["changed"] is True
    mapping = data_mapping(aws, fleet[0])
    assert mapping["Ebs"]["DeleteOnTermination"] is True
    assert not volume(aws, mapping["Ebs"]["VolumeId"]).get("Tags")


def test_protected_volume_survives_termination(aws, run, fleet):
    volume_id = data_mapping(aws, fleet[0])["Ebs"]["VolumeId"]
    run({"step": "protect", "instances": entries(fleet[:1])})
    aws["ec2"].terminate_instances(InstanceIds=fleet[:1])
    assert volume(aws, volume_id)["State"] == "available"


def test_handover_moves_the_volume_to_the_replacement(aws, run, fleet):
    retiring = fleet[:1]
    volume_id = data_mapping(aws, retiring[0])["Ebs"]["VolumeId"]
    run({"step": "protect", "instances": entries(retiring)})
    replace(aws, retiring)
    new = sorted(set(members(aws)) - set(fleet))
    assert len(new) == 1
    result = run({"step": "handover", "instances": entries(retiring), "wait_timeout": 10}, diff=True)
    assert result["changed"] is True, result
    assert attachments(aws, volume_id) == {(new[0], "/dev/sdf")}
    assert data_mapping(aws, retiring[0]) is None
    assert instance(aws, new[0])["Placement"]["AvailabilityZone"] == volume(aws, volume_id)["AvailabilityZone"]
    assert result["volume_handover"]["volumes"] == [
        {
            "volume_id": volume_id,
            "from_instance": retiring[0],
            "to_instance": new[0],
            "group": GROUP,
            "availability_zone": "us-east-1a",
            "device_name": "/dev/sdf",
            "state": "attached",
        }
    ]
    assert result["volume_handover"]["pending"] is False
    assert result["diff"]["before"] == {volume_id: {"instance_id": retiring[0], "device_name": "/dev/sdf"}}
    assert result["diff"]["after"] == {volume_id: {"instance_id": new[0], "device_name": "/dev/sdf"}}

    again = run({"step": "handover", "instances": entries(retiring), "wait_timeout": 10})
    assert again["changed"] is False
    assert again["volume_handover"]["volumes"][0]["state"] == "unchanged"
    assert again["volume_handover"]["volumes"][0]["to_instance"] == new[0]
    assert attachments(aws, volume_id) == {(new[0], "/dev/sdf")}


def test_handover_in_check_mode_writes_nothing(aws, run, fleet):
    retiring = fleet[:1]
    volume_id = data_mapping(aws, retiring[0])["Ebs"]["VolumeId"]
    replace(aws, retiring)
    new = sorted(set(members(aws)) - set(fleet))
    result = run({"step": "handover", "instances": entries(retiring)}, check_mode=True)
    assert result["changed"] is True
    assert result["volume_handover"]["volumes"][0]["to_instance"] == new[0]
    assert attachments(aws, volume_id) == {(retiring[0], "/dev/sdf")}
    assert not volume(aws, volume_id).get("Tags")


def test_two_retiring_instances_get_two_replacements(aws, run, fleet):
    volume_ids = {data_mapping(aws, i)["Ebs"]["VolumeId"] for i in fleet}
    run({"step": "protect", "instances": entries(fleet)})
    replace(aws, fleet)
    new = set(members(aws)) - set(fleet)
    assert len(new) == 2
    result = run({"step": "handover", "instances": entries(fleet), "wait_timeout": 10})
    assert result["changed"] is True
    holders = {instance_id for volume_id in volume_ids for instance_id, _device in attachments(aws, volume_id)}
    assert holders == new
    assert {item["to_instance"] for item in result["volume_handover"]["volumes"]} == new


def test_group_found_through_auto_scaling_and_device_given(aws, run, fleet):
    """Without group: the instance is still in its group (Auto Scaling's view names it)."""
    volume_id = data_mapping(aws, fleet[0])["Ebs"]["VolumeId"]
    result = run({"step": "protect", "instances": [{"instance_id": fleet[0]}], "device_name": "/dev/xvdf"})
    assert result["volume_handover"]["volumes"][0]["group"] == GROUP
    assert result["volume_handover"]["volumes"][0]["volume_id"] == volume_id
    assert data_mapping(aws, fleet[0])["Ebs"]["DeleteOnTermination"] is False


def test_without_a_replacement_the_volume_is_reported_and_kept(aws, run, fleet):
    """The retiring instance is not replaced (still in the group, no new member): nothing can receive the volume."""
    retiring = fleet[:1]
    volume_id = data_mapping(aws, retiring[0])["Ebs"]["VolumeId"]
    result = run({"step": "handover", "instances": entries(retiring), "wait_timeout": 1})
    assert result["failed"] is True
    assert volume_id in result["msg"]
    assert result["msg"].startswith("1 volume(s) not handed over within wait_timeout (1 s)")
    assert result["volume_handover"]["pending"] is True
    assert result["volume_handover"]["volumes"][0]["state"] == "pending"
    kept = volume(aws, volume_id)
    assert kept["State"] == "available"
    assert {"Key": "spotmax:handover_from", "Value": retiring[0]} in kept["Tags"]

    reported = run({"step": "handover", "instances": entries(retiring), "wait_timeout": 0, "allow_pending": True})
    assert reported.get("failed") is not True
    assert reported["changed"] is False
    assert reported["volume_handover"]["pending"] is True

    replace(aws, retiring)  # a replacement appears: a later run attaches the kept volume
    new = sorted(set(members(aws)) - set(fleet))
    done = run({"step": "handover", "instances": entries(retiring), "wait_timeout": 5})
    assert done["changed"] is True
    assert attachments(aws, volume_id) == {(new[0], "/dev/sdf")}


def test_replacement_with_its_own_volume_at_the_device_is_not_chosen(aws, run, make_group):
    make_group(GROUP, {"BlockDeviceMappings": [DATA]}, DesiredCapacity=1)
    retiring = members(aws)
    volume_id = data_mapping(aws, retiring[0])["Ebs"]["VolumeId"]
    replace(aws, retiring)
    result = run(
        {
            "step": "handover",
            "instances": entries(retiring),
            "device_name": "/dev/sdf",
            "wait_timeout": 0,
            "allow_pending": True,
        }
    )
    assert result["volume_handover"]["volumes"][0]["state"] == "pending"
    assert volume(aws, volume_id)["State"] == "available"


def test_groups_without_the_tag_are_skipped(aws, run, make_group):
    make_group(GROUP, {"BlockDeviceMappings": [DATA]}, DesiredCapacity=1)
    retiring = members(aws)
    result = run({"step": "protect", "instances": entries(retiring)})
    assert result["changed"] is False
    assert result["volume_handover"]["skipped"] == [
        {
            "instance_id": retiring[0],
            "volume_id": None,
            "reason": f"group '{GROUP}' keeps no volume (no spotmax:persistence_dev tag)",
        }
    ]
    assert data_mapping(aws, retiring[0])["Ebs"]["DeleteOnTermination"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"instances": [{"instance_id": "web-1"}]},
            "instances[0].instance_id: 'web-1' is not allowed; use an EC2 instance id",
        ),
        ({"instances": [{"group": "web"}]}, "instances[0].instance_id: None is not allowed"),
        (
            {"device_name": "/dev/sda1"},
            "device_name: '/dev/sda1' is not allowed; use a device name /dev/sd[f-p] or /dev/xvd[f-p]",
        ),
        (
            {"instances": [{"instance_id": "i-0123456789abcdef0", "device_name": "/dev/nvme1n1"}]},
            "instances[0].device_name: '/dev/nvme1n1' is not allowed",
        ),
        ({"wait_timeout": 3601}, "wait_timeout: 3601 is not allowed; use an integer from 0 to 3600"),
        ({"concurrency": 0}, "concurrency: 0 is not allowed; use an integer from 1 to 20"),
    ],
)
def test_wrong_input_fails_before_any_call(aws, run, args, message):
    result = run({"step": "handover", "instances": [{"instance_id": "i-0123456789abcdef0"}], **args})
    assert result["failed"] is True
    assert message in result["msg"]


def test_bad_group_tag_is_named(aws, run, make_group):
    make_group(GROUP, DesiredCapacity=1, Tags=[{"Key": "spotmax:persistence_dev", "Value": "/dev/sda1"}])
    result = run({"step": "protect", "instances": entries(members(aws))})
    assert result["failed"] is True
    assert result["msg"] == (
        f"group '{GROUP}' tag spotmax:persistence_dev: '/dev/sda1' is not allowed; "
        "use a device name /dev/sd[f-p] or /dev/xvd[f-p] (for example /dev/sdf)"
    )
