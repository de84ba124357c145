# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EC2 Auto Scaling reads and writes, batched; callers pass clients wrapped with AWSRetry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ansible_collections.spotmax.maxgroup.plugins.module_utils.ec2 import describe_instances as describe_ec2_instances
from ansible_collections.spotmax.maxgroup.plugins.module_utils.ec2 import pages, run_concurrently
from ansible_collections.spotmax.maxgroup.plugins.module_utils.renewal import response_time

# DescribeAutoScalingGroups returns at most 100 groups per page; asking for more names than that
# in one call only makes the service paginate, so names are sent in chunks of 100.
DESCRIBE_GROUPS_BATCH = 100
# DescribeWarmPool returns at most 50 instances per page.
WARM_POOL_PAGE = 50
# CreateOrUpdateTags and DeleteTags take tags of many groups in one call. The API reference states no
# maximum for their Tags list (the documented per-call limits, e.g. 20 instance IDs for
# DetachInstances, do not cover them), but large calls are reported to fail in practice
# (cloud-custodian/cloud-custodian#4047: tagging failed once a call carried more than 25 groups).
# 20 tags per call stays below that and keeps a group's tags in one call.
TAG_WRITE_BATCH = 20


def chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def describe_groups(client: Any, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Describe the named groups (all groups when ``names`` is None) in the fewest calls."""
    groups: list[dict[str, Any]] = []
    batches: list[list[str] | None] = (
        [None] if names is None else list(chunks(sorted(set(names)), DESCRIBE_GROUPS_BATCH))
    )
    for batch in batches:
        request: dict[str, Any] = {"MaxRecords": 100}
        if batch is not None:
            request["AutoScalingGroupNames"] = batch
        for page in pages(client.describe_auto_scaling_groups, **request):
            groups.extend(page.get("AutoScalingGroups", []))
    return groups


def describe_group(client: Any, name: str) -> dict[str, Any] | None:
    found = describe_groups(client, [name])
    return found[0] if found else None


def describe_warm_pool(client: Any, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The group's warm pool configuration (None without a pool) and all its instances."""
    configuration: dict[str, Any] | None = None
    instances: list[dict[str, Any]] = []
    for page in pages(client.describe_warm_pool, AutoScalingGroupName=name, MaxRecords=WARM_POOL_PAGE):
        configuration = page.get("WarmPoolConfiguration") or configuration
        instances.extend(page.get("Instances", []))
    return configuration, instances


def launch_template_data(ec2: Any, spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``LaunchTemplateData`` of the version a group launches (``$Default`` when unset)."""
    if not spec:
        return None
    request: dict[str, Any] = {"Versions": [str(spec.get("Version") or "$Default")]}
    if spec.get("LaunchTemplateId"):
        request["LaunchTemplateId"] = spec["LaunchTemplateId"]
    else:
        request["LaunchTemplateName"] = spec["LaunchTemplateName"]
    versions = ec2.describe_launch_template_versions(aws_retry=True, **request).get("LaunchTemplateVersions", [])
    return versions[0].get("LaunchTemplateData", {}) if versions else None


def describe_launch_configuration(client: Any, name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    found = client.describe_launch_configurations(aws_retry=True, LaunchConfigurationNames=[name]).get(
        "LaunchConfigurations", []
    )
    return found[0] if found else None


# DescribeAutoScalingInstances takes at most 50 ids per call; DetachInstances at most 20.
DESCRIBE_INSTANCES_BATCH = 50
DETACH_BATCH = 20


def describe_instances(client: Any, instance_ids: list[str]) -> list[dict[str, Any]]:
    """Auto Scaling's view (group, lifecycle state) of the given instances; ids in no group are absent."""
    return [
        instance
        for batch in chunks(sorted(set(instance_ids)), DESCRIBE_INSTANCES_BATCH)
        for page in pages(
            client.describe_auto_scaling_instances, InstanceIds=batch, MaxRecords=DESCRIBE_INSTANCES_BATCH
        )
        for instance in page.get("AutoScalingInstances", [])
    ]


def describe_groups_with_tag(client: Any, key: str) -> list[dict[str, Any]]:
    """Groups carrying tag ``key``, 100 per call."""
    filters = [{"Name": "tag-key", "Values": [key]}]
    return [
        group
        for page in pages(client.describe_auto_scaling_groups, Filters=filters, MaxRecords=DESCRIBE_GROUPS_BATCH)
        for group in page.get("AutoScalingGroups", [])
    ]


def describe_named_or_tagged(
    client: Any, names: list[str], tag_keys: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str]]:
    """(groups, names not found): the named groups, or without names every group carrying one of ``tag_keys``."""
    if names:
        found = describe_groups(client, names)
        return found, sorted(set(names) - {group["AutoScalingGroupName"] for group in found})
    by_name = {
        group["AutoScalingGroupName"]: group for key in tag_keys for group in describe_groups_with_tag(client, key)
    }
    return [by_name[name] for name in sorted(by_name)], []


def member_instances(ec2: Any, groups: list[dict[str, Any]], concurrency: int = 10) -> dict[str, dict[str, Any]]:
    """EC2's view (launch time, market, tags) of the groups' members, by instance id, in batched reads."""
    ids = [member["InstanceId"] for group in groups for member in group.get("Instances") or []]
    found = describe_ec2_instances(ec2, ids, concurrency) if ids else []
    return {instance["InstanceId"]: instance for instance in found}


def aws_now(client: Any) -> datetime:
    """AWS's "now", from the Date of a one-record DescribeAutoScalingGroups."""
    now: datetime = response_time(client.describe_auto_scaling_groups(aws_retry=True, MaxRecords=1))
    return now


def detach_calls(by_group: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """(group, instance ids) of the DetachInstances calls for ``by_group``, at most 20 ids each."""
    return [(group, batch) for group, ids in by_group.items() for batch in chunks(ids, DETACH_BATCH)]


def detach_instances(client: Any, by_group: dict[str, list[str]], decrement: bool, concurrency: int) -> None:
    """Detach the instances, the calls running concurrently (the client retries ResourceContention)."""

    def detach(call: tuple[str, list[str]]) -> None:
        group, batch = call
        client.detach_instances(
            aws_retry=True, AutoScalingGroupName=group, InstanceIds=batch, ShouldDecrementDesiredCapacity=decrement
        )

    run_concurrently(detach, detach_calls(by_group), concurrency)


def update_groups(client: Any, requests: list[dict[str, Any]], concurrency: int) -> None:
    """One UpdateAutoScalingGroup call per request, up to ``concurrency`` at a time.

    As with :func:`detach_instances`, the client's retry decorator should also retry ``ResourceContention``
    (another update of the same group still pending).
    """

    def update(request: dict[str, Any]) -> None:
        client.update_auto_scaling_group(aws_retry=True, **request)

    run_concurrently(update, requests, concurrency)


def tag_batches(tags: list[dict[str, Any]], size: int = TAG_WRITE_BATCH) -> list[list[dict[str, Any]]]:
    """Split API tags into calls of at most ``size`` tags, keeping each group's tags in one call."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for tag in tags:
        by_group.setdefault(str(tag["ResourceId"]), []).append(tag)
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for group_tags in by_group.values():
        if current and len(current) + len(group_tags) > size:
            batches.append(current)
            current = []
        current.extend(group_tags)
        while len(current) > size:  # a single group with more tags than a call holds
            batches.append(current[:size])
            current = current[size:]
    if current:
        batches.append(current)
    return batches


def create_or_update_tags(client: Any, tags: list[dict[str, Any]]) -> int:
    """Write group tags (``ResourceId``, ``ResourceType``, ``Key``, ``Value``, ``PropagateAtLaunch``) in few calls.

    Returns the number of calls made; no call when ``tags`` is empty.
    """
    batches = tag_batches(tags)
    for batch in batches:
        client.create_or_update_tags(aws_retry=True, Tags=batch)
    return len(batches)


def delete_tags(client: Any, tags: list[dict[str, Any]]) -> int:
    """Delete group tags (``ResourceId``, ``ResourceType``, ``Key``) in few calls; returns the number of calls."""
    batches = tag_batches(tags)
    for batch in batches:
        client.delete_tags(aws_retry=True, Tags=batch)
    return len(batches)
