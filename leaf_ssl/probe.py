"""Linear probe of a pretrained (or untrained) frontend + encoder on a labelled task.

    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task keyword --data_dir demo_corpus
    python -m leaf_ssl.probe --ckpt random:configs/demo.py:leaf,random --task demo:demo_corpus/keyword
    python -m leaf_ssl.probe --ckpt runs/leaf/checkpoints/50000 --task speech_commands --tfds_data_dir ~/tfds
    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task folder:/data/my_sounds --seeds 5
    python -m leaf_ssl.probe --ckpt runs/demo_leaf --task keyword --data_dir demo_corpus --features frontend

1. Restores the checkpoint's params and batch statistics and rebuilds its model from the saved
   config (`leaf_ssl.probing.checkpoint`); `random:<config>` is the same architecture untrained.
2. Embeds every clip once, frozen and in inference mode, as segments of the model's training crop
   length (`FrozenModel.window_samples`; `--segment_seconds` overrides) (`probing.segments`,
   `probing.embedding`); embeddings are cached in `<workdir>/embeddings/`. `--features frontend`
   reads the frontend alone instead: each channel's mean and std over the segment's frames.
3. Per seed, trains a linear head on the train segments and scores the test clips by the mean
   of their segments' logits (`probing.linear`): accuracy, or mAP for multi-label tasks.
4. Prints and writes `<workdir>/<task>.json` and `<task>.md`: mean +/- sample std over seeds,
   per-seed values, clip/segment counts and every skipped file with its reason.

`--workdir` defaults to `<run workdir>/probes`, or `probes/<config>` for `random:` (with `_bn`
and `_frontend` appended for those variants).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path

import numpy as np

from leaf_ssl.checkpointing import CheckpointError
from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.probing import batch_norm, checkpoint, embedding, linear, tasks

logger = logging.getLogger(__name__)

REESTIMATED_SUFFIX = ", BN re-estimated"
"""Appended to a table row's training when its BatchNorm statistics were re-estimated (--bn_batches)."""
FRONTEND_SUFFIX = ", frontend only"
"""Appended to a table row's training when the probe read the pooled frontend (--features frontend)."""


def default_workdir(ckpt: str, *, bn_reestimated: bool = False, features: str = "encoder") -> Path:
    """`<run>/probes` or `probes/random_<name>`; `_bn` appended for re-estimated BatchNorm
    statistics and `_frontend` for frontend features, so that the variants' `<task>.json` never
    overwrite each other."""
    suffix = ("_bn" if bn_reestimated else "") + ("_frontend" if features == "frontend" else "")
    if ckpt.startswith(checkpoint.RANDOM_PREFIX):
        slug = re.sub(r"[^A-Za-z0-9]+", "_", Path(ckpt[len(checkpoint.RANDOM_PREFIX):]).name).strip("_")
        return Path("probes") / f"random_{slug}{suffix}"
    path = Path(ckpt).resolve()
    run_dir = path.parent.parent if path.name.isdigit() else path.parent if path.name == "checkpoints" else path
    return run_dir / f"probes{suffix}"


def describe_model(frozen: checkpoint.FrozenModel, features: str = "encoder") -> dict:
    """The row a result belongs to in the paper's tables: frontend, init, training."""
    config = frozen.config
    frontend = config.frontend.name
    if not frozen.trained:
        training = "untrained"
    elif "supervised" in config:
        training = "supervised"
    else:
        training = "self-supervised"
    if frozen.batch_norm != checkpoint.BATCH_NORM_AS_SAVED:
        training += REESTIMATED_SUFFIX
    if features == "frontend":
        training += FRONTEND_SUFFIX
    return {
        "frontend": frontend,
        "init": "-" if frontend == "mel" else config.frontend.get("init", "mel"),
        "training": training,
        "encoder": config.encoder.name,
        "checkpoint": frozen.source,
        "step": frozen.step,
        "batch_norm": frozen.batch_norm,
        "features": features,
    }


def run_probe(frozen: checkpoint.FrozenModel, task: tasks.Task, workdir: str | Path, *, seeds: int = 3,
              recipe: linear.ProbeRecipe = linear.ProbeRecipe(), segment_seconds: float | None = None,
              embed_batch: int = 64, features: str = "encoder", progress: bool = True) -> dict:
    """Embeds, trains `seeds` linear heads, scores them; writes `<workdir>/<task>.{json,md}`; returns the result."""
    workdir = Path(workdir)
    segment_samples = frozen.window_samples if segment_seconds is None else int(round(segment_seconds * SAMPLE_RATE))
    segment_seconds = segment_samples / SAMPLE_RATE
    embedded = embedding.embed_task(frozen, task, workdir / "embeddings", segment_samples=segment_samples,
                                    batch_size=embed_batch, features=features, progress=progress)
    train = embedded.splits["train"]
    metric = "mAP" if task.multi_label else "accuracy"
    started = time.perf_counter()
    scores = score_heads(embedded, multi_label=task.multi_label, seeds=seeds, recipe=recipe)
    result = {
        "task": {"name": task.name, "spec": task.spec, "classes": embedded.classes,
                 "num_classes": len(embedded.classes), "multi_label": task.multi_label, "metric": metric},
        "model": describe_model(frozen, features),
        "metric": metric,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
        "per_seed": [float(score) for score in scores],
        "seeds": list(range(seeds)),
        "counts": {split: {"clips": data.num_clips, "segments": int(len(data.segment_clip)),
                           "skipped": data.skips["count"]} for split, data in embedded.splits.items()},
        "skipped": {split: data.skips for split, data in embedded.splits.items()},
        "recipe": {"epochs": recipe.epochs_for(len(train.segment_clip)), "min_steps": recipe.min_steps,
                   "batch_size": recipe.batch_size, "learning_rate": recipe.learning_rate,
                   "weight_decay": recipe.weight_decay, "segment_seconds": segment_seconds,
                   "features": "standardised with train-segment mean and std",
                   "evaluation": "logits averaged over all segments of each test clip"},
        "embedding": {"cache": str(embedded.cache_path), "from_cache": embedded.from_cache,
                      "seconds": round(embedded.seconds, 1), "dim": int(train.embeddings.shape[1]),
                      "participation_ratio": round(linear.participation_ratio(train.embeddings), 2)},
        "probe_seconds": round(time.perf_counter() - started, 1),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{task.name}.json").write_text(json.dumps(result, indent=2))
    (workdir / f"{task.name}.md").write_text(format_markdown(result))
    return result


def score_heads(embedded: embedding.TaskEmbeddings, *, multi_label: bool, seeds: int,
                recipe: linear.ProbeRecipe = linear.ProbeRecipe()) -> list[float]:
    """Per seed, a linear head trained on the train segments, scored on the test clips by the mean
    of their segments' logits: accuracy, or mAP for a multi-label task."""
    train, test = embedded.splits["train"], embedded.splits["test"]
    scores = []
    for seed in range(seeds):
        head = linear.train_linear_probe(train.embeddings, train.segment_targets(), multi_label=multi_label,
                                         seed=seed, recipe=recipe)
        logits = linear.clip_logits(head.logits(test.embeddings), test.segment_clip, test.num_clips)
        if multi_label:
            scores.append(linear.mean_average_precision(logits, test.targets))
        else:
            scores.append(linear.accuracy(logits, test.targets.argmax(axis=1)))
    return scores


def format_markdown(result: dict) -> str:
    """A human-readable report of one probe result."""
    model, counts = result["model"], result["counts"]
    lines = [
        f"# Linear probe: {result['task']['name']}",
        "",
        f"- model: {model['frontend']} (init {model['init']}), {model['training']}, {model['encoder']}, "
        f"step {model['step']}: `{model['checkpoint']}`",
        f"- BatchNorm statistics: {model.get('batch_norm', checkpoint.BATCH_NORM_AS_SAVED)}",
        f"- features: {embedding.FEATURES[model.get('features', 'encoder')]}",
        f"- task: `{result['task']['spec']}`, {result['task']['num_classes']} classes"
        + (", multi-label" if result["task"]["multi_label"] else ""),
        f"- **{result['metric']}: {100 * result['mean']:.2f} ± {100 * result['std']:.2f}** "
        f"(mean ± sample std over {len(result['per_seed'])} seeds; per seed: "
        + ", ".join(f"{100 * s:.2f}" for s in result["per_seed"]) + ")",
        "",
        "| split | clips | segments | skipped |",
        "|---|---|---|---|",
        *(f"| {split} | {c['clips']} | {c['segments']} | {c['skipped']} |" for split, c in counts.items()),
    ]
    for split, skips in result["skipped"].items():
        if skips["count"]:
            lines += ["", f"Skipped in {split}: " + ", ".join(f"{reason}: {n}" for reason, n in skips["by_reason"].items()),
                      *(f"- `{item['item']}`: {item['reason']}" for item in skips["items"])]
            if skips["count"] > len(skips["items"]):
                lines.append(f"- ... and {skips['count'] - len(skips['items'])} more")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="run workdir, its checkpoints/ folder, a step folder, "
                                                      "or random:<config file>[:<args>]")
    parser.add_argument("--task", required=True, action="append",
                        help="demo:<corpus>/<task>, folder:<dir>, csv:<file>, a TFDS task "
                             f"{sorted(tasks.TFDS_TASKS)}, or a demo task with --data_dir; repeat it to probe "
                             "several tasks with one loaded (and compiled) model")
    parser.add_argument("--workdir", help="results and embedding cache (default: <run>/probes, or "
                                          "<run>/probes_bn with --bn_batches)")
    parser.add_argument("--data_dir", help="demo corpus folder, for bare demo task names")
    parser.add_argument("--tfds_data_dir", help="TFDS data_dir holding prepared datasets")
    parser.add_argument("--seeds", type=int, default=3, help="linear heads trained, seeds 0..n-1")
    parser.add_argument("--epochs", type=int, default=linear.ProbeRecipe.epochs,
                        help="passes over the train segments (more if fewer than --min_steps steps)")
    parser.add_argument("--min_steps", type=int, default=linear.ProbeRecipe.min_steps,
                        help="fewest optimizer steps of a head: small tasks get more epochs (0: exactly --epochs)")
    parser.add_argument("--batch", type=int, default=linear.ProbeRecipe.batch_size, help="segments per head step")
    parser.add_argument("--learning_rate", type=float, default=linear.ProbeRecipe.learning_rate)
    parser.add_argument("--embed_batch", type=int, default=64, help="segments per embedding call")
    parser.add_argument("--segment_seconds", type=float,
                        help="segment length (default: the checkpoint's training crop, config.data.crop_seconds)")
    parser.add_argument("--features", choices=list(embedding.FEATURES), default="encoder",
                        help="what the head reads: the pooled encoder output (default, the paper's probe), or "
                             "'frontend': each frontend channel's mean and std over the segment (no encoder)")
    parser.add_argument("--bn_batches", type=int, default=0,
                        help="re-estimate BatchNorm statistics from this many batches of the model's training data "
                             "before embedding (probing.batch_norm); 0 keeps the checkpoint's (default)")
    parser.add_argument("--bn_batch", type=int, default=64, help="crops per re-estimation batch")
    parser.add_argument("--bn_data", help="shards to re-estimate from (default: the config's data.train_shards)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.bn_batches and args.features == "frontend":
        sys.exit("error: --bn_batches has no effect with --features frontend: the frontend has no BatchNorm")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs several INFO lines per restore
    try:
        # every task is resolved before any work, so a typo in the last one costs nothing
        task_list = [tasks.resolve_task(spec, data_dir=args.data_dir, tfds_data_dir=args.tfds_data_dir)
                     for spec in args.task]
        frozen = checkpoint.load_frozen_model(args.ckpt)
    except (tasks.TaskError, CheckpointError) as error:
        sys.exit(f"error: {error}")
    if args.bn_batches:
        try:
            frozen = batch_norm.reestimate(frozen, num_batches=args.bn_batches, batch_size=args.bn_batch,
                                           train_shards=args.bn_data)
        except (OSError, ValueError) as error:
            sys.exit(f"error: cannot re-estimate BatchNorm statistics (--bn_batches): {error}")
    workdir = Path(args.workdir) if args.workdir else default_workdir(args.ckpt, bn_reestimated=bool(args.bn_batches),
                                                                                  features=args.features)
    recipe = linear.ProbeRecipe(epochs=args.epochs, batch_size=args.batch, learning_rate=args.learning_rate,
                                min_steps=args.min_steps)
    for task in task_list:
        logger.info("probing %s (step %d) on %s; results in %s", frozen.source, frozen.step, task.spec, workdir)
        result = run_probe(frozen, task, workdir, seeds=args.seeds, recipe=recipe,
                           segment_seconds=args.segment_seconds, embed_batch=args.embed_batch, features=args.features)
        print(format_markdown(result))
        print(f"written: {workdir / (task.name + '.json')} and .md")


if __name__ == "__main__":
    main()
