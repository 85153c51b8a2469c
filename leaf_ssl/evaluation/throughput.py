"""Each trained run's speed, from its `metrics.jsonl`: the table's throughput section."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_throughputs(paths: list[str | Path]) -> list[dict]:
    """Per run folder among `paths` (searched recursively for `metrics.jsonl`): its last step and the median
    crops per second of its log intervals (the whole loop, input included; the first step's compile is
    outside every interval)."""
    runs = []
    for path in map(Path, paths):
        for metrics in sorted(path.rglob("metrics.jsonl")) if path.is_dir() else []:
            lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            speeds = [line["crops_per_second"] for line in lines if "crops_per_second" in line]
            if speeds:
                runs.append({"run": metrics.parent.name, "steps": max(line["step"] for line in lines),
                             "crops_per_second": float(np.median(speeds)), "intervals": len(speeds)})
    return runs


def throughput_markdown(runs: list[dict]) -> str:
    lines = ["## Training throughput", "", "Median over the log intervals of each run (the whole loop, input "
             "included; compiling is outside them).", "", "| run | steps | crops/s | intervals |", "|---|---|---|---|"]
    lines += [f"| {run['run']} | {run['steps']} | {run['crops_per_second']:.1f} | {run['intervals']} |" for run in runs]
    return "\n".join(lines) + "\n"
