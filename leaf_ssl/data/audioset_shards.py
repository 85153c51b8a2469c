"""Writing one AudioSet shard: decode its clips, cut them to their segments, write them, report.

A shard is the unit of work and of resumption. `build_shard` writes it under a temporary name,
renames it into place, writes its record-count sidecar (`leaf_ssl.data.records`), and only then
its report (``reports/<shard>.json``), which is the shard's done-marker: a rerun reuses a shard
whose report holds the same plan fingerprint (same clips, files, labels and settings) and whose
file still has the recorded size and count (`finished_shard_report`). Everything written goes
through `tf.io.gfile`, so the output folder may be a bucket (``gs://...``).

Cutting: most downloaders save just the 10 s segment, but some save the whole video's audio. A
file longer than its segment by more than `WHOLE_VIDEO_MARGIN_SECONDS` is taken to be the whole
video, and only the segment's frames [start, end) are read from it; any other file is used whole.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
import re
import time
from collections import Counter
from typing import Callable, NamedTuple, Sequence

import numpy as np
import soundfile
import tensorflow as tf

from leaf_ssl.data.audio import (SAMPLE_RATE, SOUNDFILE_ERRORS, BadAudioError, decode_with_ffmpeg, needs_ffmpeg,
                                 prepare_waveform)
from leaf_ssl.progress import ProgressLine
from leaf_ssl.data.records import COUNT_SUFFIX, SHARD_SUFFIX, read_record_count, serialize_clip, write_record_count

logger = logging.getLogger(__name__)

SHARD_REPORT_FORMAT = 1  # bump when a shard's content would change for the same plan
REPORTS_FOLDER = "reports"
WORKER_POLL_SECONDS = 0.5
WHOLE_VIDEO_MARGIN_SECONDS = 1.0
"""A file this much longer than its segment holds the whole video: only the segment is read."""


class ClipPlan(NamedTuple):
    """A clip to write: its id, its file relative to the audio folder, label indices, segment."""

    id: str
    file: str
    labels: tuple[int, ...]
    start: float
    end: float
    file_bytes: int


class ShardJob(NamedTuple):
    """Everything a worker needs to write one shard (picklable, for worker processes)."""

    name: str
    out_dir: str
    audio_dir: str
    clips: tuple[ClipPlan, ...]
    min_seconds: float
    fingerprint: str

    @property
    def shard_path(self) -> str:
        return os.path.join(self.out_dir, self.name)

    @property
    def report_path(self) -> str:
        return os.path.join(self.out_dir, REPORTS_FOLDER, self.name.removesuffix(SHARD_SUFFIX) + ".json")


def plan_shard(name: str, out_dir: str, audio_dir: str, clips: list[ClipPlan], min_seconds: float) -> ShardJob:
    """A `ShardJob` whose fingerprint covers every input that decides the shard's bytes."""
    plan = [SHARD_REPORT_FORMAT, name, min_seconds, WHOLE_VIDEO_MARGIN_SECONDS, [list(clip) for clip in clips]]
    fingerprint = hashlib.sha256(json.dumps(plan).encode("utf-8")).hexdigest()
    return ShardJob(name, out_dir, audio_dir, tuple(clips), min_seconds, fingerprint)


def finished_shard_report(job: ShardJob) -> dict | None:
    """The report of an earlier build of exactly this shard, if that build finished and is intact."""
    report = read_json(job.report_path)
    if report is None or report.get("fingerprint") != job.fingerprint:
        return None
    if not tf.io.gfile.exists(job.shard_path) or tf.io.gfile.stat(job.shard_path).length != report.get("shard_bytes"):
        return None  # the shard was deleted or damaged after its report was written
    if read_record_count(job.shard_path) != report.get("written"):
        return None  # its record-count sidecar (which spares the pipeline a full read) is gone or wrong
    return report


def build_shard(job: ShardJob, on_clip: Callable[[], None]) -> dict:
    """Writes the shard and its report; returns the report. `on_clip` is called after each clip."""
    corrupt, too_short, label_counts = [], [], Counter()
    written, seconds, cut = 0, 0.0, 0
    partial_path = job.shard_path + ".partial"
    with tf.io.TFRecordWriter(partial_path) as writer:
        for clip in job.clips:
            try:
                waveform, was_cut = read_segment(os.path.join(job.audio_dir, clip.file), clip.start, clip.end)
            except BadAudioError as error:
                corrupt.append({"file": clip.file, "reason": error.reason})
                on_clip()
                continue
            duration = waveform.size / SAMPLE_RATE
            if waveform.size == 0 or duration < job.min_seconds:
                too_short.append({"id": clip.id, "file": clip.file, "seconds": round(duration, 3)})
                on_clip()
                continue
            writer.write(serialize_clip(clip.id, waveform, clip.labels))
            written += 1
            seconds += duration
            cut += was_cut
            label_counts.update(clip.labels)
            on_clip()
    tf.io.gfile.rename(partial_path, job.shard_path, overwrite=True)
    write_record_count(job.shard_path, written)
    report = {
        "format": SHARD_REPORT_FORMAT,
        "fingerprint": job.fingerprint,
        "shard": job.name,
        "shard_bytes": tf.io.gfile.stat(job.shard_path).length,
        "clips_assigned": len(job.clips),
        "written": written,
        "seconds": seconds,
        "cut_to_segment": cut,
        "corrupt": corrupt,
        "too_short": too_short,
        "label_counts": {str(index): count for index, count in sorted(label_counts.items())},
    }
    write_json(job.report_path, report)  # last: the shard counts as finished from here on
    return report


def read_segment(path: str, start: float, end: float) -> tuple[np.ndarray, bool]:
    """Decodes a clip's audio as 16 kHz mono float32; True with it when the file was cut to [start, end).

    Raises:
      BadAudioError: the file is unreadable, empty or holds NaN/Inf (see `leaf_ssl.data.audio`).
    """
    try:
        with soundfile.SoundFile(path) as sound:
            rate, frames = sound.samplerate, sound.frames
            whole_video = frames > (end - start + WHOLE_VIDEO_MARGIN_SECONDS) * rate
            if whole_video:  # read just the segment: decoding an hour of audio for 10 s would waste minutes
                sound.seek(min(round(start * rate), frames))
                samples = sound.read(round((end - start) * rate), dtype="float32", always_2d=True)
            else:
                samples = sound.read(dtype="float32", always_2d=True)
    except SOUNDFILE_ERRORS as error:  # m4a, opus, webm...: ffmpeg decodes the whole file, then it is cut
        if not needs_ffmpeg(path):
            raise BadAudioError(path, f"unreadable: {error}") from error
        rate, samples = SAMPLE_RATE, decode_with_ffmpeg(path, soundfile_error=error)
        whole_video = samples.shape[0] > (end - start + WHOLE_VIDEO_MARGIN_SECONDS) * rate
        if whole_video:
            samples = samples[round(start * rate):round(end * rate)]
    if whole_video and samples.shape[0] == 0:
        return np.zeros(0, np.float32), True  # the video ends before the segment starts: a clip of 0 s
    return prepare_waveform(samples, rate, source=path), whole_video


def read_json(path: str) -> dict | None:
    """A JSON file's content, or None when it is absent or unreadable (e.g. torn by a crash)."""
    try:
        with tf.io.gfile.GFile(path) as file:
            return json.load(file)
    except (tf.errors.OpError, ValueError):
        return None


def write_json(path: str, value) -> None:
    """Writes JSON atomically: a temporary file renamed over the target."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path + ".partial", "w") as file:
        file.write(json.dumps(value, indent=2) + "\n")
    tf.io.gfile.rename(path + ".partial", path, overwrite=True)


def delete_stale_shards(out_dir: str, split_name: str, num_shards: int) -> None:
    """Deletes the split's shards, sidecars and reports of another shard count, and partial files.

    Another shard count's files would be picked up by 'OUT/train-*' next to the new ones; partial
    files are leftovers of an interrupted run.
    """
    name = re.escape(split_name)
    ours = re.compile(rf"{name}-\d{{5}}-of-(?P<count>\d{{5}})({re.escape(SHARD_SUFFIX)}({re.escape(COUNT_SUFFIX)})?"
                      rf"|\.json)(?P<partial>\.partial)?")
    tf.io.gfile.makedirs(os.path.join(out_dir, REPORTS_FOLDER))
    for folder in (out_dir, os.path.join(out_dir, REPORTS_FOLDER)):
        for entry in tf.io.gfile.listdir(folder):
            match = ours.fullmatch(entry)
            if match and (int(match["count"]) != num_shards or match["partial"]):
                logger.info("deleting stale %s", os.path.join(folder, entry))
                tf.io.gfile.remove(os.path.join(folder, entry))


def build_or_reuse_shards(jobs: list[ShardJob], workers: int | None, title: str,
                          progress: bool) -> tuple[list[dict], dict]:
    """Every job's report, in job order, reusing finished shards and building the others with
    up to `workers` processes (default: the CPUs this process may use); and the split report's
    `shards` entry (count, built, reused, build_seconds)."""
    started = time.monotonic()
    reports = {job.name: finished_shard_report(job) for job in jobs}
    to_build = [job for job in jobs if reports[job.name] is None]
    if len(to_build) < len(jobs):
        logger.info("reusing %d finished shard(s) of %d", len(jobs) - len(to_build), len(jobs))
    workers = min(workers or len(os.sched_getaffinity(0)), max(len(to_build), 1))
    reports.update(zip((job.name for job in to_build), build_shards(to_build, workers, title, progress)))
    summary = {"count": len(jobs), "built": len(to_build), "reused": len(jobs) - len(to_build),
               "build_seconds": round(time.monotonic() - started, 1)}
    return [reports[job.name] for job in jobs], summary


def build_shards(jobs: list[ShardJob], workers: int, title: str, progress: bool) -> list[dict]:
    """Builds the shards, in this process when one worker suffices, else in a process pool."""
    meter = _Progress(title, sum(len(job.clips) for job in jobs), len(jobs), enabled=progress)
    if workers == 1:
        reports = []
        for job in jobs:
            reports.append(build_shard(job, meter.count_clip))
            meter.count_shard()
        meter.finish()
        return reports
    # "spawn": the parent has TensorFlow loaded, whose threads make fork unsafe.
    context = multiprocessing.get_context("spawn")
    clips_done = context.Value("q", 0)
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_share_clip_counter,
                                                initargs=(clips_done,)) as pool:
        futures = [pool.submit(_build_shard_in_worker, job) for job in jobs]
        pending = set(futures)
        try:
            while pending:
                done, pending = concurrent.futures.wait(pending, WORKER_POLL_SECONDS,
                                                        concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    future.result()  # a worker's error stops the build now, not after every shard
                meter.show(clips_done.value, len(futures) - len(pending))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    meter.finish()
    return [future.result() for future in futures]


_clip_counter = None  # in worker processes: the parent's shared count of clips processed


def _share_clip_counter(counter) -> None:
    global _clip_counter
    _clip_counter = counter


def _build_shard_in_worker(job: ShardJob) -> dict:
    return build_shard(job, _count_clip_in_worker)


def _count_clip_in_worker() -> None:
    with _clip_counter.get_lock():
        _clip_counter.value += 1


def merge_shard_reports(shard_reports: list[dict], labels: Sequence[NamedTuple]) -> dict:
    """Totals over shards (in shard order, so the result does not depend on which run built which);
    `labels[i]` describes class index i (its fields are copied into the label counts)."""
    corrupt = [item for report in shard_reports for item in report["corrupt"]]
    too_short = [item for report in shard_reports for item in report["too_short"]]
    seconds = sum(report["seconds"] for report in shard_reports)
    label_counts = Counter()
    for report in shard_reports:
        label_counts.update({int(index): count for index, count in report["label_counts"].items()})
    return {
        "corrupt": {"count": len(corrupt), "by_reason": dict(Counter(item["reason"].split(":")[0] for item in corrupt)),
                    "files": corrupt},
        "too_short": {"count": len(too_short), "clips": too_short},
        "cut_to_segment": sum(report["cut_to_segment"] for report in shard_reports),
        "written": {"clips": sum(report["written"] for report in shard_reports), "seconds": round(seconds, 1),
                    "hours": round(seconds / 3600, 3)},
        "label_counts": [{**labels[index]._asdict(), "clips": count} for index, count in sorted(label_counts.items())],
    }


class _Progress:
    """Clips and shards done, as one `ProgressLine`: counted here, or set from the workers' shared count."""

    def __init__(self, title: str, total_clips: int, total_shards: int, enabled: bool):
        self.line = ProgressLine(title, total_clips, "clips", enabled=enabled and total_shards > 0)
        self.total_shards = total_shards
        self.clips = self.shards = 0

    def count_clip(self) -> None:
        self.show(self.clips + 1, self.shards)

    def count_shard(self) -> None:
        self.show(self.clips, self.shards + 1)

    def show(self, clips: int, shards: int) -> None:
        self.clips, self.shards = clips, shards
        self.line.update(clips, f"{shards}/{self.total_shards} shards")

    def finish(self) -> None:
        self.line.finish(self.clips, f"{self.shards}/{self.total_shards} shards")



