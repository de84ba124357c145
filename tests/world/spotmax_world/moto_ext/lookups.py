"""Cheaper EC2 lookups by id: moto answers them by scanning (and copying) every reservation.

``InstanceBackend.get_instance`` copies all reservations to find one instance; it runs for every
volume an instance launches with (``EBSBackend.attach_volume``), so each launch into a big group
costs a scan of the whole account. ``Instance.__init__`` looks its AMI up with an ``image-id``
filter that ``fnmatch``-es every image of the catalogue.

The replacements answer the same (same objects, same order, same errors):

- instances: an id index hung on the backend (so moto's reset discards it with the backend's
  ``__dict__``). A hit is checked against the reservations before it is trusted; a miss scans the
  reservations, newest first (a fresh instance is found at once), indexing what it passes.
- AMIs: an ``image-id`` filter with one value and no wildcard is a dictionary lookup.
- tags: every EC2 resource reads its own tags through ``describe_tags`` with a ``resource-id``
  filter, which matches a regular expression against every tagged resource of the account (so a
  ``DescribeInstances`` of n instances costs n scans). An id without wildcards is a dictionary lookup.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.exceptions import InvalidInstanceIdError
from moto.ec2.models.amis import Ami, AmiBackend
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance, InstanceBackend, Reservation
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

from ._patch import original, patch

_ATTR = "_spotmax_instance_index"
_GLOB = frozenset("*?[")

Index = dict[str, tuple[Reservation, Instance]]


def _index(backend: InstanceBackend) -> Index:
    index: Index | None = backend.__dict__.get(_ATTR)
    if index is None:
        index = {}
        backend.__dict__[_ATTR] = index
    return index


def find_instance(backend: InstanceBackend, instance_id: str) -> Instance | None:
    """The instance with ``instance_id`` in ``backend`` (whatever its state), or None."""
    index = _index(backend)
    entry = index.get(instance_id)
    if entry is not None:
        reservation, instance = entry
        if backend.reservations.get(reservation.id) is reservation and any(
            candidate is instance for candidate in reservation.instances
        ):
            return instance
        del index[instance_id]  # moved or gone: never trust it again
    found = None
    for reservation in reversed(backend.reservations.values()):
        for instance in reservation.instances:
            index.setdefault(instance.id, (reservation, instance))
            if found is None and instance.id == instance_id:
                found = instance
        if found is not None:
            return found
    return None


class InstanceBackendExtensions(InstanceBackend):
    """Never instantiated: the methods are grafted onto moto's ``InstanceBackend``."""

    def get_instance(self, instance_id: str) -> Instance:
        instance = find_instance(self, instance_id)
        if instance is None:
            raise InvalidInstanceIdError(instance_id)
        return instance

    def get_instance_by_id(self, instance_id: str) -> Instance | None:
        return find_instance(self, instance_id)

    def get_multi_instances_by_id(self, instance_ids: list[str], filters: Any = None) -> list[Instance]:
        result: list[Instance] = []
        missing: list[str] = []
        for instance_id in instance_ids:
            instance = find_instance(self, instance_id)
            if instance is None:
                missing.append(instance_id)
            elif instance.applies(filters):
                result.append(instance)
        if missing:
            raise InvalidInstanceIdError(missing)
        return result

    def all_instances(self, filters: Any = None) -> list[Instance]:
        # moto copies every reservation first; reading their instances needs no copy.
        return [
            instance
            for reservation in list(self.reservations.values())
            for instance in reservation.instances
            if instance.applies(filters)
        ]


class AmiBackendExtensions(AmiBackend):
    """Never instantiated: ``describe_images`` is grafted onto moto's ``AmiBackend``."""

    def describe_images(
        self,
        ami_ids: list[str] | None = None,
        filters: dict[str, Any] | None = None,
        exec_users: list[str] | None = None,
        owners: list[str] | None = None,
    ) -> list[Ami]:
        value = (filters or {}).get("image-id")
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if (
            not ami_ids
            and not exec_users
            and not owners
            and filters is not None
            and len(filters) == 1
            and isinstance(value, str)
            and not _GLOB.intersection(value)
        ):
            ami = self.amis.get(value)
            return [ami] if ami is not None and ami.id == value else []
        result: list[Ami] = original(AmiBackend, "describe_images")(self, ami_ids, filters, exec_users, owners)
        return result


def resource_tags(resource: TaggedEC2Resource) -> list[dict[str, str]]:
    """``resource``'s tags as moto's ``get_tags`` lists them (same entries, same order)."""
    resource_id = getattr(resource, "id", None)
    if not resource_id:
        return []
    if _GLOB.intersection(resource_id):
        result: list[dict[str, str]] = original(TaggedEC2Resource, "get_tags")(resource)
        return result
    backend: Any = resource.ec2_backend  # type: ignore[attr-defined]
    tags = backend.tags.get(resource_id) or {}
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in tags.items()
    ]


def install() -> None:
    patch(InstanceBackend, "get_instance", InstanceBackendExtensions.get_instance)
    patch(InstanceBackend, "get_instance_by_id", InstanceBackendExtensions.get_instance_by_id)
    patch(InstanceBackend, "get_multi_instances_by_id", InstanceBackendExtensions.get_multi_instances_by_id)
    patch(InstanceBackend, "all_instances", InstanceBackendExtensions.all_instances)
    patch(AmiBackend, "describe_images", AmiBackendExtensions.describe_images)
    patch(TaggedEC2Resource, "get_tags", resource_tags)
