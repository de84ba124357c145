"""The demo's storm: Spot interruption warnings for a whole managed group, handled by the collection's rulebook.

    make demo                                    # the demo playbook, then this with 20 instances
    PYTHONPATH=tests/world .venv/bin/python demo/storm.py [--size 20] [--timeout 180]

A fresh local world (AWS, Kubernetes API and Consul test doubles on 127.0.0.1) runs in this process.
It gets a managed Spot group of ``--size`` instances, each a Kubernetes node running 5 pods (every
third under a PodDisruptionBudget) and a Consul agent holding 2 services, an On-Demand standby
group at 0, and the interruption queue fed by EventBridge rules. ``ansible-rulebook -r
spotmax.maxgroup.handle_interruptions`` (the collection ``make install`` put in build/collections)
is started against it; once its event source polls the queue, one Spot interruption warning per
instance goes through EventBridge to the queue. A progress line every second, then a per-instance
summary read off the world, and the timeline plot.

Writes, under ``--output-dir`` (build/demo): rulebook.log (the rulebook and its playbooks),
storm.json (per instance: milestones in seconds after the storm, and the summary), timeline.png,
world.log (the world's servers' error reports). Exits 1 when the storm is not handled within
``--timeout`` seconds or the rulebook does not start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import sys
from typing import IO, Any

# The world (spotmax_world) and the benchmark's plot (report) live with the tests.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "bench"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "world"))

from report import plot

from spotmax_world.fleet import Fleet, seed_fleet
from spotmax_world.pipeline import (
    DEFAULT_RULEBOOK,
    MILESTONES,
    Rulebook,
    RulebookError,
    Storm,
    group_members,
    queue_notices,
    rulebook_variables,
)
from spotmax_world.world import World

ROOT = pathlib.Path(__file__).resolve().parents[1]
LABELS = {"acked": "acknowledged"}
LOOPBACK = ("http://127.0.0.1:", "https://127.0.0.1:")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="spotmax demo: a storm of Spot interruptions in the local world")
    parser.add_argument("--size", type=int, default=20, help="instances in the group, all interrupted (default 20)")
    parser.add_argument("--group", default="storm", help="the managed Spot group's name (default storm)")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds the storm may take to be handled (default 180)"
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        help="seconds ansible-rulebook may take to poll the queue (default 180)",
    )
    parser.add_argument("--output-dir", type=pathlib.Path, default=ROOT / "build" / "demo")
    parser.add_argument(
        "--collections",
        type=pathlib.Path,
        default=ROOT / "build" / "collections",
        help="where spotmax.maxgroup is installed (default build/collections, from `make install`)",
    )
    return parser.parse_args(argv)


def problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the command line, before anything starts."""
    found = []
    if args.size < 1:
        found.append(f"--size: {args.size} is not allowed; use 1 or more")
    for option in ("timeout", "startup_timeout"):
        if not getattr(args, option) > 0:
            found.append(f"--{option.replace('_', '-')}: {getattr(args, option)} is not allowed; use seconds above 0")
    if not (args.collections / "ansible_collections" / "spotmax" / "maxgroup").is_dir():
        found.append(f"--collections: no spotmax.maxgroup under {args.collections}; run `make install` first")
    return found


def label(milestone: str) -> str:
    return LABELS.get(milestone, milestone)


class Progress:
    """Prints ``storm  4.0 s: cordoned 20/20  drained 12/20 ...`` about once a second (``on_poll`` of Storm.follow)."""

    def __init__(self, out: IO[str], every: float = 1.0) -> None:
        self.out = out
        self.every = every
        self.next = every

    def __call__(self, storm: Storm) -> None:
        elapsed = storm.elapsed
        if elapsed >= self.next or storm.complete:
            self.line(storm, elapsed)
            while self.next <= elapsed:
                self.next += self.every

    def line(self, storm: Storm, elapsed: float) -> None:
        size = len(storm.fleet.instances)
        counts = "  ".join(f"{label(m)} {len(storm.reached[m])}/{size}" for m in MILESTONES)
        print(f"storm {elapsed:4.1f} s: {counts}", file=self.out, flush=True)


def _at(record: dict[str, float | None], milestone: str) -> str:
    value = record.get(milestone)
    return f"{value:.1f} s" if value is not None else "-"


def summarise(world: World, fleet: Fleet, storm: Storm) -> list[dict[str, Any]]:
    """Per instance, what the world shows now: cordon, pods evicted, services deregistered, replacement, ack."""
    nodes = world.kubernetes.node_states()
    bound: dict[str, set[str]] = {}
    for pod in world.kubernetes.list_objects("pods"):
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            bound.setdefault(node_name, set()).add(pod["metadata"]["name"])
    services = world.consul.services_by_agent()
    members = group_members(world, fleet.group)
    queued = queue_notices(world, fleet, {})
    rows = []
    for instance in fleet.instances:
        node = nodes.get(instance.node_name)
        pods_left = sorted(set(instance.pods) & bound.get(instance.node_name, set()))
        services_left = sorted(set(instance.services) & set(services.get(instance.node_name, [])))
        record = storm.instances.get(instance.instance_id, {})
        rows.append(
            {
                "instance_id": instance.instance_id,
                "node": instance.node_name,
                "cordoned": node is None or bool(node["unschedulable"]),
                "pods": len(instance.pods),
                "pods_evicted": len(instance.pods) - len(pods_left),
                "pods_left": pods_left,
                "services": len(instance.services),
                "services_deregistered": len(instance.services) - len(services_left),
                "services_left": services_left,
                "detached": instance.instance_id not in members,
                "acknowledged": instance.instance_id not in queued,
                "seconds": {m: record.get(m) for m in ("landed", *MILESTONES)},
            }
        )
    return rows


def groups_now(world: World, fleet: Fleet) -> dict[str, Any]:
    """The group, its standby group and the queue as AWS describes them after the storm."""
    autoscaling, sqs = world.aws.client("autoscaling"), world.aws.client("sqs")
    names = [fleet.group, *([fleet.standby_group] if fleet.standby_group else [])]
    described = {
        g["AutoScalingGroupName"]: g
        for g in autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"]
    }
    group = described[fleet.group]
    members = {i["InstanceId"] for i in group["Instances"]}
    found: dict[str, Any] = {
        "group": fleet.group,
        "desired_capacity": group["DesiredCapacity"],
        "instances": len(members),
        "launched": sorted(members - set(fleet.instance_ids)),
    }
    if fleet.standby_group:
        standby = described[fleet.standby_group]
        found["standby"] = {
            "group": fleet.standby_group,
            "desired_capacity": standby["DesiredCapacity"],
            "instances": len(standby["Instances"]),
        }
    attributes = sqs.get_queue_attributes(
        QueueUrl=fleet.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    found["queue_messages_left"] = sum(int(v) for v in attributes.values())
    return found


def print_summary(rows: list[dict[str, Any]], groups: dict[str, Any], size: int, out: IO[str]) -> None:
    header = ("instance", "node", "cordoned", "pods evicted", "services deregistered", "replacement", "acknowledged")
    table = [header]
    for row in rows:
        seconds = row["seconds"]
        table.append(
            (
                row["instance_id"],
                row["node"],
                f"yes {_at(seconds, 'cordoned')}" if row["cordoned"] else "no",
                f"{row['pods_evicted']}/{row['pods']}"
                + (f" {_at(seconds, 'drained')}" if not row["pods_left"] else f" ({len(row['pods_left'])} left)"),
                f"{row['services_deregistered']}/{row['services']}"
                + (f" {_at(seconds, 'deregistered')}" if not row["services_left"] else ""),
                f"detached {_at(seconds, 'replaced')}" if row["detached"] else "still in the group",
                f"yes {_at(seconds, 'acked')}" if row["acknowledged"] else "no",
            )
        )
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    print("\nper instance (times: seconds after the storm)", file=out)
    for number, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(), file=out)
        if number == 0:
            print("  ".join("-" * width for width in widths), file=out)
    launched = groups["launched"]
    print(
        f"\nreplacement: group {groups['group']} kept its desired capacity {groups['desired_capacity']} and launched"
        f" {len(launched)} instances in place of the detached ones ({groups['instances']} in service now)",
        file=out,
    )
    if "standby" in groups:
        standby = groups["standby"]
        print(
            f"replacement: standby group {standby['group']} scaled out to {standby['desired_capacity']}"
            f" ({standby['instances']} On-Demand instances)",
            file=out,
        )
    print(f"queue: {groups['queue_messages_left']} of {size} messages left", file=out)


def missing(storm: Storm) -> list[str]:
    size = len(storm.fleet.instances)
    return [f"{label(m)} {len(storm.reached[m])}/{size}" for m in MILESTONES if len(storm.reached[m]) < size]


def run(world: World, args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Seed the group in ``world`` (running in this process), storm it, report; the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    urls = (world.aws.url, world.kubernetes.url, world.consul.url)
    if not all(url.startswith(LOOPBACK) for url in urls):
        print(f"storm: the world must listen on 127.0.0.1 only, got {', '.join(urls)}", file=err)
        return 2
    output = pathlib.Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    for stale in ("rulebook.log", "storm.json", "timeline.png"):
        (output / stale).unlink(missing_ok=True)

    fleet = seed_fleet(world, args.size, name=args.group, standby_size=0)
    print(
        f"storm: managed Spot group {fleet.group} with {args.size} instances in the local world; each is a Kubernetes"
        f" node with {len(fleet.instances[0].pods)} pods (every third under a PodDisruptionBudget) and a Consul agent"
        f" with {len(fleet.instances[0].services)} services; standby group {fleet.standby_group} at 0",
        file=out,
        flush=True,
    )
    variables = rulebook_variables(world, fleet, interruption_cordon_kubeconfig=str(world.kubeconfig))
    rulebook = Rulebook(world, args.collections, output / "work", variables, log=output / "rulebook.log")
    print(f"storm: starting ansible-rulebook -r {DEFAULT_RULEBOOK} (log: {rulebook.log})", file=out, flush=True)
    storm = Storm(world, fleet)
    with rulebook.start():
        try:
            ready = rulebook.wait_until_polling(args.startup_timeout)
        except RulebookError as exc:
            print(f"storm: FAILED: {exc}", file=err, flush=True)
            return 1
        print(f"storm: the rulebook polls {fleet.queue_url} after {ready:.1f} s", file=out, flush=True)
        fired = storm.fire()
        print(
            f"storm: {len(fired['interrupted'])} Spot interruption warnings sent through EventBridge to the queue",
            file=out,
            flush=True,
        )
        progress = Progress(out)
        storm.follow(rulebook, args.timeout, on_poll=progress)
        exit_code = rulebook.returncode
    rows = summarise(world, fleet, storm)
    groups = groups_now(world, fleet)
    print_summary(rows, groups, args.size, out)

    run_record = {"pipeline": "spotmax", "size": args.size, "instances": storm.instances}
    plot([run_record], output / "timeline.png")
    (output / "storm.json").write_text(
        json.dumps({**run_record, "complete": storm.complete, "summary": rows, "groups": groups}, indent=2),
        encoding="utf-8",
    )
    print(f"\nstorm: timeline plot {output / 'timeline.png'}, figures {output / 'storm.json'}", file=out, flush=True)
    if not storm.complete:
        why = f"ansible-rulebook exited with {exit_code}" if exit_code is not None else f"within {args.timeout:.0f} s"
        print(
            f"storm: FAILED: the storm was not handled ({why}): {', '.join(missing(storm))};"
            f" rulebook log: {rulebook.log}",
            file=err,
            flush=True,
        )
        return 1
    handled = max(v for record in storm.instances.values() for m, v in record.items() if m in MILESTONES and v)
    print(f"storm: all {args.size} instances handled {handled:.1f} s after the storm", file=out, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    found = problems(args)
    if found:
        print("\n".join(f"storm: {problem}" for problem in found), file=sys.stderr)
        return 2
    args.output_dir.mkdir(parents=True, exist_ok=True)
    err = sys.stderr
    # The world's servers report connections that the stopped rulebook reset: keep them in a file.
    with (args.output_dir / "world.log").open("w", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        with World(args.output_dir / "world") as world:
            return run(world, args, err=err)


if __name__ == "__main__":
    sys.exit(main())
