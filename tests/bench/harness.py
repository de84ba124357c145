"""One benchmark run: a fresh world, a seeded fleet, a pipeline (ansible-rulebook) and a storm of Spot warnings.

The world runs in this process, so the poller reads its state directly (no API requests, nothing
counted): every ``POLL`` seconds it timestamps, per instance, when its node was cordoned, drained
(no evictable pod left), its Consul agent held no service any more, it left its Auto Scaling group
(replacement requested) and no message naming it was left on the queue (acknowledged).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.sqs.models import sqs_backends

from spotmax_world.fleet import Fleet, seed_fleet
from spotmax_world.moto_ext.runtime import RUNTIME
from spotmax_world.world import World

MILESTONES = ("cordoned", "drained", "deregistered", "replaced", "acked")
POLL = 0.1
READY_TIMEOUT = 180.0
BIN = pathlib.Path(sys.executable).parent
BENCH = pathlib.Path(__file__).resolve().parent
BASELINE_RULEBOOK = BENCH / "baseline" / "rulebook.yml"


@dataclass(frozen=True)
class Pipeline:
    name: str
    rulebook: str  # a path or spotmax.maxgroup.<name>
    timeout: float  # seconds from the storm until the run is given up


def _queue_notices(world: World, fleet: Fleet, cache: dict[str, str]) -> dict[str, float]:
    """Instance id -> earliest SentTimestamp (s) of the messages on the queue that name it."""
    name = fleet.queue_url.rsplit("/", 1)[-1]
    with RUNTIME.lock:
        messages = list(sqs_backends[world.aws.account_id][world.aws.region].get_queue(name)._messages)
    found: dict[str, float] = {}
    for message in messages:
        if message.id not in cache:
            try:
                cache[message.id] = str(json.loads(message.body).get("detail", {}).get("instance-id", ""))
            except ValueError:
                cache[message.id] = ""
        instance_id = cache[message.id]
        sent = float(message.sent_timestamp or 0) / 1000
        found[instance_id] = min(sent, found.get(instance_id, sent))
    return found


def _group_members(world: World, group: str) -> set[str]:
    with RUNTIME.lock:
        found = autoscaling_backends[world.aws.account_id][world.aws.region].autoscaling_groups.get(group)
        return {s.instance.id for s in found.instance_states} if found is not None else set()


def _consul_counts(world: World) -> dict[str, int]:
    with world.consul.lock:
        return dict(world.consul.requests)


def _snapshot(world: World, fleet: Fleet, cache: dict[str, str]) -> dict[str, set[str]]:
    """Instance ids that reached each milestone now."""
    nodes = world.kubernetes.node_states()
    services = world.consul.services_by_agent()
    members = _group_members(world, fleet.group)
    queued = _queue_notices(world, fleet, cache)
    reached: dict[str, set[str]] = {m: set() for m in MILESTONES}
    for instance in fleet.instances:
        node = nodes.get(instance.node_name)
        if node is None or node["unschedulable"]:
            reached["cordoned"].add(instance.instance_id)
        if node is None or node["pods"] == 0:
            reached["drained"].add(instance.instance_id)
        if not set(services.get(instance.node_name, [])) & set(instance.services):
            reached["deregistered"].add(instance.instance_id)
        if instance.instance_id not in members:
            reached["replaced"].add(instance.instance_id)
        if instance.instance_id not in queued:
            reached["acked"].add(instance.instance_id)
    return reached


def _write_inputs(world: World, fleet: Fleet, workdir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    env = world.environment()
    variables = {
        "interruption_queue_url": fleet.queue_url,
        "interruption_region": env["AWS_REGION"],
        "interruption_endpoint_url": env["AWS_ENDPOINT_URL"],
        "interruption_consul_agent_addresses": fleet.consul_agent_addresses,
        # the event source cordons Spot-warned nodes as it receives them, before the batch's playbook
        "interruption_cordon_kubeconfig": str(world.kubeconfig),
        # what the naive baseline needs besides
        "bench_kubeconfig": str(world.kubeconfig),
        "bench_playbook": str(BENCH / "baseline" / "handle_event.yml"),
    }
    variables_file = workdir / "vars.json"
    variables["bench_vars_file"] = str(variables_file)  # so a playbook can load them all (vars_files)
    variables_file.write_text(json.dumps(variables, indent=2), encoding="utf-8")
    inventory = workdir / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n",
        encoding="utf-8",
    )
    return variables_file, inventory


def _wait_until_polling(world: World, process: subprocess.Popen[bytes], log: pathlib.Path) -> float:
    """Seconds until the pipeline's event source made its first ReceiveMessage (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < READY_TIMEOUT:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"ansible-rulebook exited with {process.returncode} before polling:\n{tail}")
        if world.aws.requests().get("sqs:ReceiveMessage"):
            return time.monotonic() - started
        time.sleep(POLL)
    raise RuntimeError(f"ansible-rulebook did not poll the queue within {READY_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # its own session: ansible-rulebook, java and playbooks
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[rank], 3)


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Per milestone: how many, time until all (from the storm), p50/p99 per instance (from its notice)."""
    size = result["size"]
    per_instance = result["instances"]
    summary: dict[str, Any] = {}
    for milestone in (*MILESTONES, "handled"):
        since_storm = [i[milestone] for i in per_instance.values() if i.get(milestone) is not None]
        since_notice = [
            i[milestone] - i["landed"]
            for i in per_instance.values()
            if i.get(milestone) is not None and i.get("landed") is not None
        ]
        summary[milestone] = {
            "count": len(since_storm),
            "all_s": round(max(since_storm), 3) if len(since_storm) == size else None,
            "first_s": round(min(since_storm), 3) if since_storm else None,
            "p50_s": _percentile(since_notice, 0.5),
            "p99_s": _percentile(since_notice, 0.99),
        }
    landed = [i["landed"] for i in per_instance.values() if i.get("landed") is not None]
    cordons = [i["cordoned"] for i in per_instance.values() if i.get("cordoned") is not None]
    summary["first_cordon_after_first_notice_s"] = round(min(cordons) - min(landed), 3) if cordons and landed else None
    handled = summary["handled"]["count"]
    elapsed = summary["handled"]["all_s"] or result["elapsed_s"]
    summary["throughput_per_s"] = round(handled / elapsed, 3) if elapsed else None
    calls = {
        service: sum(counts.values()) for service, counts in result["api_calls"].items() if isinstance(counts, dict)
    }
    summary["api_calls_per_instance"] = {service: round(total / size, 2) for service, total in calls.items()}
    return summary


def run_once(pipeline: Pipeline, size: int, workdir: pathlib.Path, collections: pathlib.Path) -> dict[str, Any]:
    """Seed a fleet of ``size``, start ``pipeline``, fire the storm, poll until handled or timed out."""
    workdir.mkdir(parents=True, exist_ok=True)
    with World(workdir / "world") as world:
        seeding = time.monotonic()
        fleet = seed_fleet(world, size, name="bench")
        seeding = time.monotonic() - seeding
        variables, inventory = _write_inputs(world, fleet, workdir)
        env = {
            **os.environ,
            **world.environment(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "ANSIBLE_NOCOLOR": "1",
        }
        log = workdir / f"{pipeline.name}-rulebook.log"
        command = [
            str(BIN / "ansible-rulebook"),
            "-r",
            pipeline.rulebook,
            "-i",
            str(inventory),
            "--vars",
            str(variables),
        ]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, env=env, cwd=workdir, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            ready = _wait_until_polling(world, process, log)
            world.aws.clear_requests()
            world.kubernetes.reset_request_counts()
            with world.consul.lock:
                world.consul.requests.clear()
            cache: dict[str, str] = {}
            storm = time.time()
            fired = world.aws.interrupt(fleet.instance_ids)
            landed = _queue_notices(world, fleet, cache)
            instances: dict[str, dict[str, float | None]] = {
                i: {"landed": round(landed[i] - storm, 3) if i in landed else None} for i in fleet.instance_ids
            }
            deadline = storm + pipeline.timeout
            while True:
                now = time.time()
                reached = _snapshot(world, fleet, cache)
                for milestone, ids in reached.items():
                    for instance_id in ids:
                        instances[instance_id].setdefault(milestone, round(now - storm, 3))
                if all(len(ids) == size for ids in reached.values()) or now > deadline or process.poll() is not None:
                    break
                time.sleep(POLL)
            elapsed = time.time() - storm
            counts = {
                "aws": world.aws.requests(),
                "kubernetes": world.kubernetes.request_counts(),
                "consul": _consul_counts(world),
            }
        finally:
            _stop(process)
    for record in instances.values():
        done = [record.get(m) for m in MILESTONES]
        record["handled"] = max(v for v in done if v is not None) if all(v is not None for v in done) else None
    result: dict[str, Any] = {
        "pipeline": pipeline.name,
        "rulebook": pipeline.rulebook,
        "size": size,
        "seeding_s": round(seeding, 3),
        "pipeline_ready_s": round(ready, 3),
        "interrupted": len(fired["interrupted"]),
        "timeout_s": pipeline.timeout,
        "elapsed_s": round(elapsed, 3),
        "finished": all(r["handled"] is not None for r in instances.values()),
        "rulebook_exit": process.returncode,
        "rulebook_log": str(log),
        "api_calls": counts,
        "instances": instances,
    }
    result["summary"] = summarise(result)
    if not result["finished"]:
        result["note"] = (
            f"did not finish in {pipeline.timeout:.0f} s ({result['summary']['handled']['count']} of {size} handled)"
        )
    return result
