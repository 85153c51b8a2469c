"""Assembles probe results into the paper's table: rows frontend x init x training, columns tasks.

    python -m leaf_ssl.tables runs/*/probes probes/ --out results/table

Arguments are probe result JSON files (`<task>.json` written by `python -m leaf_ssl.probe`) or
folders searched recursively for them. Each cell is the task's metric (accuracy, or mAP for
multi-label tasks) in percent, mean +/- std over probe seeds; `average` is the mean of a row's
task means, left empty when the row lacks a task (an average over different tasks would not
compare). When two results share a row and a task, the newest file wins, with a warning.
Writes `<out>.md` and `<out>.csv` when --out is given; prints the markdown either way.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

FRONTEND_ORDER = ("mel", "sincnet", "sincnet_plus", "leaf")
INIT_ORDER = ("-", "mel", "random")
TRAINING_ORDER = ("untrained", "supervised", "self-supervised")
ROW_KEYS = ("frontend", "init", "training")


def find_results(paths: list[str | Path]) -> list[Path]:
    """Probe result files among `paths` (files, or folders searched recursively)."""
    found = []
    for path in map(Path, paths):
        candidates = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        found += [candidate for candidate in candidates if _is_probe_result(candidate)]
    return found


def _is_probe_result(path: Path) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"model", "task", "mean", "per_seed"} <= set(data)


def _order(value: str, order: tuple[str, ...]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


def _training_order(training: str) -> tuple:
    """A row's place by training; a re-estimated BatchNorm variant ('untrained, BN re-estimated')
    right after its plain row."""
    base, _, variant = training.partition(", ")
    return (*_order(base, TRAINING_ORDER), variant)


def assemble(results: list[dict]) -> tuple[list[str], list[dict]]:
    """(task names, rows); each row: frontend, init, training, {task: result}, average or None."""
    cells: dict[tuple, dict] = {}
    for result in sorted(results, key=lambda r: r.get("_mtime", 0)):
        row = tuple(result["model"][key] for key in ROW_KEYS)
        task = result["task"]["name"]
        if task in cells.setdefault(row, {}):
            logger.warning("two results for %s on %s: using the newer (%s)", "/".join(row), task,
                           result["model"].get("checkpoint"))
        cells[row][task] = result
    task_names = sorted({task for row in cells.values() for task in row})
    rows = []
    for row in sorted(cells, key=lambda r: (_order(r[0], FRONTEND_ORDER), _order(r[1], INIT_ORDER),
                                             _training_order(r[2]))):
        by_task = cells[row]
        average = (sum(by_task[task]["mean"] for task in task_names) / len(task_names)
                   if all(task in by_task for task in task_names) else None)
        rows.append(dict(zip(ROW_KEYS, row), results=by_task, average=average))
    return task_names, rows


def _cell(result: dict | None) -> str:
    if result is None:
        return ""
    return f"{100 * result['mean']:.1f} ± {100 * result['std']:.1f}"


def to_markdown(task_names: list[str], rows: list[dict]) -> str:
    metrics = {task: next(row["results"][task]["metric"] for row in rows if task in row["results"]) for task in task_names}
    header = ["frontend", "init", "training", *(f"{task} ({metrics[task]})" for task in task_names), "average"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        average = "" if row["average"] is None else f"{100 * row['average']:.1f}"
        cells = [row[key] for key in ROW_KEYS] + [_cell(row["results"].get(task)) for task in task_names] + [average]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(task_names: list[str], rows: list[dict]) -> str:
    """One row per table row: mean and std (fractions, not percent) per task, and the average."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ROW_KEYS, *(f"{task}_{stat}" for task in task_names for stat in ("mean", "std")), "average"])
    for row in rows:
        values = []
        for task in task_names:
            result = row["results"].get(task)
            values += [f"{result['mean']:.6f}", f"{result['std']:.6f}"] if result else ["", ""]
        writer.writerow([*(row[key] for key in ROW_KEYS), *values,
                         "" if row["average"] is None else f"{row['average']:.6f}"])
    return buffer.getvalue()


def load_results(paths: list[str | Path]) -> list[dict]:
    results = []
    for path in find_results(paths):
        result = json.loads(path.read_text())
        result["_mtime"] = path.stat().st_mtime
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.tables", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="probe result JSON files or folders holding them")
    parser.add_argument("--out", help="write <out>.md and <out>.csv")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        sys.exit(f"error: no probe result JSON found in {args.results}")
    task_names, rows = assemble(results)
    markdown = to_markdown(task_names, rows)
    print(markdown)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(markdown)
        out.with_suffix(".csv").write_text(to_csv(task_names, rows))


if __name__ == "__main__":
    main()
