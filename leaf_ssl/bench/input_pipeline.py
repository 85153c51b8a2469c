"""The input benchmark: the pretraining readers alone, in crops per second per CPU core.

`python -m leaf_ssl.bench --what input [--shards DIR] [--clip_seconds 10] [--threads 1,2] [--readers tf_data,in_memory]`

The readers are `leaf_ssl.data.pipeline.pretraining_dataset` (tf.data) and
`leaf_ssl.data.in_memory.pretraining_stream` (shards decoded into memory), exactly as training builds
them, read from TFRecord shards of `--clip_seconds` clips (AudioSet's are 10 s); without `--shards`,
synthetic int16 noise clips are written to a temporary folder first. One pipeline per reader and
entry of `--threads`, each limited to that many threads (tf.data's pool; the in-memory reader's
workers) and pinned to that many cores; the pipelines take turns within
each repeat (so a burst of load from other processes hits them alike): a few untimed batches to
refill the pipeline's buffers, then `--input_batches` timed batches. Per row, medians over repeats:

  crops_per_s          crops (2 per pair) delivered per wall-clock second;
  crops_per_s_per_core crops_per_s / threads;
  crops_per_cpu_s      crops per second of CPU time used by the whole process (all threads): the
                       per-core cost, and the number least disturbed by other processes' load;
  cores_busy           CPU seconds / wall seconds: how many cores the pipeline kept busy;
  cores_waiting        seconds its threads were ready but waited for a core / wall seconds (Linux):
                       high when other processes (or more threads than pinned cores) crowd it out;
  vs_tf_data           (in-memory rows) crops_per_s against the tf.data row of as many threads.
"""
from __future__ import annotations

import os
import statistics
import tempfile
from typing import Any, Iterable

import numpy as np
import tensorflow as tf

from leaf_ssl.bench.host import CpuMeter, Usage, busy_and_waiting, pin_process, usable_cores
from leaf_ssl.data import in_memory
from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.data.pipeline import BatchStream, pretraining_dataset
from leaf_ssl.data.records import write_shards

READERS = ("tf_data", "in_memory")

REFILL_BATCHES = 5
"""Untimed batches before each timed stretch: they drain what a pipeline prefetched while the other
pipelines were being timed, so that every timed batch is produced while it is timed."""


def write_synthetic_shards(out_dir: str | os.PathLike, *, clips: int, clip_seconds: float, num_shards: int,
                           seed: int = 0) -> int:
    """Writes `clips` clips of int16 noise, `clip_seconds` each, as `num_shards` shards; returns the
    count written. The content does not matter to the pipeline, only the record sizes do."""
    if clips < num_shards:
        raise ValueError(f"need at least one clip per shard: {clips} clips for {num_shards} shards")
    samples = int(round(clip_seconds * SAMPLE_RATE))
    if samples < 1:
        raise ValueError(f"clip_seconds {clip_seconds} gives no samples at {SAMPLE_RATE} Hz")
    rng = np.random.default_rng(seed)

    def noise_clips() -> Iterable[tuple[str, np.ndarray, tuple]]:
        for index in range(clips):
            yield f"synthetic-{index:06d}", rng.integers(-3000, 3000, samples, dtype=np.int16), ()

    return write_shards(noise_clips(), out_dir, "synthetic", num_shards).written


def thread_counts(spec: str | None, cores: int) -> list[int]:
    """The thread counts to measure: `spec` ('1,2') or, by default, 1 and every core."""
    if spec is None:
        return sorted({1, cores})
    parts = spec.split(",")
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(f"--threads must be positive integers separated by commas, got {spec!r}")
    return [int(part) for part in parts]


def _thread_limited(batches: BatchStream, threads: int) -> BatchStream:
    """The same pipeline with tf.data's own thread pool (and each op's parallelism) capped."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = threads
    return BatchStream(batches.dataset.with_options(options), batches.files, batches.records_per_epoch)


def _take(batches: BatchStream, count: int) -> None:
    for _ in range(count):
        next(batches)


def measure_pipelines(shards: str, args: Any) -> list[dict]:
    """Times one thread-limited pipeline per thread count on `shards`, interleaved; one row each."""
    if args.batch % 2:
        raise ValueError(f"--batch counts crops, two per pair, so it must be even; got {args.batch}")
    cores = usable_cores()
    counts = thread_counts(args.threads, len(cores))
    if max(counts) > len(cores):
        raise ValueError(f"--threads {args.threads}: this process may use only {len(cores)} core(s)")

    readers = args.readers.split(",")
    if set(readers) - set(READERS):
        raise ValueError(f"--readers must name some of {list(READERS)}, got {args.readers!r}")
    make = {
        "tf_data": lambda threads: _thread_limited(
            pretraining_dataset(shards, per_process_batch=args.batch // 2, seed=0, process_index=0, process_count=1,
                                shuffle_buffer=args.shuffle_buffer), threads),
        "in_memory": lambda threads: in_memory.pretraining_stream(
            shards, per_process_batch=args.batch // 2, seed=0, process_index=0, process_count=1, workers=threads),
    }
    cases = [(reader, threads) for reader in readers for threads in counts]
    pipelines = {case: make[case[0]](case[1]) for case in cases}
    usages: dict[tuple[str, int], list[Usage]] = {case: [] for case in cases}
    pinned = True
    try:
        for repeat in range(args.repeats):
            # Rotate the order each repeat, so that no pipeline always follows the same neighbour.
            order = cases[repeat % len(cases):] + cases[:repeat % len(cases)]
            for case in order:
                pinned &= pin_process(set(cores[:case[1]]))
                _take(pipelines[case], REFILL_BATCHES)
                with CpuMeter() as meter:
                    _take(pipelines[case], args.input_batches)
                usages[case].append(meter.usage)
    finally:
        pin_process(set(cores))

    any_pipeline = next(iter(pipelines.values()))
    clip_seconds = _mean_clip_seconds(any_pipeline.files, any_pipeline.records_per_epoch)
    crops = args.batch * args.input_batches
    rows = []
    for reader, threads in cases:
        seconds = statistics.median(usage.wall_s for usage in usages[reader, threads])
        cpu_seconds = statistics.median(usage.cpu_s for usage in usages[reader, threads])
        prefix = "input" if reader == "tf_data" else reader
        rows.append({"case": f"{prefix}_{threads}_thread{'s' if threads > 1 else ''}", "reader": reader,
                     "threads": threads, "pinned": pinned, "batch": args.batch, "clip_s": clip_seconds,
                     "ms": 1e3 * seconds / args.input_batches, "crops_per_s": crops / seconds,
                     "crops_per_s_per_core": crops / seconds / threads, "crops_per_cpu_s": crops / cpu_seconds,
                     **busy_and_waiting(usages[reader, threads])})
    by_case = {(row["reader"], row["threads"]): row for row in rows}
    for row in rows:
        if row["reader"] == "in_memory" and ("tf_data", row["threads"]) in by_case:
            row["vs_tf_data"] = row["crops_per_s"] / by_case["tf_data", row["threads"]]["crops_per_s"]
    return rows


def _mean_clip_seconds(files: list[str], records: int) -> float:
    """The clips' mean duration, from the shards' sizes: each record is its int16 audio plus a few
    dozen bytes of framing, id and labels, which this neglects."""
    total_bytes = sum(tf.io.gfile.stat(path).length for path in files)
    return total_bytes / records / 2 / SAMPLE_RATE


def bench_input(args: Any) -> list[dict]:
    """The input benchmark on `--shards`, or on synthetic shards written to a temporary folder."""
    if args.shards:
        return measure_pipelines(args.shards, args)
    with tempfile.TemporaryDirectory(prefix="leaf_ssl_bench_input_") as shards:
        write_synthetic_shards(shards, clips=args.clips, clip_seconds=args.clip_seconds, num_shards=args.num_shards)
        return measure_pipelines(shards, args)
