# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""EC2 instance reads and tag writes, batched and concurrent; callers pass clients wrapped with AWSRetry."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

# A filter takes at most 200 values. Filtering by instance-id (rather than passing InstanceIds)
# keeps one unknown id from failing the whole call with InvalidInstanceID.NotFound.
FILTER_VALUES = 200
# CreateTags takes up to 1000 resource ids per call; AWS recommends smaller batches.
TAG_RESOURCES = 200
NOT_FOUND_IDS = re.compile(r"i-[0-9a-f]+")

Item = TypeVar("Item")
Result = TypeVar("Result")


def chunks(items: list[Item], size: int) -> list[list[Item]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def run_concurrently(function: Callable[[Item], Result], items: Iterable[Item], concurrency: int) -> list[Result]:
    """``function`` over ``items`` on at most ``concurrency`` threads; results in order, the first exception raised."""
    work = list(items)
    if len(work) <= 1 or concurrency <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(work))) as pool:
        return list(pool.map(function, work))


def pages(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every page of a ``NextToken``-paged API call; ``call`` is a client method wrapped with AWSRetry."""
    while True:
        page = call(aws_retry=True, **request)
        yield page
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def describe_instances(client: Any, instance_ids: list[str], concurrency: int = 10) -> list[dict[str, Any]]:
    """The given instances (EC2's view, tags included); unknown ids are simply absent."""

    def read(batch: list[str]) -> list[dict[str, Any]]:
        filters = [{"Name": "instance-id", "Values": batch}]
        return [
            instance
            for page in pages(client.describe_instances, Filters=filters, MaxResults=1000)
            for reservation in page.get("Reservations", [])
            for instance in reservation.get("Instances", [])
        ]

    batches = run_concurrently(read, chunks(sorted(set(instance_ids)), FILTER_VALUES), concurrency)
    return [instance for batch in batches for instance in batch]


def tag_values(client: Any, resource_ids: list[str], key: str, concurrency: int = 10) -> dict[str, str]:
    """``{resource id: value}`` of tag ``key`` on the given resources (DescribeTags, 200 ids per filter)."""

    def read(batch: list[str]) -> dict[str, str]:
        filters = [{"Name": "resource-id", "Values": batch}, {"Name": "key", "Values": [key]}]
        return {
            tag["ResourceId"]: tag["Value"]
            for page in pages(client.describe_tags, Filters=filters, MaxResults=1000)
            for tag in page.get("Tags", [])
        }

    batches = run_concurrently(read, chunks(sorted(set(resource_ids)), FILTER_VALUES), concurrency)
    return {resource_id: value for batch in batches for resource_id, value in batch.items()}


def tag_calls(values: dict[str, str], size: int = TAG_RESOURCES) -> list[tuple[str, list[str]]]:
    """(value, instance ids) per CreateTags call: instances with the same value share calls of ``size`` ids."""
    by_value: dict[str, list[str]] = {}
    for instance_id in sorted(values):
        by_value.setdefault(values[instance_id], []).append(instance_id)
    return [(value, batch) for value in sorted(by_value) for batch in chunks(by_value[value], size)]


def not_found_ids(message: str) -> list[str]:
    """Instance ids named by an InvalidInstanceID.NotFound message."""
    return NOT_FOUND_IDS.findall(message)
