"""Linear probe of a frozen (trained or untrained) frontend + encoder on a labelled task.

1. The model is restored by `inference.frozen_model` (`random:<config>` is the same architecture
   untrained).
2. Every clip is embedded once, as segments of the model's training crop length
   (`FrozenModel.window_samples`, or `segment_seconds`), by `inference.windows` and
   `inference.features`; embeddings are cached in `<workdir>/embeddings/` (`evaluation.cache`).
   `features='frontend'` reads the frontend alone: each channel's mean and std over frames.
3. An evaluator (`evaluation.evaluators`) scores the test clips from the train segments: by default
   the paper's linear probe, per seed a linear head (`evaluation.linear`); or k-nearest neighbours,
   or few-shot linear heads. Accuracy, or mAP for multi-label tasks.
4. The result (mean +/- sample std over seeds, per-seed values, per-class scores, the confusion
   matrix of single-label tasks, clip/segment counts and every skipped file with its reason) is
   written as `<workdir>/<task>.json` and `<task>.md` (`<task>_<evaluator>.*` for other evaluators).
"""
from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from leaf_ssl.inference.features import FEATURES
from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.evaluation import cache, evaluators, linear, tasks
from leaf_ssl.inference import frozen_model
from leaf_ssl.model.objectives import objective_of
from leaf_ssl.progress import ProgressLine
from leaf_ssl.training import summaries

logger = logging.getLogger(__name__)


def default_workdir(frozen: frozen_model.FrozenModel, *, bn_reestimated: bool = False,
                    features: str = "encoder") -> Path:
    """Where a probe's results go by default, in the current folder, never in the run (readers leave
    a run's files alone unless asked): `probes/<run name>` for a run or a step folder,
    `probes/random_<name>` for `random:`. `_bn` is appended for re-estimated BatchNorm statistics and
    `_frontend` for frontend features, so that the variants' `<task>.json` never overwrite each other."""
    suffix = _variant_suffix(bn_reestimated, features)
    if not frozen.trained:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", Path(frozen.source[len(frozen_model.RANDOM_PREFIX):]).name).strip("_")
        return Path("probes") / f"random_{slug}{suffix}"
    name = (frozen.run_dir or frozen.source).rstrip("/").rsplit("/", 1)[-1]
    return Path("probes") / f"{name}{suffix}"


def describe_model(frozen: frozen_model.FrozenModel, features: str = "encoder", evaluator: str = "linear") -> dict:
    """What was probed, as the fields a table row is built from (`evaluation.tables.row_label`):
    frontend, init, training, BatchNorm statistics, features read, evaluator; and where it came from."""
    config = frozen.config
    frontend = config.frontend.name
    training = objective_of(config).training_label if frozen.trained else "untrained"
    return {
        "frontend": frontend,
        "init": "-" if frontend == "mel" else config.frontend.get("init", "mel"),
        "training": training,
        "encoder": config.encoder.name,
        "seed": config.seed,  # the training seed (an untrained floor's: the seed its run started from)
        "checkpoint": frozen.source,
        "run_id": frozen.run_id,
        "step": frozen.step,
        "batch_norm": frozen.batch_norm,
        "features": features,
        "evaluator": evaluator,
    }


def result_name(task_name: str, evaluator: str) -> str:
    """A result's file stem: the task's name for the paper's linear probe, `<task>_<evaluator>` else."""
    return task_name if evaluator == "linear" else f"{task_name}_{evaluator}"


def run_probe(frozen: frozen_model.FrozenModel, task: tasks.Task, workdir: str | Path, *,
              evaluator: evaluators.Evaluator = evaluators.Linear(), segment_seconds: float | None = None,
              embed_batch: int = 64, features: str = "encoder", progress: bool = True,
              tensorboard: bool = False) -> dict:
    """Embeds (or reads the cache), evaluates (`evaluator`, the linear probe by default); writes
    `<workdir>/<result_name>.{json,md}`; returns the result.

    With `tensorboard` (the one way a probe writes into a run), a checkpoint of a run also gets
    `probe/<task>[_bn][_frontend][_<evaluator>]/<metric>` (and `<metric>_std`) at its step in the
    run's TensorBoard events.
    """
    workdir = Path(workdir)
    stem = result_name(task.name, evaluator.name)
    _refuse_a_namesake(workdir / f"{stem}.json", task)
    segment_samples = frozen.window_samples if segment_seconds is None else int(round(segment_seconds * SAMPLE_RATE))
    segment_seconds = segment_samples / SAMPLE_RATE
    embedded = cache.embed_task(frozen, task, workdir / "embeddings", segment_samples=segment_samples,
                                batch_size=embed_batch, features=features, progress=progress)
    train = embedded.splits["train"]
    untested = [name for name, seen in zip(embedded.classes, embedded.splits["test"].targets.sum(axis=0) > 0)
                if not seen]
    if untested:
        logger.warning("task %s: %d of %d classes have no test clip, so the score says nothing about them: %s",
                       task.name, len(untested), len(embedded.classes), ", ".join(untested))
    started = time.perf_counter()
    meter = ProgressLine(f"{evaluator.name} {task.name}", getattr(evaluator, "seeds", 1), "seeds",
                         enabled=progress, every_seconds=0.0)
    evaluation = evaluator.evaluate(embedded, task.multi_label,
                                    on_seed=lambda seed, score: meter.update(seed + 1, f"last {score:.3f}"))
    scores = evaluation.scores
    meter.finish(len(scores), f"mean {np.mean(scores):.3f}")
    result = {
        "task": {"name": task.name, "spec": task.spec, "classes": embedded.classes,
                 "num_classes": len(embedded.classes), "multi_label": task.multi_label, "metric": evaluation.metric,
                 "classes_without_test_clips": untested},
        "model": describe_model(frozen, features, evaluator.name),
        "evaluator": evaluator.name,
        "metric": evaluation.metric,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
        "per_seed": [float(score) for score in scores],
        "seeds": list(range(len(scores))),
        "per_class": evaluation.per_class,
        "confusion": evaluation.confusion,
        "counts": {split: {"clips": data.num_clips, "segments": int(len(data.segment_clip)),
                           "skipped": data.skips["count"]} for split, data in embedded.splits.items()},
        "skipped": {split: data.skips for split, data in embedded.splits.items()},
        "recipe": {**evaluation.details, "segment_seconds": segment_seconds},
        "embedding": {"cache": str(embedded.cache_path), "from_cache": embedded.from_cache,
                      "seconds": round(embedded.seconds, 1), "dim": int(train.embeddings.shape[1]),
                      "participation_ratio": round(linear.participation_ratio(train.embeddings), 2)},
        "probe_seconds": round(time.perf_counter() - started, 1),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (workdir / f"{stem}.md").write_text(format_markdown(result))
    if tensorboard and frozen.run_dir is not None:
        suffix = _variant_suffix(frozen.batch_norm != frozen_model.BATCH_NORM_AS_SAVED, features)
        _write_to_run_tensorboard(frozen, result_name(task.name + suffix, evaluator.name), result)
    return result


def _refuse_a_namesake(result_path: Path, task: tasks.Task) -> None:
    """Two tasks of one name (folders both called `audio`) would write the same result file: the second
    is refused, before any work, rather than overwriting the first's."""
    try:
        earlier = json.loads(result_path.read_text())["task"]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if earlier != task.spec:
        raise tasks.TaskError(f"{result_path} holds the results of {earlier}, another task named {task.name!r}; "
                              f"probe {task.spec} into another --workdir")


def _variant_suffix(bn_reestimated: bool, features: str) -> str:
    return ("_bn" if bn_reestimated else "") + ("_frontend" if features == "frontend" else "")


def _write_to_run_tensorboard(frozen: frozen_model.FrozenModel, tag: str, result: dict) -> None:
    """The score beside the run's training curves; the JSON above is the record, so a run folder
    this probe may not write to (another user's, read-only storage) costs a warning, not the result."""
    metric = result["metric"]
    try:
        summaries.write_probe_scalars(frozen.run_dir, frozen.step, tag,
                                      {metric: result["mean"], f"{metric}_std": result["std"]})
    except Exception as error:  # TensorFlow's filesystem errors are not OSErrors
        logger.warning("probe score not written to %s/tensorboard: %s", frozen.run_dir, error)


def format_markdown(result: dict) -> str:
    """A human-readable report of one probe result."""
    model, counts = result["model"], result["counts"]
    untested = result["task"].get("classes_without_test_clips")  # absent from results of older versions
    lines = [
        f"# {evaluators.EVALUATORS[result.get('evaluator', 'linear')].title}: {result['task']['name']}",
        "",
        f"- model: {model['frontend']} (init {model['init']}), {model['training']}, {model['encoder']}, "
        f"step {model['step']}: `{model['checkpoint']}`",
        f"- BatchNorm statistics: {model.get('batch_norm', frozen_model.BATCH_NORM_AS_SAVED)}",
        f"- features: {FEATURES[model.get('features', 'encoder')]}",
        f"- task: `{result['task']['spec']}`, {result['task']['num_classes']} classes"
        + (", multi-label" if result["task"]["multi_label"] else "")
        + (f"; no test clip of: {', '.join(untested)}" if untested else ""),
        f"- **{result['metric']}: {100 * result['mean']:.2f} ± {100 * result['std']:.2f}** "
        f"(mean ± sample std over {len(result['per_seed'])} seeds; per seed: "
        + ", ".join(f"{100 * s:.2f}" for s in result["per_seed"]) + ")",
        "",
        "| split | clips | segments | skipped |",
        "|---|---|---|---|",
        *(f"| {split} | {c['clips']} | {c['segments']} | {c['skipped']} |" for split, c in counts.items()),
    ]
    if result.get("per_class"):
        lines += ["", "Per class (first seed): " + ", ".join(f"{name} {100 * value:.1f}"
                                                          for name, value in result["per_class"].items())]
    for split, skips in result["skipped"].items():
        if skips["count"]:
            lines += ["", f"Skipped in {split}: " + ", ".join(f"{reason}: {n}" for reason, n in skips["by_reason"].items()),
                      *(f"- `{item['item']}`: {item['reason']}" for item in skips["items"])]
            if skips["count"] > len(skips["items"]):
                lines.append(f"- ... and {skips['count'] - len(skips['items'])} more")
    return "\n".join(lines) + "\n"
