"""Timing of instance_selector over the whole catalog of the local world (a measurement, not a timed test).

    PYTHONPATH=tests/world .venv/bin/python -m spotmax_world exec -- .venv/bin/python tests/bench/instance_selector.py

Measures, against the world's EC2 (moto server, us-east-1, ~1,400 types):

- ``describe``: reading the catalog with DescribeInstanceTypes (pages of 100 asked) and reducing it to records;
  this is the emulator's serialisation speed, not AWS's;
- ``filter``: validation + base-type rules + filters + sort for the kOps tutorial's selection, over the
  whole catalog (median of repeated runs);
- ``cache_write`` / ``cache_read``: writing and reading the cache file (median);
- ``module_cold`` / ``module_warm``: the module run end to end by ``ansible localhost -m`` (Python start-up,
  imports and result included), first with an empty cache directory, then with the cache it wrote;
  ``ansible_ping``: the same command with ansible.builtin.ping, the floor of any module run.

Prints one JSON document; docs/performance.md records the figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import boto3

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
SPEC = importlib.util.spec_from_file_location("isel", ROOT / "plugins/module_utils/instance_selector.py")
assert SPEC is not None and SPEC.loader is not None
isel = importlib.util.module_from_spec(SPEC)
sys.modules["isel"] = isel  # dataclasses look their module up
SPEC.loader.exec_module(isel)

SEED = {
    "base_instance_type": "m5.xlarge",
    "burst_support": False,
    "deny_list": r"^?[1-3].*\..*",
    "gpus_max": 0,
    "usage_class": "spot",
    "max_results": 20,
}
REPEAT = 50


class Retrying:
    """The module passes ``aws_retry=True`` to its retry-wrapped client; a plain client does not take it."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def describe_instance_types(self, aws_retry: bool, **request: Any) -> Any:
        return self.client.describe_instance_types(**request)


def median_seconds(function: Any, repeat: int = REPEAT) -> float:
    samples = []
    for _attempt in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def select(catalog: list[Any]) -> list[Any]:
    request = isel.validate(SEED)
    wanted = isel.criteria(request, {t.name: t for t in catalog})
    return isel.select(catalog, wanted, None, request.sort_by, request.sort_direction, request.max_results)


def run_module(
    collections: pathlib.Path, cache_dir: str, module: str = "spotmax.maxgroup.instance_selector"
) -> tuple[float, dict[str, Any]]:
    args: dict[str, Any] = {}
    if module.endswith("instance_selector"):
        args = {**SEED, "cache_dir": cache_dir, "cache_ttl": 3600, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    env["ANSIBLE_STDOUT_CALLBACK"] = "json"
    command = [
        str(BIN / "ansible"),
        "localhost",
        "-m",
        module,
        *(["-a", json.dumps(args)] if args else []),
        "-e",
        f"ansible_python_interpreter={sys.executable}",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the module failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return elapsed, result


def main() -> int:
    if "AWS_ENDPOINT_URL" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    client = boto3.client("ec2")
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        catalog = isel.describe_instance_types(Retrying(client))
        describe = time.perf_counter() - start
        chosen = select(catalog)
        path = isel.cache_path(os.path.join(work, "cache"), "us-east-1", None)
        write = median_seconds(lambda: isel.save_cache(path, "us-east-1", None, catalog), 10)
        read = median_seconds(lambda: isel.load_cache(path, "us-east-1", None, 3600), 10)

        collections = pathlib.Path(work) / "collections"
        (collections / "ansible_collections" / "spotmax").mkdir(parents=True)
        (collections / "ansible_collections" / "spotmax" / "maxgroup").symlink_to(ROOT)
        module_cache = os.path.join(work, "module-cache")
        cold, cold_result = run_module(collections, module_cache)
        warm, warm_result = run_module(collections, module_cache)
        ping, _result = run_module(collections, module_cache, "ansible.builtin.ping")

    figures = {
        "catalog_types": len(catalog),
        "selected": [t.name for t in chosen],
        "describe_seconds": round(describe, 3),
        "filter_seconds": round(median_seconds(lambda: select(catalog)), 5),
        "cache_write_seconds": round(write, 4),
        "cache_read_seconds": round(read, 4),
        "module_cold_seconds": round(cold, 2),
        "module_cold_source": cold_result["catalog"]["source"],
        "module_warm_seconds": round(warm, 2),
        "module_warm_source": warm_result["catalog"]["source"],
        "ansible_ping_seconds": round(ping, 2),
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
