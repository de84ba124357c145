# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import base64

import pytest

from ansible_collections.spotmax.maxgroup.plugins.module_utils import launch_template as lt

SCRIPT = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
ROOT = {"device_name": "/dev/xvda", "ebs": {"encrypted": True, "volume_size": 30, "volume_type": "gp3", "iops": None}}


def test_wanted_data_maps_amazon_options_to_api_shape():
    data = lt.wanted_data(
        image_id="ami-0123456789abcdef0",
        instance_type="m5.large",
        user_data=SCRIPT,
        mappings=[ROOT, {"device_name": "/dev/sdb", "virtual_name": "ephemeral0", "no_device": None, "ebs": None}],
        security_group_ids=["sg-0b", "sg-0a", "sg-0b"],
        iam_instance_profile="web-node",
        key_name="ops",
    )
    assert data == {
        "ImageId": "ami-0123456789abcdef0",
        "InstanceType": "m5.large",
        "UserData": SCRIPT,
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "VolumeSize": 30, "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
        "SecurityGroupIds": ["sg-0a", "sg-0b"],
        "IamInstanceProfile": {"Name": "web-node"},
        "KeyName": "ops",
        "HibernationOptions": {"Configured": True},
    }


def test_hibernation_off_leaves_hibernation_options_out():
    assert lt.wanted_data(image_id="ami-1", hibernation=False) == {"ImageId": "ami-1"}


def test_instance_profile_arn_is_kept_as_arn():
    arn = "arn:aws:iam::123456789012:instance-profile/web-node"
    assert lt.wanted_data(iam_instance_profile=arn)["IamInstanceProfile"] == {"Arn": arn}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_id": "centos"}, "image_id: 'centos' is not allowed"),
        ({"instance_type": "large"}, "instance_type: 'large' is not allowed"),
        ({"user_data": "#!/bin/sh"}, "user_data: the value is not valid base64"),
        (
            {"user_data": base64.b64encode(b"x" * (16 * 1024 + 1)).decode()},
            "user_data: 16385 bytes is not allowed; use at most 16384 bytes",
        ),
        ({"mappings": [{"ebs": {"volume_size": 8}}]}, r"block_device_mappings\[0\].device_name: None is not allowed"),
        (
            {"mappings": [ROOT, {"device_name": "/dev/xvda"}]},
            r"block_device_mappings\[1\].device_name: '/dev/xvda' is mapped twice",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "ebs": {"volume_type": "gp9"}}]},
            r"block_device_mappings\[0\].ebs.volume_type: 'gp9' is not allowed; use one of standard, io1",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "ebs": {"volume_size": 0}}]},
            r"block_device_mappings\[0\].ebs.volume_size: 0 is not allowed; use an integer >= 1",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "ebs": {"iops": "3000"}}]},
            r"block_device_mappings\[0\].ebs.iops: '3000' is not allowed; use an integer >= 1",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "ebs": {"encrypted": "yes"}}]},
            r"block_device_mappings\[0\].ebs.encrypted: 'yes' is not allowed; use true or false",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "ebs": {"size": 8}}]},
            r"block_device_mappings\[0\].ebs.size: is not an option of ebs",
        ),
        (
            {"mappings": [{"device_name": "/dev/xvda", "volume": 8}]},
            r"block_device_mappings\[0\].volume: is not an option of a block device mapping",
        ),
        ({"security_group_ids": ["default"]}, "security_group_ids: 'default' is not allowed"),
        (
            {"iam_instance_profile": "arn:aws:iam::1:role/x"},
            "iam_instance_profile: 'arn:aws:iam::1:role/x' is not allowed",
        ),
        ({"iam_instance_profile": "/path/name"}, "iam_instance_profile: '/path/name' is not allowed"),
    ],
)
def test_wanted_data_names_the_bad_field(kwargs, message):
    with pytest.raises(lt.LaunchTemplateError, match=f"^{message}"):
        lt.wanted_data(**kwargs)


@pytest.mark.parametrize("name", ["ab", "web standby", "x" * 129, ""])
def test_check_name_refuses_names_aws_refuses(name):
    with pytest.raises(lt.LaunchTemplateError, match=f"^name: {name!r} is not allowed"):
        lt.check_name(name)


def test_check_name_accepts_aws_names():
    lt.check_name("web-standby/(v1)_x.y")


def test_equal_data_in_another_order_needs_no_new_version():
    wanted = lt.wanted_data(
        image_id="ami-1",
        mappings=[ROOT, {"device_name": "/dev/sdb", "virtual_name": "ephemeral0"}],
        security_group_ids=["sg-0a", "sg-0b"],
    )
    latest = {
        "SecurityGroupIds": ["sg-0b", "sg-0a"],
        "BlockDeviceMappings": list(reversed(wanted["BlockDeviceMappings"])),
        "HibernationOptions": {"Configured": True},
        "ImageId": "ami-1",
        # moto copies the template's own tags into the version data; AWS does not.
        "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [{"Key": "a", "Value": "b"}]}],
    }
    assert lt.needs_new_version(latest, wanted) is False


@pytest.mark.parametrize(
    "latest",
    [
        None,
        {"ImageId": "ami-1"},
        {"ImageId": "ami-1", "HibernationOptions": {"Configured": False}},
        {"ImageId": "ami-2", "HibernationOptions": {"Configured": True}},
        {"ImageId": "ami-1", "HibernationOptions": {"Configured": True}, "UserData": SCRIPT},
        {
            "ImageId": "ami-1",
            "HibernationOptions": {"Configured": True},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
        },
    ],
)
def test_any_other_difference_needs_a_new_version(latest):
    assert lt.needs_new_version(latest, lt.wanted_data(image_id="ami-1")) is True


def test_hibernation_off_equals_no_hibernation_options():
    wanted = lt.wanted_data(image_id="ami-1", hibernation=False)
    assert lt.needs_new_version({"ImageId": "ami-1", "HibernationOptions": {"Configured": False}}, wanted) is False


def test_tag_changes_make_the_tags_exact_or_leave_them_alone():
    current = {"team": "web", "old": "x", "n": "1"}
    assert lt.tag_changes(current, {"team": "web", "env": "prod", "n": 1}) == ({"env": "prod"}, ["old"])
    assert lt.tag_changes(current, None) == ({}, [])
    assert lt.tag_changes(current, {"team": "web", "old": "x", "n": "1"}) == ({}, [])


def test_hibernation_warns_without_an_encrypted_mapping():
    assert lt.hibernation_warnings(lt.wanted_data(image_id="ami-1")) == [lt.HIBERNATION_ROOT_HINT]
    assert lt.hibernation_warnings(lt.wanted_data(image_id="ami-1", mappings=[ROOT])) == []
    assert lt.hibernation_warnings(lt.wanted_data(image_id="ami-1", hibernation=False)) == []


def test_describe_returns_snake_case_template():
    template = {
        "LaunchTemplateId": "lt-1",
        "LaunchTemplateName": "web",
        "LatestVersionNumber": 3,
        "DefaultVersionNumber": 3,
        "Tags": [{"Key": "team", "Value": "web"}],
    }
    assert lt.describe(template) == {
        "launch_template_id": "lt-1",
        "launch_template_name": "web",
        "latest_version_number": 3,
        "default_version_number": 3,
        "tags": {"team": "web"},
    }
    assert lt.describe(None) == {}
