"""One benchmark run: a fresh world, a seeded fleet, a pipeline (ansible-rulebook) and a storm of Spot warnings.

The world runs in this process, so the poller (:class:`spotmax_world.pipeline.Storm`) reads its state
directly (no API requests, nothing counted): every ``POLL`` seconds it timestamps, per instance, when
its node was cordoned, drained (no evictable pod left), its Consul agent held no service any more, it
left its Auto Scaling group (replacement requested) and no message naming it was left on the queue
(acknowledged).
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import Any

from spotmax_world.fleet import seed_fleet
from spotmax_world.pipeline import BIN, MILESTONES, READY_TIMEOUT, Rulebook, Storm, rulebook_variables
from spotmax_world.world import World

__all__ = ["BASELINE_RULEBOOK", "BIN", "MILESTONES", "Pipeline", "run_once", "summarise"]

BENCH = pathlib.Path(__file__).resolve().parent
BASELINE_RULEBOOK = BENCH / "baseline" / "rulebook.yml"


@dataclass(frozen=True)
class Pipeline:
    name: str
    rulebook: str  # a path or spotmax.maxgroup.<name>
    timeout: float  # seconds from the storm until the run is given up


def _consul_counts(world: World) -> dict[str, int]:
    with world.consul.lock:
        return dict(world.consul.requests)


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
        variables = rulebook_variables(
            world,
            fleet,
            # the event source cordons Spot-warned nodes as it receives them, before the batch's playbook
            interruption_cordon_kubeconfig=str(world.kubeconfig),
            # what the naive baseline needs besides
            bench_kubeconfig=str(world.kubeconfig),
            bench_playbook=str(BENCH / "baseline" / "handle_event.yml"),
        )
        rulebook = Rulebook(
            world,
            collections,
            workdir,
            variables,
            rulebook=pipeline.rulebook,
            log=workdir / f"{pipeline.name}-rulebook.log",
        )
        rulebook.variables["bench_vars_file"] = str(rulebook.variables_file)  # so a playbook can load them all
        rulebook.start()
        try:
            ready = rulebook.wait_until_polling(READY_TIMEOUT)
            world.aws.clear_requests()
            world.kubernetes.reset_request_counts()
            with world.consul.lock:
                world.consul.requests.clear()
            storm = Storm(world, fleet)
            fired = storm.fire()
            storm.follow(rulebook, pipeline.timeout)
            elapsed = storm.elapsed
            counts = {
                "aws": world.aws.requests(),
                "kubernetes": world.kubernetes.request_counts(),
                "consul": _consul_counts(world),
            }
        finally:
            rulebook.stop()
    instances = storm.instances
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
        "rulebook_exit": rulebook.returncode,
        "rulebook_log": str(rulebook.log),
        "api_calls": counts,
        "instances": instances,
    }
    result["summary"] = summarise(result)
    if not result["finished"]:
        result["note"] = (
            f"did not finish in {pipeline.timeout:.0f} s ({result['summary']['handled']['count']} of {size} handled)"
        )
    return result
