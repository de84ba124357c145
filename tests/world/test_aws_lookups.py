"""moto's EC2 lookups by id, indexed by the extensions, answer exactly what moto's scans answered."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import AmiBackend
from moto.ec2.models.instances import InstanceBackend

from spotmax_world.aws import AwsEmulator
from spotmax_world.moto_ext._patch import original
from spotmax_world.moto_ext.runtime import RUNTIME

pytestmark = pytest.mark.usefixtures("fresh_aws")
AMI = "ami-12c6146b"
UNKNOWN = "i-0123456789abcdef0"


def launch(ec2: Any, count: int, times: int = 1) -> list[str]:
    ids: list[str] = []
    for _round in range(times):
        reservation = ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, InstanceType="m5.large")
        ids.extend(i["InstanceId"] for i in reservation["Instances"])
    return ids


def answer(call: Any, *args: Any) -> Any:
    """What ``call`` returns, or the error it raises (type and message), for comparing two implementations."""
    try:
        return call(*args)
    except InvalidInstanceIdError as exc:
        return (type(exc), str(exc))


def test_lookups_match_moto_scans(ec2: Any, aws: AwsEmulator) -> None:
    ids = launch(ec2, 3, times=4)
    ec2.terminate_instances(InstanceIds=ids[:5])
    with RUNTIME.lock:
        backend = ec2_backends[aws.account_id][aws.region]
        for instance_id in [*ids, UNKNOWN, ids[0]]:
            for name in ("get_instance", "get_instance_by_id"):
                ours = answer(getattr(backend, name), instance_id)
                theirs = answer(original(InstanceBackend, name), backend, instance_id)
                assert ours == theirs, (name, instance_id)
        for wanted in ([ids[7], ids[2], ids[7]], [ids[1], UNKNOWN, ids[4], "i-deadbeef"], []):
            ours = answer(backend.get_multi_instances_by_id, wanted)
            theirs = answer(original(InstanceBackend, "get_multi_instances_by_id"), backend, wanted)
            assert ours == theirs, wanted
        running = [{"name": "instance-state-name", "values": ["running"]}]
        assert backend.get_multi_instances_by_id(ids, running) == original(
            InstanceBackend, "get_multi_instances_by_id"
        )(backend, ids, running)
        assert [i.id for i in backend.get_multi_instances_by_id(ids, running)] == ids[5:]
        for filters in (None, running, [{"name": "instance-type", "values": ["m5.large"]}]):
            assert backend.all_instances(filters) == original(InstanceBackend, "all_instances")(backend, filters)


def test_terminated_instances_are_still_found_and_unknown_ones_are_not(ec2: Any) -> None:
    ids = launch(ec2, 2, times=3)
    ec2.terminate_instances(InstanceIds=[ids[2]])
    attribute = ec2.describe_instance_attribute(InstanceId=ids[2], Attribute="instanceType")
    assert attribute["InstanceType"]["Value"] == "m5.large"
    statuses = ec2.describe_instance_status(InstanceIds=[ids[4], ids[2]], IncludeAllInstances=True)
    assert [(s["InstanceId"], s["InstanceState"]["Name"]) for s in statuses["InstanceStatuses"]] == [
        (ids[4], "running"),
        (ids[2], "terminated"),
    ]
    with pytest.raises(ClientError) as caught:
        ec2.describe_instance_attribute(InstanceId=UNKNOWN, Attribute="instanceType")
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as caught:
        ec2.stop_instances(InstanceIds=[ids[0], UNKNOWN])
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    assert UNKNOWN in caught.value.response["Error"]["Message"]
    assert ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_the_index_never_answers_for_instances_moto_no_longer_holds(ec2: Any, aws: AwsEmulator) -> None:
    ids = launch(ec2, 2, times=2)
    with RUNTIME.lock:
        backend = ec2_backends[aws.account_id][aws.region]
        first = backend.get_instance(ids[0])  # indexed now
        reservation = next(r for r in backend.reservations.values() if first in r.instances)
        reservation.instances.remove(first)
        assert backend.get_instance_by_id(ids[0]) is None
        del backend.reservations[reservation.id]
        assert backend.get_instance_by_id(ids[1]) is None
        assert backend.get_instance(ids[2]).id == ids[2]
    aws.reset()
    with pytest.raises(ClientError) as caught:
        ec2.describe_instance_attribute(InstanceId=ids[3], Attribute="instanceType")
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    fresh = launch(ec2, 1)
    assert ec2.describe_instance_attribute(InstanceId=fresh[0], Attribute="instanceType")["InstanceId"] == fresh[0]


def test_image_id_lookups_match_moto_filters(ec2: Any, aws: AwsEmulator) -> None:
    [instance_id] = launch(ec2, 1)
    images = [ec2.create_image(InstanceId=instance_id, Name=f"image-{n}")["ImageId"] for n in range(3)]
    with RUNTIME.lock:
        backend = ec2_backends[aws.account_id][aws.region]
        moto_describe = original(AmiBackend, "describe_images")
        for filters in (
            {"image-id": images[1]},
            {"image-id": [images[2]]},
            {"image-id": [images[2], images[0]]},
            {"image-id": "ami-*"},
            {"image-id": images[1][:-1] + "?"},
            {"image-id": "ami-00000000"},
            {"image-id": images[0], "state": "available"},
            {"image-id": None},
        ):
            assert backend.describe_images(filters=filters) == moto_describe(backend, None, filters), filters
        assert backend.describe_images(ami_ids=[images[0]]) == moto_describe(backend, [images[0]])
    described = ec2.describe_images(Filters=[{"Name": "image-id", "Values": [images[2]]}])["Images"]
    assert [i["ImageId"] for i in described] == [images[2]]
    # An instance launched from a registered image takes its properties from it, as before.
    launched = ec2.run_instances(ImageId=images[0], MinCount=1, MaxCount=1)["Instances"][0]
    assert launched["ImageId"] == images[0]
    assert launched["Architecture"] == "x86_64"


def test_resource_tags_match_moto_describe_tags(ec2: Any, aws: AwsEmulator) -> None:
    ids = launch(ec2, 3)
    ec2.create_tags(Resources=ids[:2], Tags=[{"Key": "spotmax:group", "Value": "web"}, {"Key": "b", "Value": "2"}])
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "a", "Value": "1"}])
    with RUNTIME.lock:
        backend = ec2_backends[aws.account_id][aws.region]
        for instance_id in ids:
            instance = backend.get_instance(instance_id)
            theirs = backend.describe_tags(filters={"resource-id": [instance_id]})
            assert instance.get_tags() == theirs, instance_id
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]
    tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])} for i in described}
    assert tags == {
        ids[0]: {"spotmax:group": "web", "b": "2", "a": "1"},
        ids[1]: {"spotmax:group": "web", "b": "2"},
        ids[2]: {},
    }


def test_describe_launch_templates_returns_every_template_without_max_results(ec2: Any) -> None:
    # moto cut the answer at 15 with no NextToken: a fleet of 50 templates read as 15.
    names = [f"lt-page-{number:02d}" for number in range(20)]
    for name in names:
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b"})
    try:
        found = ec2.get_paginator("describe_launch_templates").paginate(LaunchTemplateNames=names).build_full_result()
        assert sorted(t["LaunchTemplateName"] for t in found["LaunchTemplates"]) == names
        assert len(ec2.describe_launch_templates(MaxResults=5)["LaunchTemplates"]) == 5
    finally:
        for name in names:
            ec2.delete_launch_template(LaunchTemplateName=name)
