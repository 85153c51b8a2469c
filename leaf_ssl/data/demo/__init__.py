"""The demo corpus: real audio from Debian packages, as pretraining shards and three probe tasks.

    python -m leaf_ssl.data.demo --out DIR [--scale tiny|small|full] [--workers N] [--pretrain_hours H]

Tasks (see each source module in `leaf_ssl.data.demo_sources` for how it is made and split):

* ``keyword``: espeak-ng speaking 10 command words in many voices (package espeak-ng);
* ``instrument``: FluidR3 General MIDI notes, labelled by instrument family (fluidsynth,
  fluid-soundfont-gm);
* ``language``: Asterisk telephony prompts in en/es/fr/it/ru (asterisk-core-sounds-*-wav).

Layout of DIR:

* ``pretrain/pretrain-*.tfrecord``: every TRAIN clip of every task, unlabelled (test clips are
  kept out so that no probe is scored on audio seen in pretraining), and with ``--pretrain_hours
  H`` about H more hours of 10 s clips of game music, effects and voices from Debian packages
  (``demo_sources.packaged_audio``; downloaded into ``DIR/packages`` or ``--package_cache``);
* ``tasks/<task>/{train,test}-*.tfrecord`` (labels = [class index]) and ``tasks/<task>/task.json``
  (class names, split rule, clip counts and seconds per split and class);
* ``corpus.json``: settings and totals, written last: its presence means the corpus is complete.
  A build whose settings match an existing corpus.json does nothing.

Nothing is installed: a missing program or package is a `MissingToolError` naming the apt package.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.data.demo_sources import instrument, keyword, language, packaged_audio
from leaf_ssl.data.demo_sources.common import SPLITS, TRAIN, LabelledClip

logger = logging.getLogger(__name__)

CORPUS_FORMAT = 1  # bump when the output changes in a way the per-task settings do not show
SOURCES = {"keyword": keyword, "instrument": instrument, "language": language}
SCALES = ("tiny", "small", "full")
PRETRAIN_SHARDS = {"tiny": 2, "small": 8, "full": 32}
SHARDS_PER_PACKAGED_HOUR = 4  # about 460 MB of int16 PCM per hour: shards of about 115 MB
PACKAGED = "packaged"
TASK_SHARDS = {"tiny": 1, "small": 2, "full": 4}
MANIFEST = "corpus.json"


def build_demo_corpus(out_dir: str | os.PathLike, scale: str = "small", *, workers: int | None = None,
                      progress: bool = True, pretrain_hours: float = 0.0,
                      package_cache: str | os.PathLike | None = None) -> dict:
    """Builds the corpus in `out_dir` unless an identical one is there; returns the corpus.json manifest.

    Args:
      out_dir: the corpus directory (created). Only its pretrain/, tasks/ and corpus.json are
        ever replaced.
      scale: 'tiny' (seconds, for tests), 'small' (the CPU demo, a few minutes), or 'full'.
      workers: rendering processes; default: the CPUs this process may use.
      progress: print a progress line to stderr.
      pretrain_hours: hours of packaged game audio added to the pretraining shards (0: none).
      package_cache: where the Debian packages are downloaded and unpacked (default
        `out_dir/packages`, kept across rebuilds).

    Raises:
      MissingToolError: a program or data package is missing (checked before any work).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if not (pretrain_hours >= 0 and math.isfinite(pretrain_hours)):
        raise ValueError(f"pretrain_hours must be a finite number >= 0, got {pretrain_hours!r}")
    for source in SOURCES.values():
        source.check_available()
    plans = {name: source.plan(scale) for name, source in SOURCES.items()}
    pretrain_shards = max(PRETRAIN_SHARDS[scale], math.ceil(pretrain_hours * SHARDS_PER_PACKAGED_HOUR))
    settings = _json_round_trip({
        "format": CORPUS_FORMAT,
        "scale": scale,
        "sample_rate": SAMPLE_RATE,
        "pretrain_shards": pretrain_shards,
        "task_shards": TASK_SHARDS[scale],
        "tasks": {name: plan.settings for name, plan in plans.items()},
        "pretrain_hours": pretrain_hours,
        "packaged_audio": {"packages": list(packaged_audio.PACKAGES),
                           "clip_seconds": packaged_audio.CLIP_SECONDS} if pretrain_hours > 0 else None,
    })
    manifest_path = os.path.join(out_dir, MANIFEST)
    existing = _read_json(manifest_path)
    if existing is not None and existing.get("settings") == settings:
        logger.info("demo corpus in %s is up to date; not rebuilding", out_dir)
        return existing

    started = time.monotonic()
    # after the check above, so that a finished corpus is reused where the packages cannot be fetched
    packaged_files, unreadable = [], {}
    package_cache = Path(package_cache or Path(out_dir) / "packages")
    if pretrain_hours > 0:
        packaged_files, unreadable = packaged_audio.select_files(packaged_audio.fetch(package_cache), pretrain_hours)
    _remove_previous_build(out_dir)
    packaged_jobs = packaged_audio.plan_jobs(packaged_files, package_cache)
    stats = _render_and_write(out_dir, scale, plans, packaged_jobs, pretrain_shards,
                              workers or len(os.sched_getaffinity(0)), progress)
    if unreadable:
        stats["pretrain"]["unreadable_package_files"] = unreadable
    for name, plan in plans.items():
        task_json = {
            "name": name,
            "classes": plan.classes,
            "num_classes": len(plan.classes),
            "multi_label": False,
            "sample_rate": SAMPLE_RATE,
            "split_rule": plan.split_rule,
            "splits": stats["tasks"][name],
        }
        _write_json(os.path.join(out_dir, "tasks", name, "task.json"), task_json)
    manifest = {
        "settings": settings,
        "pretrain": stats["pretrain"],
        "tasks": {name: {split: split_stats["clips"] for split, split_stats in stats["tasks"][name].items()}
                  for name in plans},
        "skipped_clips": stats["skipped"],
        "build_seconds": round(time.monotonic() - started, 1),
    }
    _write_json(manifest_path, manifest)  # last: its presence marks a complete corpus
    return manifest


def _render_and_write(out_dir, scale, plans, packaged_jobs, pretrain_shards, workers, progress) -> dict:
    """Runs every job in a process pool and streams its clips into the shard writers: a task's
    train clips to its task and the pretraining shards, packaged clips to the pretraining shards."""
    # Imported here, not at the top: "spawn" workers re-import this module, and must not load TensorFlow.
    from leaf_ssl.data.records import ShardWriter

    task_writers = {
        (name, split): ShardWriter(os.path.join(out_dir, "tasks", name), split, TASK_SHARDS[scale])
        for name in plans for split in SPLITS
    }
    pretrain_writer = ShardWriter(os.path.join(out_dir, "pretrain"), "pretrain", pretrain_shards)
    split_stats = {name: {split: _empty_split_stats(plans[name].classes) for split in SPLITS} for name in plans}
    pretrain_stats = {"clips": 0, "seconds": 0.0}
    packaged_stats = {"files": len(packaged_jobs), "clips": 0, "seconds": 0.0, "undecodable_files": []}

    jobs = _alternate([[(name, job) for job in plan.jobs] for name, plan in plans.items()]
                      + [[(PACKAGED, job) for job in packaged_jobs]])
    # "spawn": the parent has TensorFlow loaded, whose threads make fork unsafe.
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = pool.map(_run_job, [job for _, job in jobs])
        meter = _Progress(len(jobs), enabled=progress)
        for (name, job), clips in zip(jobs, results):
            if name == PACKAGED and not clips:
                packaged_stats["undecodable_files"].append(job.args[1])
            for clip in clips:
                seconds = clip.waveform.size / SAMPLE_RATE
                if name == PACKAGED:
                    if pretrain_writer.write(clip.id, clip.waveform):
                        packaged_stats["clips"] += 1
                        packaged_stats["seconds"] += seconds
                    continue
                if task_writers[name, clip.split].write(clip.id, clip.waveform, [clip.label]):
                    _add_clip(split_stats[name][clip.split], plans[name].classes[clip.label], seconds)
                if clip.split == TRAIN and pretrain_writer.write(clip.id, clip.waveform):
                    pretrain_stats["clips"] += 1
                    pretrain_stats["seconds"] += seconds
            meter.update(len(clips))
        meter.finish()

    skipped = Counter()
    for writer in [pretrain_writer, *task_writers.values()]:
        writer.close()
        skipped.update(writer.skipped)
    for stats in split_stats.values():
        for split in stats.values():
            split["seconds"] = round(split["seconds"], 1)
    pretrain_stats["seconds"] = round(pretrain_stats["seconds"] + packaged_stats["seconds"], 1)
    pretrain_stats["clips"] += packaged_stats["clips"]
    pretrain_stats["shards"] = pretrain_shards
    if packaged_jobs:
        packaged_stats["seconds"] = round(packaged_stats["seconds"], 1)
        pretrain_stats["packaged_audio"] = packaged_stats
    return {"tasks": split_stats, "pretrain": pretrain_stats, "skipped": dict(skipped)}


def _alternate(job_lists: list[list]) -> list:
    """Round-robin over the job lists, so that consecutive records (and every shard) mix sources."""
    rounds = itertools.zip_longest(*job_lists)
    return [job for jobs_of_round in rounds for job in jobs_of_round if job is not None]


def _run_job(job) -> list[LabelledClip]:
    return job()


def _empty_split_stats(classes: list[str]) -> dict:
    return {"clips": 0, "seconds": 0.0, "clips_per_class": {name: 0 for name in classes}}


def _add_clip(stats: dict, class_name: str, seconds: float) -> None:
    stats["clips"] += 1
    stats["seconds"] += seconds
    stats["clips_per_class"][class_name] += 1


class _Progress:
    """One self-overwriting progress line on stderr (a plain line per 10% when not a terminal)."""

    def __init__(self, total_jobs: int, enabled: bool):
        self.total_jobs, self.enabled = total_jobs, enabled
        self.jobs = self.clips = self.last_decile = 0
        self.started = time.monotonic()
        self.interactive = sys.stderr.isatty()

    def update(self, clips: int) -> None:
        self.jobs += 1
        self.clips += clips
        if not self.enabled:
            return
        line = (f"demo corpus: {self.jobs}/{self.total_jobs} jobs, {self.clips} clips, "
                f"{time.monotonic() - self.started:.0f} s")
        if self.interactive:
            print("\r" + line, end="", file=sys.stderr, flush=True)
        elif self.jobs * 10 // self.total_jobs > self.last_decile or self.jobs == self.total_jobs:
            self.last_decile = self.jobs * 10 // self.total_jobs
            print(line, file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.enabled and self.interactive:
            print(file=sys.stderr)


def _remove_previous_build(out_dir) -> None:
    """Deletes what an earlier (possibly different or interrupted) build left; nothing else."""
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # first: from here on the directory no longer claims to be complete
    for folder in ("pretrain", "tasks"):
        shutil.rmtree(os.path.join(out_dir, folder), ignore_errors=True)


def _read_json(path) -> dict | None:
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def _write_json(path, value) -> None:
    """Writes JSON atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".partial", "w") as file:
        json.dump(value, file, indent=2)
        file.write("\n")
    os.replace(path + ".partial", path)


def _json_round_trip(value):
    """`value` as it reads back from JSON (tuples become lists), so it compares equal to a stored copy."""
    return json.loads(json.dumps(value))
