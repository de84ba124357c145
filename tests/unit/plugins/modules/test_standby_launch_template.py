# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""standby_launch_template against moto's in-process AWS: outcomes in the (mocked) account, not calls."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from ansible_collections.spotmax.maxgroup.plugins.modules import standby_launch_template

NAME = "web-standby"
SCRIPT = base64.b64encode(b"#!/bin/sh\necho one\n").decode()
ROOT = {"device_name": "/dev/xvda", "ebs": {"encrypted": True, "volume_size": 30, "volume_type": "gp3"}}


@pytest.fixture(name="run")
def run_fixture(run_module):
    return lambda args, **kwargs: run_module(standby_launch_template, {"name": NAME, **args}, **kwargs)


@pytest.fixture(name="image")
def image_fixture(aws):
    return aws["ec2"].describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


@pytest.fixture(name="groups")
def groups_fixture(aws):
    vpc = aws["ec2"].describe_vpcs()["Vpcs"][0]["VpcId"]
    return [
        aws["ec2"].create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("web-a", "web-b")
    ]


def template_of(aws):
    try:
        return aws["ec2"].describe_launch_templates(LaunchTemplateNames=[NAME])["LaunchTemplates"][0]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "InvalidLaunchTemplateName.NotFoundException"
        return None


def data_of(aws, version="$Latest"):
    versions = aws["ec2"].describe_launch_template_versions(LaunchTemplateName=NAME, Versions=[version])
    return versions["LaunchTemplateVersions"][0]["LaunchTemplateData"]


def test_creates_hibernating_template_then_is_idempotent(aws, run, image, groups):
    args = {
        "image_id": image,
        "instance_type": "m5.large",
        "user_data": SCRIPT,
        "block_device_mappings": [ROOT],
        "security_group_ids": groups,
        "iam_instance_profile": "web-node",
        "key_name": "ops",
        "tags": {"spotmax:group": "web"},
    }
    first = run(args, diff=True)
    assert first["changed"] is True
    assert first["diff"]["before"] == {}
    assert first["diff"]["after"]["launch_template_data"]["hibernation_options"] == {"configured": True}
    assert first["template"]["latest_version_number"] == 1
    assert first["template"]["tags"] == {"spotmax:group": "web"}
    assert first["launch_template_data"]["user_data"] == SCRIPT
    data = data_of(aws)
    assert data["HibernationOptions"] == {"Configured": True}
    assert data["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "VolumeSize": 30, "VolumeType": "gp3"}}
    ]
    assert data["IamInstanceProfile"] == {"Name": "web-node"}
    assert sorted(data["SecurityGroupIds"]) == sorted(groups)

    # Same options, security groups in another order: no new version.
    again = run({**args, "security_group_ids": list(reversed(groups))}, diff=True)
    assert again["changed"] is False
    assert again["diff"]["before"] == again["diff"]["after"]
    assert template_of(aws)["LatestVersionNumber"] == 1


def test_changed_user_data_makes_a_new_default_version(aws, run, image):
    run({"image_id": image, "user_data": SCRIPT, "block_device_mappings": [ROOT]})
    other = base64.b64encode(b"#!/bin/sh\necho two\n").decode()
    result = run({"image_id": image, "user_data": other, "block_device_mappings": [ROOT]}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["launch_template_data"]["user_data"] == SCRIPT
    assert result["diff"]["after"]["launch_template_data"]["user_data"] == other
    template = template_of(aws)
    assert (template["LatestVersionNumber"], template["DefaultVersionNumber"]) == (2, 2)
    assert result["template"]["default_version_number"] == 2
    assert data_of(aws, "$Default")["UserData"] == other
    assert data_of(aws, "$Default")["HibernationOptions"] == {"Configured": True}


def test_template_without_hibernation_gets_a_hibernating_version(aws, run, image):
    aws["ec2"].create_launch_template(LaunchTemplateName=NAME, LaunchTemplateData={"ImageId": image})
    result = run({"image_id": image})
    assert result["changed"] is True
    assert data_of(aws, "$Default") == {"ImageId": image, "HibernationOptions": {"Configured": True}}
    assert run({"image_id": image})["changed"] is False


def test_stale_default_version_is_made_the_latest(aws, run, image):
    run({"image_id": image})
    template_id = template_of(aws)["LaunchTemplateId"]
    aws["ec2"].create_launch_template_version(
        LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": image, "HibernationOptions": {"Configured": True}}
    )
    assert template_of(aws)["DefaultVersionNumber"] == 1
    assert run({"image_id": image})["changed"] is True
    assert template_of(aws)["DefaultVersionNumber"] == 2


def test_tags_are_made_exact_and_left_alone_when_omitted(aws, run, image):
    run({"image_id": image, "tags": {"team": "web", "old": "x"}})
    result = run({"image_id": image, "tags": {"team": "web", "env": "prod"}}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"]["tags"] == {"team": "web", "env": "prod"}
    # DescribeTags: moto's DescribeLaunchTemplates keeps the tags of creation.
    template_id = template_of(aws)["LaunchTemplateId"]
    tags = aws["ec2"].describe_tags(Filters=[{"Name": "resource-id", "Values": [template_id]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "web", "env": "prod"}
    assert run({"image_id": image, "tags": {"env": "prod", "team": "web"}})["changed"] is False
    assert template_of(aws)["LatestVersionNumber"] == 1
    assert run({"image_id": image})["changed"] is False


def test_check_mode_reports_change_without_writing(aws, run, image):
    result = run({"image_id": image}, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["template"] == {}
    assert result["launch_template_data"]["hibernation_options"] == {"configured": True}
    assert result["diff"]["after"]["launch_template_data"]["image_id"] == image
    assert template_of(aws) is None

    run({"image_id": image})
    same = run({"image_id": image}, check_mode=True)
    assert same["changed"] is False
    assert same["launch_template_data"] == {"image_id": image, "hibernation_options": {"configured": True}}
    changed = run({"image_id": image, "instance_type": "m5.xlarge"}, check_mode=True)
    assert changed["changed"] is True
    assert changed["launch_template_data"]["instance_type"] == "m5.xlarge"
    assert template_of(aws)["LatestVersionNumber"] == 1
    assert "InstanceType" not in data_of(aws)

    assert run({"state": "absent"}, check_mode=True)["changed"] is True
    assert template_of(aws) is not None


def test_absent_deletes_all_versions_and_is_idempotent(aws, run, image):
    run({"image_id": image})
    run({"image_id": image, "instance_type": "m5.large"})
    result = run({"state": "absent"}, diff=True)
    assert result["changed"] is True
    assert result["template"] == {}
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["launch_template_data"]["instance_type"] == "m5.large"
    assert template_of(aws) is None
    assert run({"state": "absent"})["changed"] is False


def test_hibernation_without_encrypted_root_warns(aws, run, image):
    result = run({"image_id": image})
    # ansible-core 2.19 returns warnings as structured events, older versions as strings.
    assert "hibernation needs an encrypted EBS root volume" in str(result["warnings"])


def test_aws_error_is_surfaced(run):
    # Nothing listens on the discard port: the connection error must reach the user, not pass as "unchanged".
    result = run(
        {
            "image_id": "ami-12345678",
            "endpoint_url": "http://127.0.0.1:9",
            "aws_config": {"retries": {"max_attempts": 1}},
        }
    )
    assert result["failed"] is True
    assert result["msg"].startswith("Failed to manage launch template 'web-standby'")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"name": "ab"}, "name: 'ab' is not allowed"),
        ({"user_data": "#!/bin/sh"}, "user_data: the value is not valid base64"),
        ({"block_device_mappings": [{"ebs": {"volume_size": 8}}]}, "block_device_mappings[0].device_name: None"),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"volume_size": -1}}]},
            "block_device_mappings[0].ebs.volume_size: -1 is not allowed",
        ),
        (
            {"block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"volume_type": "gp9"}}]},
            "value of volume_type must be one of: standard, io1, io2, gp2, sc1, st1, gp3, got: gp9",
        ),
    ],
)
def test_bad_input_fails_before_calling_aws(run, args, message):
    # No AWS mock here: any API call would fail differently.
    result = run(args)
    assert result["failed"] is True
    assert message in result["msg"]
