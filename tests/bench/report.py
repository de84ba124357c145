"""The benchmark's figures: throughput ratios and the timeline plot."""

from __future__ import annotations

import pathlib
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from harness import MILESTONES

STYLES = {"spotmax": "-", "baseline": "--"}
COLOURS = {
    "cordoned": "tab:blue",
    "drained": "tab:orange",
    "deregistered": "tab:green",
    "replaced": "tab:purple",
    "acked": "tab:red",
}


def ratios(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """spotmax throughput / baseline throughput (instances handled per second) for every size both ran."""
    by_key = {(r["pipeline"], r["size"]): r for r in runs if "summary" in r}
    found: dict[str, float | None] = {}
    for (pipeline, size), run in sorted(by_key.items()):
        other = by_key.get(("baseline", size))
        if pipeline != "spotmax" or other is None:
            continue
        mine, theirs = run["summary"]["throughput_per_s"], other["summary"]["throughput_per_s"]
        found[str(size)] = round(mine / theirs, 1) if mine and theirs else None
    return found


def _curve(times: list[float]) -> tuple[list[float], list[int]]:
    ordered = sorted(times)
    return [0.0, *ordered], [0, *range(1, len(ordered) + 1)]


def plot(runs: list[dict[str, Any]], target: pathlib.Path) -> None:
    """Per size, instances that reached each milestone over time since the storm (spotmax solid, baseline dashed)."""
    sizes = sorted({r["size"] for r in runs if "instances" in r})
    if not sizes:
        return
    figure, axes = plt.subplots(len(sizes), 1, figsize=(10, 3.6 * len(sizes)), squeeze=False)
    for row, size in enumerate(sizes):
        axis = axes[row][0]
        for run in (r for r in runs if r.get("size") == size and "instances" in r):
            for milestone in MILESTONES:
                times = [i[milestone] for i in run["instances"].values() if i.get(milestone) is not None]
                xs, ys = _curve(times)
                axis.step(
                    xs,
                    ys,
                    where="post",
                    linestyle=STYLES.get(run["pipeline"], ":"),
                    color=COLOURS[milestone],
                    label=f"{run['pipeline']} {milestone}",
                )
        axis.set_title(f"N = {size}: instances past each step, seconds after the storm")
        axis.set_xlabel("seconds")
        axis.set_ylabel("instances")
        axis.set_ylim(0, size * 1.05)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2, loc="lower right")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
