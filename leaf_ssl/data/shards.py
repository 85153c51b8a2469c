"""Which shards a process reads, and how many valid clips they hold (no TensorFlow needed)."""
from __future__ import annotations

import os

import jax

from leaf_ssl.data import records, tfrecord_io


def resolve_process(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """(index, count), each defaulting to jax's; checks that the index is in range."""
    if process_index is None or process_count is None:
        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
    return process_index, process_count


def local_shards(
    path_or_pattern: str | os.PathLike, process_index: int | None = None, process_count: int | None = None
) -> list[str]:
    """This process's shards: ``list_shards(path)[process_index::process_count]``.

    Raises:
      FileNotFoundError: no shards found.
      ValueError: fewer shards than processes (some process would have no data).
    """
    index, count = resolve_process(process_index, process_count)
    files = records.list_shards(path_or_pattern)
    if len(files) < count:
        raise ValueError(
            f"{len(files)} shard(s) in {os.fspath(path_or_pattern)!r} for {count} processes: every process "
            "needs at least one shard; write the data with more shards"
        )
    return files[index::count]


def count_valid_records(files: list[str]) -> int:
    """The valid records of `files`: from each shard's ``.count`` sidecar where there is one
    (written by our shard writers after the shard), otherwise counted by parsing every record."""
    sidecar_counts = [records.read_record_count(path) for path in files]
    unlisted = [path for path, count in zip(files, sidecar_counts) if count is None]
    listed_total = sum(count for count in sidecar_counts if count is not None)
    return listed_total + sum(1 for path in unlisted for _ in records.read_clips(path))


def shards_encoding(files: list[str]) -> str:
    """The audio encoding of the first record of `files` (`records.PCM` for an empty first shard): a
    corpus is written with one encoding."""
    for path in files:
        for serialized in tfrecord_io.read_records(path):
            return records.record_encoding(serialized)
    return records.PCM
