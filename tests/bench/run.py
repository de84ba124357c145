"""The interruption benchmark: storms of Spot warnings through the local world, spotmax vs a naive baseline.

    PYTHONPATH=tests/world .venv/bin/python tests/bench/run.py                      # N = 10, 100, 500
    PYTHONPATH=tests/world .venv/bin/python tests/bench/run.py --sizes 10 --skip-baseline   # smoke

For each size N: a fresh world (one per child process: moto keeps its state in module globals) with
a fleet of N Spot instances (5 pods each, every third under a PodDisruptionBudget, 2 Consul services
each), the pipeline's ansible-rulebook started against it, then one storm of N interruption
warnings (EventBridge -> SQS). The collection runs from a tarball built from this checkout and
installed in a temporary collections path.

Writes ``build/bench/results.json`` and ``build/bench/timeline.png``; exits 1 when a spotmax run did
not finish within its bound (the baseline may time out: that is reported, not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from harness import BASELINE_RULEBOOK, Pipeline, run_once
from report import plot, ratios

from spotmax_world.pipeline import install_collection

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPOTMAX_RULEBOOK = "spotmax.maxgroup.handle_interruptions"


def child(args: argparse.Namespace) -> int:
    pipeline = Pipeline(args.pipeline, args.rulebook, args.timeout)
    result = run_once(pipeline, args.size, pathlib.Path(args.workdir), pathlib.Path(args.collections))
    pathlib.Path(args.output).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


def run_child(pipeline: Pipeline, size: int, workdir: pathlib.Path, collections: pathlib.Path) -> dict[str, Any]:
    output = workdir / f"{pipeline.name}-{size}.json"
    command = [
        sys.executable,
        __file__,
        "--child",
        "--pipeline",
        pipeline.name,
        "--rulebook",
        pipeline.rulebook,
        "--timeout",
        str(pipeline.timeout),
        "--size",
        str(size),
        "--workdir",
        str(workdir / f"{pipeline.name}-{size}"),
        "--collections",
        str(collections),
        "--output",
        str(output),
    ]
    print(f"bench: {pipeline.name} N={size} ...", flush=True)
    # Bounded: the run's own timeout, plus seeding and start-up.
    completed = subprocess.run(command, check=False, timeout=pipeline.timeout + 600)
    if completed.returncode != 0 or not output.exists():
        return {"pipeline": pipeline.name, "size": size, "error": f"benchmark child exited with {completed.returncode}"}
    result: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    summary = result["summary"]
    print(
        f"bench: {pipeline.name} N={size}: handled {summary['handled']['count']}/{size}"
        f" all in {summary['handled']['all_s']} s, first cordon {summary['first_cordon_after_first_notice_s']} s"
        f" after the first notice, calls/instance {summary['api_calls_per_instance']}",
        flush=True,
    )
    return result


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="spotmax interruption benchmark")
    parser.add_argument("--sizes", default="10,100,500", help="comma-separated storm sizes (default 10,100,500)")
    parser.add_argument("--skip-baseline", action="store_true", help="run the spotmax pipeline only")
    parser.add_argument("--rulebook", default=SPOTMAX_RULEBOOK, help="spotmax rulebook: a path or FQCN")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a spotmax run may take (default 120)")
    parser.add_argument("--baseline-timeout", type=float, default=300.0, help="seconds a baseline run may take")
    parser.add_argument("--baseline-max-size", type=int, default=100, help="largest N the baseline runs (default 100)")
    parser.add_argument("--output-dir", default=str(ROOT / "build" / "bench"))
    # internal: one run in a child process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--collections", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        return child(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1:
        print(f"--sizes: {args.sizes!r} is not allowed; use positive integers such as 10,100,500", file=sys.stderr)
        return 2
    out = pathlib.Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    spotmax = Pipeline("spotmax", args.rulebook, args.timeout)
    baseline = Pipeline("baseline", str(BASELINE_RULEBOOK), args.baseline_timeout)
    runs: list[dict[str, Any]] = []
    # Scratch space (world files, rulebook logs, the installed collection) kept for post-mortems.
    workdir = out / "work"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    collections = install_collection(ROOT, workdir)
    for size in sizes:
        runs.append(run_child(spotmax, size, workdir, collections))
        if not args.skip_baseline and size <= args.baseline_max_size:
            runs.append(run_child(baseline, size, workdir, collections))
    results = {
        "machine": {"cpus": _cpus(), "python": sys.version.split()[0]},
        "targets": {"all_handled_s_at_500": 60, "first_cordon_s": 3, "throughput_ratio_at_100": 10},
        "runs": runs,
        "throughput_ratio": ratios(runs),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    plot(runs, out / "timeline.png")
    print(f"bench: ratios {results['throughput_ratio']}; wrote {out / 'results.json'} and {out / 'timeline.png'}")
    failed = [r for r in runs if r["pipeline"] == "spotmax" and not r.get("finished")]
    return 1 if failed else 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
