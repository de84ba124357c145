# -*- coding: utf-8 -*-

# Copyright: Contributors to the spotmax.maxgroup project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""instance_selector against moto's EC2 catalog (the one the local world serves).

moto takes 10-20 s to serialise the whole catalog, so only two tests read it through
DescribeInstanceTypes; the others start from a cache file holding the same catalog, written from
moto's own data (test_cold_run_writes_the_cache_the_warm_tests_use proves the two are equal).
"""

from __future__ import annotations

import json
import os

import pytest
from moto.ec2.models.instance_types import INSTANCE_TYPES

from ansible_collections.spotmax.maxgroup.plugins.module_utils import instance_selector as isel
from ansible_collections.spotmax.maxgroup.plugins.modules import instance_selector

REGION = "us-east-1"
SEED = {
    "base_instance_type": "m5.xlarge",
    "burst_support": False,
    "deny_list": r"^?[1-3].*\..*",
    "gpus_max": 0,
    "usage_class": "spot",
    "max_results": 40,
}
# Everything moto's catalog holds with 4 vCPUs and 15-19 GiB, x86_64, hvm, no GPU, not burstable, spot,
# and no 1, 2 or 3 in the family name.
SEED_TYPES = [
    "m4.xlarge",
    "m5.xlarge",
    "m5a.xlarge",
    "m5ad.xlarge",
    "m5d.xlarge",
    "m5dn.xlarge",
    "m5n.xlarge",
    "m5zn.xlarge",
    "m6a.xlarge",
    "m6i.xlarge",
    "m6id.xlarge",
    "m6idn.xlarge",
    "m6in.xlarge",
    "m7a.xlarge",
    "m7i-flex.xlarge",
    "m7i.xlarge",
    "m8a.xlarge",
    "m8azn.xlarge",
    "m8i-flex.xlarge",
    "m8i.xlarge",
    "m8ib.xlarge",
    "m8id.xlarge",
    "m8idb.xlarge",
    "m8idn.xlarge",
    "m8in.xlarge",
    "m8ine.xlarge",
]


@pytest.fixture(name="moto_catalog", scope="module")
def moto_catalog_fixture():
    return [isel.InstanceType.from_api(data) for data in INSTANCE_TYPES.values()]


@pytest.fixture(name="warm_cache")
def warm_cache_fixture(tmp_path, moto_catalog):
    """A cache directory holding moto's catalog, fetched a minute ago."""
    directory = str(tmp_path / "warm")
    isel.save_cache(isel.cache_path(directory, REGION, None), REGION, None, moto_catalog)
    return directory


@pytest.fixture(name="run")
def run_fixture(run_module, aws, warm_cache):
    """The module against moto, reading the warm cache unless told otherwise."""

    def run(args, **kwargs):
        return run_module(instance_selector, {"cache_dir": warm_cache, "cache_ttl": 3600, **args}, **kwargs)

    return run


def selected(result):
    return [item["name"] for item in result["instance_types"]]


def test_cold_run_writes_the_cache_the_warm_tests_use(run, tmp_path, moto_catalog):
    cache_dir = str(tmp_path / "cold")
    path = isel.cache_path(cache_dir, REGION, None)
    os.makedirs(cache_dir)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"version": 1, "instance_types": [')  # corrupt: ignored, then rewritten
    result = run({**SEED, "cache_dir": cache_dir})
    assert result["changed"] is False
    assert result["catalog"] == {
        "source": "api",
        "size": len(INSTANCE_TYPES),
        "age_seconds": 0,
        "cache_file": path,
        "cache_written": True,
    }
    assert selected(result) == SEED_TYPES
    cached, _age = isel.load_cache(path, REGION, None, ttl=3600)
    assert sorted(cached, key=lambda t: t.name) == sorted(moto_catalog, key=lambda t: t.name)

    again = run({**SEED, "cache_dir": cache_dir})
    assert again["catalog"]["source"] == "cache"
    assert again["catalog"]["cache_written"] is False
    assert again["instance_types"] == result["instance_types"]


def test_check_mode_reads_the_api_but_writes_no_cache(run, tmp_path):
    cache_dir = tmp_path / "check"
    result = run({**SEED, "cache_dir": str(cache_dir)}, check_mode=True)
    assert result["changed"] is False
    assert result["catalog"]["source"] == "api"
    assert result["catalog"]["cache_written"] is False
    assert selected(result) == SEED_TYPES
    assert not cache_dir.exists()


def test_seed_selection_and_policy(run):
    result = run(SEED)
    assert result["catalog"]["source"] == "cache"
    assert selected(result) == SEED_TYPES
    m5 = next(item for item in result["instance_types"] if item["name"] == "m5.xlarge")
    assert (m5["vcpus"], m5["memory_mib"], m5["gpus"], m5["architectures"]) == (4, 16384, 0, ["x86_64"])
    assert all(item["vcpus"] == 4 and 14745 < item["memory_mib"] < 19661 for item in result["instance_types"])
    assert result["mixed_instances_policy"] == {
        "instance_types": SEED_TYPES,
        "instances_distribution": {
            "on_demand_base_capacity": 0,
            "on_demand_percentage_above_base_capacity": 0,
            "spot_allocation_strategy": "price-capacity-optimized",
        },
    }
    assert result["criteria"]["deny_list"] == r"[1-3].*\..*"


def test_base_type_alone_keeps_older_and_burstable_types(run):
    names = selected(run({"base_instance_type": "m5.xlarge", "max_results": 100}))
    assert {"m1.xlarge", "m3.xlarge", "t2.xlarge", "t3.xlarge", "m4.xlarge"} <= set(names)
    # Same size but another architecture or a GPU: not like the base.
    assert not {"m6g.xlarge", "t4g.xlarge", "g4dn.xlarge", "g6f.xlarge"} & set(names)


def test_availability_zones_keep_types_offered_in_every_zone(run):
    everywhere = run({**SEED, "availability_zones": [f"{REGION}a", f"{REGION}b"]})
    assert selected(everywhere) == SEED_TYPES
    # moto's us-east-1e (use1-az3) offers few types: of these only m4.xlarge.
    narrow = run({**SEED, "availability_zones": [f"{REGION}a", f"{REGION}e"]})
    assert selected(narrow) == ["m4.xlarge"]
    assert narrow["mixed_instances_policy"]["instance_types"] == ["m4.xlarge"]


def test_unknown_zone_fails_naming_the_field(run):
    result = run({**SEED, "availability_zones": [f"{REGION}a", f"{REGION}q"]})
    assert result["failed"] is True
    assert result["msg"].startswith(f"availability_zones: '{REGION}q' offers no instance type in region {REGION}")


def test_arm64_types_like_the_base(run):
    result = run({"base_instance_type": "m5.xlarge", "cpu_architecture": "arm64", "max_results": 100})
    names = selected(result)
    assert {"m6g.xlarge", "m7g.xlarge", "t4g.xlarge"} <= set(names)
    assert all("arm64" in item["architectures"] for item in result["instance_types"])
    assert all(item["vcpus"] == 4 for item in result["instance_types"])


def test_gpu_ranges(run):
    result = run({"gpus_min": 4, "gpus_max": 4, "cpu_architecture": "x86_64", "max_results": 100})
    assert result["instance_types"]
    assert {item["gpus"] for item in result["instance_types"]} == {4}
    assert {"g4dn.12xlarge", "g5.12xlarge"} <= set(selected(result))
    assert "g4dn.xlarge" not in selected(result)
    none = run({"vcpus_min": 4, "vcpus_max": 4, "gpus_max": 0, "max_results": 200})
    assert not {"g4dn.xlarge", "g5.xlarge", "g6f.xlarge"} & set(selected(none))


def test_max_results_and_sort(run):
    result = run({"cpu_architecture": "arm64", "sort_by": "vcpus", "sort_direction": "descending", "max_results": 5})
    vcpus = [item["vcpus"] for item in result["instance_types"]]
    assert len(vcpus) == 5
    assert vcpus == sorted(vcpus, reverse=True)
    arm64 = [t for t in INSTANCE_TYPES.values() if "arm64" in t["ProcessorInfo"]["SupportedArchitectures"]]
    assert vcpus[0] == max(t["VCpuInfo"]["DefaultVCpus"] for t in arm64)
    by_memory = run({**SEED, "sort_by": "memory", "max_results": 3})
    memory = [item["memory_mib"] for item in by_memory["instance_types"]]
    assert memory == sorted(memory)
    assert len(by_memory["mixed_instances_policy"]["instance_types"]) == 3


def test_ratio_and_memory_string(run):
    result = run({"vcpus_to_memory_ratio": "1:2", "memory_min": "16GB", "memory_max": "16GiB", "max_results": 100})
    assert result["instance_types"]
    assert all(item["memory_mib"] == 16384 and item["vcpus"] == 8 for item in result["instance_types"])
    assert "c5.2xlarge" in selected(result)


def test_on_demand_usage_class_sets_the_distribution(run):
    result = run({"vcpus_min": 96, "usage_class": "on-demand", "on_demand_base_capacity": 1, "max_results": 200})
    assert "hpc6a.48xlarge" in selected(result)  # on-demand only: never returned for spot
    assert result["mixed_instances_policy"]["instances_distribution"]["on_demand_percentage_above_base_capacity"] == 100
    assert result["mixed_instances_policy"]["instances_distribution"]["on_demand_base_capacity"] == 1
    assert "hpc6a.48xlarge" not in selected(run({"vcpus_min": 96, "max_results": 200}))


def test_unknown_base_type_fails_after_reading_the_catalog(run):
    result = run({"base_instance_type": "m5.xlarg"})
    assert result["failed"] is True
    assert result["msg"].startswith(f"base_instance_type: 'm5.xlarg' is not an instance type in region {REGION}")
    assert "m5.xlarge" in result["msg"]


def test_nothing_matches_warns(run):
    result = run({"allow_list": "^nothing"})
    assert result["instance_types"] == []
    assert result["mixed_instances_policy"]["instance_types"] == []
    assert "no instance type matches" in json.dumps(result["warnings"])


def test_more_than_40_types_warns(run):
    # ansible-core keeps warnings for the process: other tests' warnings may be there, never this one.
    assert "40 instance types selected" not in json.dumps(
        run({"cpu_architecture": "x86_64", "max_results": 40}).get("warnings", [])
    )
    result = run({"cpu_architecture": "x86_64", "max_results": 41})
    assert len(result["instance_types"]) == 41
    assert "41 instance types selected; an Auto Scaling group accepts at most 40" in json.dumps(result["warnings"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"deny_list": "*.metal"}, "deny_list: '*.metal' is not a valid regular expression"),
        ({"vcpus_min": 8, "vcpus_max": 2}, "vcpus_min: 8 exceeds vcpus_max (2)"),
        ({"memory_min": "lots"}, "memory_min: 'lots' is not allowed; use a number of MiB"),
        ({"vcpus_to_memory_ratio": "4GiB"}, "vcpus_to_memory_ratio: '4GiB' is not allowed"),
        ({"on_demand_percentage_above_base_capacity": 150}, "on_demand_percentage_above_base_capacity: 150"),
        ({"cache_ttl": -5}, "cache_ttl: -5 is not allowed"),
    ],
)
def test_validation_fails_before_any_api_call(run_module, tmp_path, args, message):
    # Nothing listens on this endpoint: a call would fail with a connection error instead.
    result = run_module(
        instance_selector, {"endpoint_url": "http://127.0.0.1:9", "cache_dir": str(tmp_path), "cache_ttl": 60, **args}
    )
    assert result["failed"] is True
    assert result["msg"].startswith(message)


def test_unreachable_endpoint_is_an_aws_error(run_module, tmp_path):
    result = run_module(instance_selector, {"endpoint_url": "http://127.0.0.1:9", "cache_dir": str(tmp_path)})
    assert result["failed"] is True
    assert result["msg"].startswith("Failed to read the EC2 instance type catalog")
    assert not os.listdir(tmp_path)
