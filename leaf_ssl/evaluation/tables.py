"""Assembles probe results into the paper's table: rows frontend x init x training, columns tasks.

Inputs are probe result JSON files (`<task>.json` written by `python -m leaf_ssl.probe`) or
folders searched recursively for them. Each cell is the task's metric (accuracy, or mAP for
multi-label tasks) in percent, mean +/- std over probe seeds; `average` is the mean of a row's
task means, left empty when the row lacks a task (an average over different tasks would not
compare). When two results share a row and a task, the newest file wins, with a warning.
A row's results from several training seeds (the `seed` of each result's model) are one cell: the
mean ± sample std of the seeds' means; a row of one seed shows its probe seeds' spread.
`--rows run` keys rows by the run a checkpoint came from instead of frontend and init (a recipe
search: many runs of one frontend), and adds the row's participation ratio (`dims`: the
effective number of dimensions of the probed embeddings, mean over its tasks).
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

from leaf_ssl.frontends.factory import FRONTENDS
from leaf_ssl.inference.frozen_model import BATCH_NORM_AS_SAVED, RANDOM_PREFIX

logger = logging.getLogger(__name__)

INIT_ORDER = ("-", "mel", "random")
TRAINING_ORDER = ("untrained", "supervised", "self-supervised")
ROW_KEYS = ("frontend", "init", "training")
RUN_ROW_KEYS = ("run", "training")


def run_name(model: dict) -> str:
    """The run a result's checkpoint came from: its workdir's name (`<run>/checkpoints/<step>`),
    the same for its `random:<run>` floor."""
    source = model["checkpoint"]
    if source.startswith(RANDOM_PREFIX):
        return Path(source[len(RANDOM_PREFIX):].split(":")[0]).name
    path = Path(source)
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.name


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


def _training_facts(model: dict) -> tuple[str, bool, bool, str]:
    """(training, BatchNorm statistics re-estimated, frontend features only, evaluator) of a result's model."""
    # Results written before the variants were fields carry them in `training` too ('untrained, BN
    # re-estimated'): the fields say them again.
    training = model["training"].split(", ")[0]
    re_estimated = model.get("batch_norm", BATCH_NORM_AS_SAVED) != BATCH_NORM_AS_SAVED
    return training, re_estimated, model.get("features", "encoder") == "frontend", model.get("evaluator", "linear")


def _label(training: str, re_estimated: bool, frontend_only: bool, evaluator: str = "linear") -> str:
    variants = ((["BN re-estimated"] if re_estimated else []) + (["frontend only"] if frontend_only else [])
                + ([evaluator] if evaluator != "linear" else []))  # the paper's probe is the plain row
    return ", ".join([training, *variants])


def row_label(model: dict) -> str:
    """A row's training column: the training, then the probe's variant where it is not the plain
    one, e.g. 'untrained, BN re-estimated', 'self-supervised, frontend only' or 'self-supervised, knn'."""
    return _label(*_training_facts(model))


def _row(model: dict, by_run: bool) -> tuple:
    """A result's row, by its model's facts: (run or frontend, init), then training, re-estimated, frontend only.
    A run is its id where the checkpoint has one (a copied or moved run is still one row), else its name."""
    head = (model.get("run_id") or run_name(model),) if by_run else (model["frontend"], model["init"])
    return (*head, *_training_facts(model))


def _row_order(row: tuple, by_run: bool, names: dict) -> tuple:
    # A variant ('untrained, BN re-estimated') right after its plain row.
    *head, training, re_estimated, frontend_only, evaluator = row
    head_order = (names[head[0]],) if by_run else (_order(head[0], tuple(FRONTENDS)), _order(head[1], INIT_ORDER))
    return (*head_order, _order(training, TRAINING_ORDER), frontend_only, re_estimated, evaluator != "linear", evaluator)


def _combined(by_seed: dict) -> dict:
    """One cell from a row's results of one task, one per training seed: the single result as it is
    (± over its probe seeds), or the mean ± sample std of the seeds' means (± over training seeds)."""
    results = list(by_seed.values())
    if len(results) == 1:
        return {**results[0], "spread": "probe seeds"}
    means = [result["mean"] for result in results]
    mean = sum(means) / len(means)
    std = (sum((value - mean) ** 2 for value in means) / (len(means) - 1)) ** 0.5
    return {"metric": results[0]["metric"], "mean": mean, "std": std, "per_training_seed": means,
            "spread": "training seeds"}


def assemble(results: list[dict], by_run: bool = False) -> tuple[list[str], list[dict]]:
    """(task names, rows); each row: its keys (frontend, init, training; or run, training when
    `by_run`), {task: cell}, average or None, dims (mean participation ratio) or None, seeds (the
    training seeds' results: {seed: {task: result}}). A cell is `_combined` over the training seeds."""
    keys = RUN_ROW_KEYS if by_run else ROW_KEYS
    cells: dict[tuple, dict] = {}
    names = {}  # a run's row head -> its name, as the newest result of it has it
    for result in sorted(results, key=lambda r: r.get("_mtime", 0)):
        row = _row(result["model"], by_run)
        names[row[0]] = run_name(result["model"]) if by_run else row[0]
        task = result["task"]["name"]
        seed = result["model"].get("seed")  # results written before seeds were recorded: one seed
        if seed in cells.setdefault(row, {}).setdefault(task, {}):
            logger.warning("two results for %s on %s%s: using the newer (%s)", "/".join(map(str, row)), task,
                           "" if seed is None else f" with training seed {seed}", result["model"].get("checkpoint"))
        cells[row][task][seed] = result
    task_names = sorted({task for row in cells.values() for task in row})
    rows = []
    for row in sorted(cells, key=lambda r: _row_order(r, by_run, names)):
        by_task = {task: _combined(by_seed) for task, by_seed in cells[row].items()}
        average = (sum(by_task[task]["mean"] for task in task_names) / len(task_names)
                   if all(task in by_task for task in task_names) else None)
        ratios = [result["embedding"]["participation_ratio"] for by_seed in cells[row].values()
                  for result in by_seed.values() if "participation_ratio" in result.get("embedding", {})]
        dims = sum(ratios) / len(ratios) if ratios else None
        seeds: dict = {}
        for task, by_seed in cells[row].items():
            for seed, result in by_seed.items():
                seeds.setdefault(seed, {})[task] = result
        *head, training, re_estimated, frontend_only, evaluator = row
        shown = (names[head[0]], *head[1:], _label(training, re_estimated, frontend_only, evaluator))
        rows.append(dict(zip(keys, shown), keys=keys, results=by_task, average=average, dims=dims, seeds=seeds))
    return task_names, rows


def seed_values(row: dict, task_names: list[str]) -> dict[str, list[float]]:
    """Per task, and 'average' (of the seeds with every task), the row's value for each training seed."""
    values = {task: [results[task]["mean"] for results in row["seeds"].values() if task in results]
              for task in task_names}
    values["average"] = [sum(results[task]["mean"] for task in task_names) / len(task_names)
                         for results in row["seeds"].values() if all(task in results for task in task_names)]
    return values


def _cell(result: dict | None) -> str:
    if result is None:
        return ""
    return f"{100 * result['mean']:.1f} ± {100 * result['std']:.1f}"


def to_markdown(task_names: list[str], rows: list[dict]) -> str:
    metrics = {task: next(row["results"][task]["metric"] for row in rows if task in row["results"]) for task in task_names}
    keys = rows[0]["keys"] if rows else ROW_KEYS
    with_dims = keys == RUN_ROW_KEYS
    with_seeds = any(len(row["seeds"]) > 1 for row in rows)
    header = [*keys, *(f"{task} ({metrics[task]})" for task in task_names), "average", *(["dims"] if with_dims else []),
              *(["training seeds"] if with_seeds else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        average = "" if row["average"] is None else f"{100 * row['average']:.1f}"
        cells = [row[key] for key in keys] + [_cell(row["results"].get(task)) for task in task_names] + [average]
        if with_dims:
            cells.append("" if row["dims"] is None else f"{row['dims']:.1f}")
        if with_seeds:
            cells.append(str(len(row["seeds"])))
        lines.append("| " + " | ".join(cells) + " |")
    spread = ("mean ± sample std over the training seeds where a row has several (`training seeds`), "
              "over the probe's head seeds where it has one" if with_seeds else "mean ± sample std over the probe's head seeds")
    return "\n".join(lines) + f"\n\nCells: {spread}; in percent.\n"


def to_csv(task_names: list[str], rows: list[dict]) -> str:
    """One row per table row: mean and std (fractions, not percent) per task, and the average."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = rows[0]["keys"] if rows else ROW_KEYS
    writer.writerow([*keys, *(f"{task}_{stat}" for task in task_names for stat in ("mean", "std")), "average", "dims",
                     "training_seeds"])
    for row in rows:
        values = []
        for task in task_names:
            result = row["results"].get(task)
            values += [f"{result['mean']:.6f}", f"{result['std']:.6f}"] if result else ["", ""]
        writer.writerow([*(row[key] for key in keys), *values,
                         "" if row["average"] is None else f"{row['average']:.6f}",
                         "" if row["dims"] is None else f"{row['dims']:.3f}", len(row["seeds"])])
    return buffer.getvalue()


def load_results(paths: list[str | Path]) -> list[dict]:
    results = []
    for path in find_results(paths):
        result = json.loads(path.read_text())
        result["_mtime"] = path.stat().st_mtime
        results.append(result)
    return results
