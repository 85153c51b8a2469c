"""Learning parity: `python -m leaf_ssl.bench --what learning --peer torch --run DIR [--run DIR ...]`.

Does this implementation learn as fast as an independent one on the same data? For each finished
run of ours (one per seed, trained by `python -m leaf_ssl.train` with a mel frontend and an
EfficientNet), the PyTorch COLA of `leaf_ssl.bench.torch_cola` is trained on exactly the batches the run
was trained on (the run's config rebuilds its deterministic input stream: same clips, crops and
noise), with the run's recipe (steps, warm-up, peak rate, weight decay, SpecAugment, drop-path,
BatchNorm momentum, similarity), from its own initialisation (torch seeded with the run's seed).
Then both encoders are probed by the same probe code (`evaluators.Linear`) on the same tasks.

Rows: contrastive accuracy and loss at every logged step (mean over each logging interval, as the
trainer logs it) and each task's probe accuracy, as mean ± std over the runs, ours and the peer's.
The peer's model, metrics and probe results are kept in `<run>/peer_torch/` (re-runs reuse its
trained model). torch is not a dependency: without it the benchmark stops with the install hint.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import math
import statistics
import time
from pathlib import Path

import ml_collections
import numpy as np

from leaf_ssl.model import build
from leaf_ssl.training.batches import input_batches
from leaf_ssl.training import optim
from leaf_ssl.evaluation import probe
from leaf_ssl.encoders.factory import ENCODERS
from leaf_ssl.frontends.mel import MEL_PRESETS
from leaf_ssl.inference import frozen_model
from leaf_ssl.evaluation import cache, evaluators, tasks
from leaf_ssl.progress import format_duration
from leaf_ssl.training.loop import count_clips

logger = logging.getLogger(__name__)

PEER_FOLDER = "peer_torch"
INSTALL_HINT = "the learning peer needs torch: `pip install torch` (the CPU or CUDA build of this machine)"


def peer_settings(config: ml_collections.ConfigDict) -> dict:
    """The torch COLA's constructor arguments for a run's config; ValueError for what it does not implement."""
    if config.frontend.name != "mel":
        raise ValueError(f"the torch peer computes log-mel features only; this run's frontend is {config.frontend.name!r}")
    mel = MEL_PRESETS[config.frontend.get("preset", "leaf")]
    if config.encoder.name not in ENCODERS or config.encoder.get("dtype", "float32") != "float32":
        raise ValueError(f"the torch peer runs a float32 EfficientNet; this run's encoder is {dict(config.encoder)}")
    preset = ENCODERS[config.encoder.name]
    return {
        "width": config.encoder.get("width_mult") or preset["width_mult"],
        "depth": config.encoder.get("depth_mult") or preset["depth_mult"],
        "drop_path_rate": config.encoder.drop_path_rate, "pooling": config.encoder.pooling,
        "bn_momentum": config.encoder.bn_momentum, "embedding_dim": config.model.embedding_dim,
        "mel_filters": mel["n_filters"], "n_fft": mel["n_fft"],
        "similarity": config.model.similarity, "temperature": config.model.temperature,
        "freq_masks": config.model.freq_masks, "freq_mask_width": config.model.freq_mask_width,
        "time_masks": config.model.time_masks, "time_mask_width": config.model.time_mask_width,
    }


def train_peer(run: Path, threads: int):
    """The peer trained on the run's batches (or restored from `<run>/peer_torch/model.pt`):
    (trainer, its logged records)."""
    import torch

    from leaf_ssl.bench import torch_cola
    torch.set_num_threads(threads)
    config = frozen_model.load_config_spec(str(run))
    folder = run / PEER_FOLDER
    folder.mkdir(exist_ok=True)
    num_clips = config.data.num_clips or count_clips(config.data.train_shards)
    total_steps, warmup_steps = optim.training_steps(config, num_clips)
    torch.manual_seed(config.seed)
    model = torch_cola.Cola(**peer_settings(config))
    trainer = torch_cola.Trainer(model, peak_rate=config.train.base_learning_rate * config.train.batch_size / 256,
                                 warmup_steps=warmup_steps, total_steps=total_steps,
                                 weight_decay=config.train.weight_decay, seed=config.seed)
    weights, metrics_path = folder / "model.pt", folder / "metrics.jsonl"
    if weights.is_file() and metrics_path.is_file():
        model.load_state_dict(torch.load(weights))
        return trainer, [json.loads(line) for line in metrics_path.read_text().splitlines()]
    batches = iter(input_batches(config, per_process_batch=config.train.batch_size,
                                            crop_samples=build.crop_samples(config), start_batch=0))
    records, window, started = [], [], time.perf_counter()
    for step in range(1, total_steps + 1):
        batch = next(batches)
        window.append(trainer.train_step(np.asarray(batch["anchor"]), np.asarray(batch["positive"])))
        if step % config.train.log_every_steps == 0 or step == total_steps:
            records.append({"step": step, **{key: float(np.mean([m[key] for m in window])) for key in window[0]}})
            window = []
            rate = step / (time.perf_counter() - started)
            logger.info("peer %s: step %d/%d | loss %.4f | acc %.3f | %.2f steps/s | ETA %s", run.name, step,
                        total_steps, records[-1]["loss"], records[-1]["accuracy"], rate,
                        format_duration((total_steps - step) / rate))
    torch.save(model.state_dict(), weights)
    metrics_path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return trainer, records


def probe_peer(trainer, run: Path, task: tasks.Task, segment_samples: int, seeds: int) -> dict:
    """The peer's probe result on `task`, written like the probe's own (`<run>/peer_torch/probes/<task>.json`)."""
    embedded = cache.embed_task_with(trainer.embed, task, segment_samples=segment_samples)
    scores = evaluators.Linear(seeds=seeds).evaluate(embedded, task.multi_label).scores
    result = {"task": {"name": task.name, "spec": task.spec}, "metric": "accuracy", "mean": float(np.mean(scores)),
              "std": float(np.std(scores, ddof=1)) if seeds > 1 else 0.0, "per_seed": scores,
              "model": {"checkpoint": str(run / PEER_FOLDER), "training": "self-supervised (torch peer)",
                        "frontend": "mel", "init": "-"}}
    out = run / PEER_FOLDER / "probes" / f"{task.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


def _ours(run: Path, task: tasks.Task, seeds: int) -> dict:
    frozen = frozen_model.load_frozen_model(str(run))
    return probe.run_probe(frozen, task, run / "probes", evaluator=evaluators.Linear(seeds=seeds), progress=False)


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    return f"{mean:.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{mean:.3f}"


def compare(runs: list[Path], task_specs: list[str], data_dir: str | None, probe_seeds: int, threads: int) -> list[dict]:
    """The parity rows for `runs` (see the module docstring).

    Raises:
      ValueError: torch is missing, or a run's config is one the peer does not implement.
    """
    if importlib.util.find_spec("torch") is None:
        raise ValueError(INSTALL_HINT)
    for run in runs:  # every run checked before any training
        peer_settings(frozen_model.load_config_spec(str(run)))
    resolved = [tasks.resolve_task(spec, data_dir=data_dir) for spec in task_specs]
    ours_curves, peer_curves, probes = [], [], {task.name: ([], []) for task in resolved}
    for run in runs:
        ours_curves.append([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()])
        trainer, records = train_peer(run, threads)
        peer_curves.append(records)
        segment_samples = build.crop_samples(frozen_model.load_config_spec(str(run)))
        for task in resolved:
            probes[task.name][0].append(_ours(run, task, probe_seeds)["mean"])
            probes[task.name][1].append(probe_peer(trainer, run, task, segment_samples, probe_seeds)["mean"])
    rows = []
    steps = sorted(set.intersection(*({record["step"] for record in curve} for curve in ours_curves + peer_curves)))
    for step in steps:
        for key in ("accuracy", "loss"):
            ours = [next(r[key] for r in curve if r["step"] == step) for curve in ours_curves]
            peer = [next(r[key] for r in curve if r["step"] == step) for curve in peer_curves]
            rows.append({"measure": f"{key} @ step {step}", "ours": _spread(ours), "peer": _spread(peer),
                         "ours_minus_peer": statistics.fmean(ours) - statistics.fmean(peer)})
    for name, (ours, peer) in probes.items():
        rows.append({"measure": f"probe {name} (accuracy)", "ours": _spread(ours), "peer": _spread(peer),
                     "ours_minus_peer": statistics.fmean(ours) - statistics.fmean(peer)})
    rows.append({"measure": "runs (seeds)", "ours": str(len(runs)), "peer": str(len(runs)), "ours_minus_peer": math.nan})
    return rows
