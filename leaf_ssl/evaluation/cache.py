"""Embedding every segment of a task once with a frozen model, cached on disk.

Segments are cut and embedded as every tool embeds audio (`inference.windows`,
`inference.features`): the model is exactly the checkpoint's, in inference mode, and batches
have a fixed size (the last one is zero-padded and the padding's outputs dropped), so the jitted
function compiles once.

Cache: `<cache_dir>/<key>.npz`, where key = SHA-256 of the checkpoint (resolved path or random
spec, step, config), the features read, the task (resolved spec and a fingerprint of its files)
and the segment settings. Re-probing the same checkpoint and task (other seeds, epochs...) reads the file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from leaf_ssl.evaluation.tasks import SPLITS, SkipLog, Task
from leaf_ssl.inference.features import make_embed_fn
from leaf_ssl.inference.frozen_model import FrozenModel
from leaf_ssl.inference.windows import embed_windows, segment_windows
from leaf_ssl.progress import ProgressLine

logger = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when what is stored, or how segments are cut or normalised, changes


@dataclasses.dataclass
class SplitEmbeddings:
    """One split's segments: embeddings (segments, dim); segment_clip (segments,) the index of
    each segment's clip; targets (clips, classes) multi-hot; clip_ids; what was skipped."""
    embeddings: np.ndarray
    segment_clip: np.ndarray
    targets: np.ndarray
    clip_ids: list[str]
    skips: dict

    @property
    def num_clips(self) -> int:
        return len(self.clip_ids)

    def segment_targets(self) -> np.ndarray:
        return self.targets[self.segment_clip]


@dataclasses.dataclass
class TaskEmbeddings:
    classes: list[str]
    splits: dict[str, SplitEmbeddings]
    cache_path: Path | None  # None: not cached (`embed_task_with`)
    from_cache: bool
    seconds: float


def cache_key(frozen: FrozenModel, task: Task, segment_samples: int, features: str = "encoder") -> str:
    description = {
        "format": CACHE_FORMAT,
        # a run's step by what the run is, so that a copied or moved run keeps its cache
        "checkpoint": frozen.run_id or frozen.source,
        "step": frozen.step,
        "batch_norm": frozen.batch_norm,
        "config": frozen.config.to_dict(),
        "task": task.spec,
        "task_fingerprint": task.fingerprint(),
        "segment_samples": segment_samples,
        "features": features,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:24]


def embed_task(frozen: FrozenModel, task: Task, cache_dir: str | Path, *, segment_samples: int,
               batch_size: int = 64, features: str = "encoder", progress: bool = True) -> TaskEmbeddings:
    """Embeddings (`features`, see FEATURES) of both splits of `task`, from the cache when there."""
    cache_path = Path(cache_dir) / f"{cache_key(frozen, task, segment_samples, features)}.npz"
    if cache_path.is_file():
        logger.info("embeddings from cache %s", cache_path)
        return _load(cache_path)
    result = embed_task_with(make_embed_fn(frozen, features), task, segment_samples=segment_samples,
                             batch_size=batch_size, progress=progress)
    result.cache_path = cache_path
    _save(cache_path, result)
    return result


def embed_task_with(embed_batch, task: Task, *, segment_samples: int, batch_size: int = 64,
                    progress: bool = True) -> TaskEmbeddings:
    """Both splits of `task` embedded by `embed_batch`, a (batch_size, segment_samples) float32
    array -> (batch_size, dim) function of raw segments (any model, e.g. a benchmark's peer);
    nothing cached."""
    started = time.perf_counter()
    splits = {split: _embed_split(embed_batch, task, split, segment_samples, batch_size, progress)
              for split in SPLITS}
    # classes are read after the splits: a task with dense labels learns its classes from train
    result = TaskEmbeddings(list(task.classes), {}, None, False, time.perf_counter() - started)
    for split, (embeddings, segment_clip, labels, clip_ids, skips) in splits.items():
        targets = np.zeros((len(clip_ids), len(result.classes)), np.float32)
        for clip, clip_labels in enumerate(labels):
            targets[clip, list(clip_labels)] = 1.0
        result.splits[split] = SplitEmbeddings(embeddings, segment_clip, targets, clip_ids, skips.summary())
    for split in SPLITS:
        if result.splits[split].num_clips == 0:
            raise ValueError(f"task {task.spec}: no usable clip in the {split} split "
                             f"(skipped: {result.splits[split].skips['by_reason']})")
    return result


def _embed_split(embed_batch, task: Task, split: str, segment_samples: int, batch_size: int, progress: bool):
    skips = SkipLog()
    meter = ProgressLine(f"embed {task.name}/{split}", task.num_clips(split), "clips", enabled=progress)
    embeddings: list[np.ndarray] = []
    segment_clip, labels, clip_ids = [], [], []

    def jobs():
        for clip in task.clips(split, skips):
            labels.append(clip.labels)
            clip_ids.append(clip.id)
            yield len(clip_ids) - 1, segment_windows(clip.waveform, segment_samples)

    for clip_index, clip_embeddings in embed_windows(embed_batch, jobs(), batch_size):
        embeddings.append(clip_embeddings)
        segment_clip.extend([clip_index] * len(clip_embeddings))
        meter.update(clip_index + 1, f"{len(segment_clip)} segments, {len(segment_clip) / meter.elapsed:.1f} segments/s")
    meter.finish(len(clip_ids), f"{len(segment_clip)} segments, {skips.count} skipped")
    dim = embeddings[0].shape[1] if embeddings else 0
    return (np.concatenate(embeddings) if embeddings else np.zeros((0, dim), np.float32),
            np.asarray(segment_clip, np.int64), labels, clip_ids, skips)


def _save(path: Path, result: TaskEmbeddings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"classes": json.dumps(result.classes), "seconds": result.seconds}
    for split, data in result.splits.items():
        arrays.update({f"{split}/embeddings": data.embeddings, f"{split}/segment_clip": data.segment_clip,
                       f"{split}/targets": data.targets, f"{split}/clip_ids": json.dumps(data.clip_ids),
                       f"{split}/skips": json.dumps(data.skips)})
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)  # a reader never sees a half-written cache file


def _load(path: Path) -> TaskEmbeddings:
    with np.load(path) as stored:
        splits = {split: SplitEmbeddings(stored[f"{split}/embeddings"], stored[f"{split}/segment_clip"],
                                         stored[f"{split}/targets"], json.loads(str(stored[f"{split}/clip_ids"])),
                                         json.loads(str(stored[f"{split}/skips"])))
                  for split in SPLITS}
        return TaskEmbeddings(json.loads(str(stored["classes"])), splits, path, True, float(stored["seconds"]))
