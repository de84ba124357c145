# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Diversified instance type selection, as amazon-ec2-instance-selector does it, over the EC2 catalog.

The catalog (``DescribeInstanceTypes``) is read in pages of 100 and reduced to :class:`InstanceType`
records; everything else (validation, the base-type rules, filtering, sorting, the mixed instances
policy) is pure and runs over the records in a few milliseconds. The catalog may be cached in a local
JSON file with a TTL, keyed by region and endpoint, written atomically.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

ARCHITECTURES = ("x86_64", "arm64", "i386", "x86_64_mac", "arm64_mac")
USAGE_CLASSES = ("spot", "on-demand")
SORT_KEYS = ("name", "vcpus", "memory", "gpus")
SORT_DIRECTIONS = ("ascending", "descending")
SPOT_ALLOCATION_STRATEGIES = (
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
)
# A base instance type selects types with vCPUs and memory within these factors of the base's.
BASE_LOWER = 0.9
BASE_UPPER = 1.2
# DescribeInstanceTypes returns at most 100 types per page.
DESCRIBE_PAGE = 100
# DescribeInstanceTypeOfferings returns at most 1000 offerings per page.
OFFERINGS_PAGE = 1000
# An Auto Scaling group's mixed instances policy takes at most 40 launch template overrides.
MAX_OVERRIDES = 40
# A vCPU-to-memory ratio matches when the type's GiB per vCPU is within 1% of the wanted one.
RATIO_TOLERANCE = 0.01
CACHE_VERSION = 1

# Binary units whatever their spelling, as amazon-ec2-instance-selector reads them: 16GB is 16 GiB.
MEMORY_UNITS = {
    "": 1,
    "m": 1,
    "mb": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "t": 1024**2,
    "tb": 1024**2,
    "tib": 1024**2,
}
MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")
TYPE_NAME = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9-]+$")
# Go's regexp (amazon-ec2-instance-selector, kOps) accepts an optional start anchor, as in the kOps
# tutorial's deny list '^?[1-3].*\..*'; Python's re refuses it. An optional anchor matches the same
# names as none at all, so a leading '^?' is dropped before compiling.
OPTIONAL_ANCHOR = "^?"
MEMORY_HINT = 'a number of MiB (16384) or a size with a binary unit ("16GiB", "16GB", "512MiB", "1.5TiB")'


class SelectorError(ValueError):
    """Input that cannot select instance types; the message names the field, the value and what is allowed."""


@dataclass(frozen=True)
class InstanceType:
    """The attributes of one instance type the selector filters and returns."""

    name: str
    vcpus: int
    memory_mib: int
    gpus: int
    architectures: tuple[str, ...]
    virtualization_types: tuple[str, ...]
    usage_classes: tuple[str, ...]
    hibernation_support: bool
    burst_support: bool
    current_generation: bool
    bare_metal: bool

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> InstanceType:
        """One ``InstanceTypeInfo`` of ``DescribeInstanceTypes``."""
        gpus = ((data.get("GpuInfo") or {}).get("Gpus")) or []
        return cls(
            name=str(data["InstanceType"]),
            vcpus=int((data.get("VCpuInfo") or {}).get("DefaultVCpus") or 0),
            memory_mib=int((data.get("MemoryInfo") or {}).get("SizeInMiB") or 0),
            # A fractional GPU (g6f: Count 0, LogicalGpuCount 1, GpuPartitionSize 0.125) is still a GPU.
            gpus=sum(max(int(gpu.get("Count") or 0), int(gpu.get("LogicalGpuCount") or 0)) for gpu in gpus),
            architectures=tuple((data.get("ProcessorInfo") or {}).get("SupportedArchitectures") or ()),
            virtualization_types=tuple(data.get("SupportedVirtualizationTypes") or ()),
            usage_classes=tuple(data.get("SupportedUsageClasses") or ()),
            hibernation_support=bool(data.get("HibernationSupported")),
            burst_support=bool(data.get("BurstablePerformanceSupported")),
            current_generation=bool(data.get("CurrentGeneration")),
            bare_metal=bool(data.get("BareMetal")),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceType:
        """A record written by :meth:`to_dict` (the cache); raises KeyError/TypeError/ValueError when malformed."""
        return cls(
            name=_typed(data["name"], str),
            vcpus=_typed(data["vcpus"], int),
            memory_mib=_typed(data["memory_mib"], int),
            gpus=_typed(data["gpus"], int),
            architectures=_strings(data["architectures"]),
            virtualization_types=_strings(data["virtualization_types"]),
            usage_classes=_strings(data["usage_classes"]),
            hibernation_support=_typed(data["hibernation_support"], bool),
            burst_support=_typed(data["burst_support"], bool),
            current_generation=_typed(data["current_generation"], bool),
            bare_metal=_typed(data["bare_metal"], bool),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "gpus": self.gpus,
            "architectures": list(self.architectures),
            "virtualization_types": list(self.virtualization_types),
            "usage_classes": list(self.usage_classes),
            "hibernation_support": self.hibernation_support,
            "burst_support": self.burst_support,
            "current_generation": self.current_generation,
            "bare_metal": self.bare_metal,
        }


def _typed(value: Any, kind: type[Any]) -> Any:
    # bool is an int in Python: a cached count must not be a boolean, nor a flag a number.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError("expected a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class Range:
    """An inclusive range; an open end is None."""

    minimum: float | None = None
    maximum: float | None = None

    def contains(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)

    def describe(self) -> dict[str, float | None]:
        return {"min": _number(self.minimum), "max": _number(self.maximum)}


def _number(value: float | None) -> float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 3)


@dataclass(frozen=True)
class Request:
    """The validated options: everything known before the catalog is read."""

    base_instance_type: str | None = None
    vcpus: Range = field(default_factory=Range)
    memory_mib: Range = field(default_factory=Range)
    gpus: Range = field(default_factory=Range)
    vcpus_to_memory_ratio: float | None = None
    burst_support: bool | None = None
    cpu_architecture: str | None = None
    current_generation: bool | None = None
    hibernation_support: bool | None = None
    usage_class: str | None = None
    allow_list: re.Pattern[str] | None = None
    deny_list: re.Pattern[str] | None = None
    availability_zones: tuple[str, ...] = ()
    max_results: int | None = None
    sort_by: str = "name"
    sort_direction: str = "ascending"


@dataclass(frozen=True)
class Criteria:
    """What a type must satisfy: the options with the base type's rules applied."""

    vcpus: Range
    memory_mib: Range
    gpus: Range
    vcpus_to_memory_ratio: float | None
    burst_support: bool | None
    architectures: frozenset[str] | None
    virtualization_type: str | None
    current_generation: bool | None
    hibernation_support: bool | None
    usage_class: str | None
    allow_list: re.Pattern[str] | None
    deny_list: re.Pattern[str] | None

    def describe(self) -> dict[str, Any]:
        return {
            "vcpus": self.vcpus.describe(),
            "memory_mib": self.memory_mib.describe(),
            "gpus": self.gpus.describe(),
            "vcpus_to_memory_ratio": _number(self.vcpus_to_memory_ratio),
            "burst_support": self.burst_support,
            "cpu_architectures": sorted(self.architectures) if self.architectures is not None else None,
            "virtualization_type": self.virtualization_type,
            "current_generation": self.current_generation,
            "hibernation_support": self.hibernation_support,
            "usage_class": self.usage_class,
            "allow_list": self.allow_list.pattern if self.allow_list is not None else None,
            "deny_list": self.deny_list.pattern if self.deny_list is not None else None,
        }


# --- validation (before any API call) ---------------------------------------------------------


def parse_memory(name: str, value: Any) -> float | None:
    """MiB from a number of MiB or a size string; units are binary whatever their spelling (GB = GiB)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SelectorError(f"{name}: {value!r} is not allowed; use {MEMORY_HINT}")
    if isinstance(value, (int, float)):
        mib = float(value)
    else:
        found = MEMORY.match(str(value))
        unit = found.group(2).lower() if found else ""
        if not found or unit not in MEMORY_UNITS:
            raise SelectorError(f"{name}: {value!r} is not allowed; use {MEMORY_HINT}")
        mib = float(found.group(1)) * MEMORY_UNITS[unit]
    if mib < 0 or math.isnan(mib) or math.isinf(mib):
        raise SelectorError(f"{name}: {value!r} is not allowed; use {MEMORY_HINT}, >= 0")
    return mib


def parse_ratio(value: str | None) -> float | None:
    """GiB of memory per vCPU from ``"vcpus:GiB"`` (``"1:4"`` is 4 GiB per vCPU)."""
    if value is None:
        return None
    found = RATIO.match(str(value))
    if not found or float(found.group(1)) == 0 or float(found.group(2)) == 0:
        raise SelectorError(
            f"vcpus_to_memory_ratio: {value!r} is not allowed; use 'vCPUs:GiB' with two positive numbers, "
            "for example '1:4' (4 GiB per vCPU) or '1:2'"
        )
    return float(found.group(2)) / float(found.group(1))


def compile_pattern(name: str, pattern: str | None) -> re.Pattern[str] | None:
    """A type-name regex (searched, like Go's MatchString); a leading optional anchor '^?' is dropped."""
    if pattern is None:
        return None
    source = pattern[len(OPTIONAL_ANCHOR) :] if pattern.startswith(OPTIONAL_ANCHOR) else pattern
    try:
        return re.compile(source)
    except re.error as exc:
        raise SelectorError(
            f"{name}: {pattern!r} is not a valid regular expression ({exc}); use a Python regular expression "
            r"searched in the type name, for example '^(t2|m4)\.' or '^[a-z]+[1-3][a-z-]*\.'"
        ) from None


def _count_range(name: str, minimum: int | None, maximum: int | None) -> Range:
    for suffix, value in (("min", minimum), ("max", maximum)):
        if value is not None and value < 0:
            raise SelectorError(f"{name}_{suffix}: {value} is not allowed; use an integer >= 0")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise SelectorError(
            f"{name}_min: {minimum} exceeds {name}_max ({maximum}); use a {name}_min between 0 and {maximum}"
        )
    return Range(minimum, maximum)


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise SelectorError(f"{name}: {value!r} is not allowed; use one of {', '.join(allowed)}")
    return value


def validate(params: dict[str, Any]) -> Request:
    """The options of the module (missing keys mean "not set"), validated; raises SelectorError."""
    base = params.get("base_instance_type")
    if base is not None and not TYPE_NAME.match(base):
        raise SelectorError(
            f"base_instance_type: {base!r} is not allowed; use an instance type name such as 'm5.xlarge'"
        )
    memory_min = parse_memory("memory_min", params.get("memory_min"))
    memory_max = parse_memory("memory_max", params.get("memory_max"))
    if memory_min is not None and memory_max is not None and memory_min > memory_max:
        raise SelectorError(
            f"memory_min: {params['memory_min']!r} ({_number(memory_min)} MiB) exceeds memory_max "
            f"({params['memory_max']!r}, {_number(memory_max)} MiB); use a memory_min <= memory_max"
        )
    zones = tuple(params.get("availability_zones") or ())
    for zone in zones:
        if not zone or not isinstance(zone, str):
            raise SelectorError(f"availability_zones: {zone!r} is not allowed; use zone names such as 'us-east-1a'")
    max_results = params.get("max_results")
    cache_ttl = params.get("cache_ttl") or 0
    if cache_ttl < 0:
        raise SelectorError(
            f"cache_ttl: {cache_ttl} is not allowed; use a number of seconds >= 0 (0 disables the cache)"
        )
    if max_results is not None and max_results < 1:
        raise SelectorError(f"max_results: {max_results} is not allowed; use an integer >= 1")
    return Request(
        base_instance_type=base,
        vcpus=_count_range("vcpus", params.get("vcpus_min"), params.get("vcpus_max")),
        memory_mib=Range(memory_min, memory_max),
        gpus=_count_range("gpus", params.get("gpus_min"), params.get("gpus_max")),
        vcpus_to_memory_ratio=parse_ratio(params.get("vcpus_to_memory_ratio")),
        burst_support=params.get("burst_support"),
        cpu_architecture=_choice("cpu_architecture", params.get("cpu_architecture"), ARCHITECTURES),
        current_generation=params.get("current_generation"),
        hibernation_support=params.get("hibernation_support"),
        usage_class=_choice("usage_class", params.get("usage_class"), USAGE_CLASSES),
        allow_list=compile_pattern("allow_list", params.get("allow_list")),
        deny_list=compile_pattern("deny_list", params.get("deny_list")),
        availability_zones=tuple(dict.fromkeys(zones)),
        max_results=max_results,
        sort_by=_choice("sort_by", params.get("sort_by") or "name", SORT_KEYS) or "name",
        sort_direction=_choice("sort_direction", params.get("sort_direction") or "ascending", SORT_DIRECTIONS)
        or "ascending",
    )


def distribution(
    usage_class: str | None,
    on_demand_base_capacity: int,
    on_demand_percentage_above_base_capacity: int | None,
    spot_allocation_strategy: str,
) -> dict[str, Any]:
    """``instances_distribution`` for amazon.aws.autoscaling_group; the percentage defaults to the usage class."""
    if on_demand_base_capacity < 0:
        raise SelectorError(f"on_demand_base_capacity: {on_demand_base_capacity} is not allowed; use an integer >= 0")
    percentage = on_demand_percentage_above_base_capacity
    if percentage is None:
        percentage = 100 if usage_class == "on-demand" else 0
    if not 0 <= percentage <= 100:
        raise SelectorError(
            f"on_demand_percentage_above_base_capacity: {percentage} is not allowed; use an integer from 0 to 100"
        )
    _choice("spot_allocation_strategy", spot_allocation_strategy, SPOT_ALLOCATION_STRATEGIES)
    return {
        "on_demand_base_capacity": on_demand_base_capacity,
        "on_demand_percentage_above_base_capacity": percentage,
        "spot_allocation_strategy": spot_allocation_strategy,
    }


# --- the base type and the filters (after the catalog is read) --------------------------------


def criteria(request: Request, catalog: dict[str, InstanceType], region: str | None = None) -> Criteria:
    """The request with the base type's rules: options given explicitly take precedence over the base's."""
    vcpus, memory, gpus = request.vcpus, request.memory_mib, request.gpus
    architectures = frozenset([request.cpu_architecture]) if request.cpu_architecture else None
    virtualization = None
    if request.base_instance_type is not None:
        base = catalog.get(request.base_instance_type)
        if base is None:
            close = difflib.get_close_matches(request.base_instance_type, list(catalog), n=3)
            where = f" in region {region}" if region else ""
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise SelectorError(
                f"base_instance_type: {request.base_instance_type!r} is not an instance type{where}; "
                f"use one DescribeInstanceTypes lists{hint}"
            )
        if vcpus == Range():
            vcpus = Range(base.vcpus * BASE_LOWER, base.vcpus * BASE_UPPER)
        if memory == Range():
            memory = Range(base.memory_mib * BASE_LOWER, base.memory_mib * BASE_UPPER)
        if gpus == Range():
            gpus = Range(base.gpus, base.gpus)
        if architectures is None:
            architectures = frozenset(base.architectures)
        if base.virtualization_types:
            virtualization = "hvm" if "hvm" in base.virtualization_types else base.virtualization_types[0]
    return Criteria(
        vcpus=vcpus,
        memory_mib=memory,
        gpus=gpus,
        vcpus_to_memory_ratio=request.vcpus_to_memory_ratio,
        burst_support=request.burst_support,
        architectures=architectures,
        virtualization_type=virtualization,
        current_generation=request.current_generation,
        hibernation_support=request.hibernation_support,
        usage_class=request.usage_class,
        allow_list=request.allow_list,
        deny_list=request.deny_list,
    )


def matches(instance_type: InstanceType, wanted: Criteria) -> bool:
    """Whether one type satisfies every criterion."""
    if not (
        wanted.vcpus.contains(instance_type.vcpus)
        and wanted.memory_mib.contains(instance_type.memory_mib)
        and wanted.gpus.contains(instance_type.gpus)
    ):
        return False
    if wanted.architectures is not None and wanted.architectures.isdisjoint(instance_type.architectures):
        return False
    if wanted.virtualization_type is not None and wanted.virtualization_type not in instance_type.virtualization_types:
        return False
    if wanted.usage_class is not None and wanted.usage_class not in instance_type.usage_classes:
        return False
    for flag, value in (
        (wanted.burst_support, instance_type.burst_support),
        (wanted.current_generation, instance_type.current_generation),
        (wanted.hibernation_support, instance_type.hibernation_support),
    ):
        if flag is not None and flag != value:
            return False
    if wanted.vcpus_to_memory_ratio is not None:
        if instance_type.vcpus <= 0:
            return False
        per_vcpu = instance_type.memory_mib / 1024 / instance_type.vcpus
        if not math.isclose(per_vcpu, wanted.vcpus_to_memory_ratio, rel_tol=RATIO_TOLERANCE):
            return False
    if wanted.allow_list is not None and not wanted.allow_list.search(instance_type.name):
        return False
    return wanted.deny_list is None or not wanted.deny_list.search(instance_type.name)


SORT_VALUES = {
    "name": lambda t: t.name,
    "vcpus": lambda t: t.vcpus,
    "memory": lambda t: t.memory_mib,
    "gpus": lambda t: t.gpus,
}


def select(
    catalog: list[InstanceType],
    wanted: Criteria,
    offered: set[str] | None = None,
    sort_by: str = "name",
    sort_direction: str = "ascending",
    max_results: int | None = None,
) -> list[InstanceType]:
    """The matching types (only those in ``offered`` when given), sorted (ties by name), at most ``max_results``."""
    found = [t for t in catalog if (offered is None or t.name in offered) and matches(t, wanted)]
    found.sort(key=lambda t: t.name)
    if sort_by != "name":
        found.sort(key=SORT_VALUES[sort_by], reverse=sort_direction == "descending")
    elif sort_direction == "descending":
        found.reverse()
    return found if max_results is None else found[:max_results]


def offered_everywhere(offerings: list[dict[str, Any]], zones: tuple[str, ...]) -> tuple[set[str], list[str]]:
    """Types offered in every zone, and the zones that offer nothing at all (unknown zones)."""
    by_zone: dict[str, set[str]] = {zone: set() for zone in zones}
    for offering in offerings:
        zone = offering.get("Location")
        if zone in by_zone:
            by_zone[zone].add(str(offering.get("InstanceType")))
    empty = [zone for zone in zones if not by_zone[zone]]
    common = set.intersection(*by_zone.values()) if by_zone else set()
    return common, empty


def mixed_instances_policy(types: list[InstanceType], instances_distribution: dict[str, Any]) -> dict[str, Any]:
    """The ``mixed_instances_policy`` option of amazon.aws.autoscaling_group, types in the selection's order."""
    return {"instance_types": [t.name for t in types], "instances_distribution": dict(instances_distribution)}


# --- reading the catalog ---------------------------------------------------------------------


def describe_instance_types(client: Any) -> list[InstanceType]:
    """The whole catalog of the client's region, in pages of 100 (the API maximum)."""
    found: list[InstanceType] = []
    request: dict[str, Any] = {"MaxResults": DESCRIBE_PAGE}
    while True:
        page = client.describe_instance_types(aws_retry=True, **request)
        found.extend(InstanceType.from_api(item) for item in page.get("InstanceTypes", []))
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


def describe_offerings(client: Any, zones: tuple[str, ...]) -> list[dict[str, Any]]:
    """The instance type offerings of the given Availability Zones."""
    found: list[dict[str, Any]] = []
    request: dict[str, Any] = {
        "LocationType": "availability-zone",
        "Filters": [{"Name": "location", "Values": list(zones)}],
        "MaxResults": OFFERINGS_PAGE,
    }
    while True:
        page = client.describe_instance_type_offerings(aws_retry=True, **request)
        found.extend(page.get("InstanceTypeOfferings", []))
        if not page.get("NextToken"):
            return found
        request["NextToken"] = page["NextToken"]


# --- the cache -------------------------------------------------------------------------------


def cache_path(cache_dir: str, region: str, endpoint_url: str | None) -> str:
    """One file per region and endpoint (a test endpoint never shares the real catalog's file)."""
    key = hashlib.sha256(f"{region}\n{endpoint_url or ''}".encode()).hexdigest()[:16]
    return os.path.join(os.path.expanduser(cache_dir), f"instance-types-{region}-{key}.json")


def load_cache(
    path: str, region: str, endpoint_url: str | None, ttl: float, now: float | None = None
) -> tuple[list[InstanceType], float] | None:
    """The cached catalog and its age in seconds; None when missing, stale, for another key or corrupt."""
    now = time.time() if now is None else now
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        if (
            document["version"] != CACHE_VERSION
            or document["region"] != region
            or document["endpoint_url"] != endpoint_url
        ):
            return None
        age = now - float(document["fetched_at"])
        if not 0 <= age < ttl:
            return None
        types = [InstanceType.from_dict(item) for item in document["instance_types"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (types, age) if types else None


def save_cache(
    path: str, region: str, endpoint_url: str | None, types: list[InstanceType], now: float | None = None
) -> None:
    """Write the catalog atomically: a temporary file in the same directory, then a rename over the old one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    document = {
        "version": CACHE_VERSION,
        "region": region,
        "endpoint_url": endpoint_url,
        "fetched_at": time.time() if now is None else now,
        "instance_types": [t.to_dict() for t in types],
    }
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".instance-types-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
