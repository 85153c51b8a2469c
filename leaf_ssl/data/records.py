"""The TFRecord shard format: one `tf.train.Example` per clip.

Features of each Example:

* ``audio``: bytes, the clip as 16 kHz mono int16 little-endian PCM (at least one sample);
* ``id``: bytes, a UTF-8 clip identifier;
* ``labels``: int64 list, class indices (empty for unlabelled pretraining data);
* ``sample_rate``: int64, always 16000; stored so that a shard written at another rate is
  rejected at read time instead of being played at the wrong speed.

Shards are named ``{prefix}-{index:05d}-of-{count:05d}.tfrecord``; `ShardWriter` fills them
round-robin, so shards hold near-equal clip counts and can be split between processes.

Each finished shard has a sidecar ``<shard>.count`` holding its number of records, written
after the shard itself, so a run on millions of clips (possibly in a bucket) knows its epoch
length without reading every shard at start-up.

Int16 conversion: float samples are clipped to [-1, 1] and stored as round(x * 32768) clipped to
the int16 range; readers divide by 32768, so stored values read back exactly.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from leaf_ssl.data.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

SHARD_SUFFIX = ".tfrecord"
COUNT_SUFFIX = ".count"
INT16_SCALE = 32768.0
"""Divisor between stored int16 samples and float samples in [-1, 1)."""


class Clip(NamedTuple):
    """One decoded clip: identifier, float32 waveform at 16 kHz, int64 class labels."""

    id: str
    waveform: np.ndarray
    labels: np.ndarray


class CorruptRecordError(ValueError):
    """A serialized record that is not a valid clip (unparsable, odd byte count, wrong rate...)."""


def shard_name(prefix: str, index: int, count: int) -> str:
    """The file name of shard `index` of `count`."""
    return f"{prefix}-{index:05d}-of-{count:05d}{SHARD_SUFFIX}"


def to_int16(waveform: np.ndarray) -> np.ndarray:
    """Validates a mono waveform and converts it to int16 PCM.

    Accepts int16 (returned unchanged) or float (clipped to [-1, 1] and scaled).

    Raises:
      ValueError: the waveform is not 1-D, is empty, or holds NaN/Inf.
      TypeError: the dtype is neither int16 nor floating point.
    """
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono with shape (samples,), got shape {waveform.shape}")
    if waveform.size == 0:
        raise ValueError("waveform is empty")
    if waveform.dtype == np.int16:
        return waveform
    if not np.issubdtype(waveform.dtype, np.floating):
        raise TypeError(f"waveform must be int16 or float, got {waveform.dtype}")
    if not np.all(np.isfinite(waveform)):
        raise ValueError("waveform holds NaN or Inf samples")
    scaled = np.round(np.clip(waveform.astype(np.float64), -1.0, 1.0) * INT16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def serialize_clip(clip_id: str, waveform: np.ndarray, labels: Sequence[int] = ()) -> bytes:
    """Encodes one clip as a serialized `tf.train.Example` (see `to_int16` for validation)."""
    if not clip_id:
        raise ValueError("clip id must be a non-empty string")
    pcm = to_int16(waveform).astype("<i2").tobytes()
    labels = [int(label) for label in labels]
    if any(label < 0 for label in labels):
        raise ValueError(f"labels must be non-negative class indices, got {labels}")
    feature = {
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[pcm])),
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode("utf-8")])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
        "sample_rate": tf.train.Feature(int64_list=tf.train.Int64List(value=[SAMPLE_RATE])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # map order fixed: same clip, same bytes


def parse_clip(serialized: bytes) -> Clip:
    """Decodes one serialized record into a `Clip` (NumPy, no TF graph).

    Raises:
      CorruptRecordError: the bytes are not a valid clip record.
    """
    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # protobuf raises its own DecodeError; any failure means corrupt
        raise CorruptRecordError(f"not a tf.train.Example: {error}") from error
    features = example.features.feature
    audio = features["audio"].bytes_list.value if "audio" in features else []
    rate = list(features["sample_rate"].int64_list.value) if "sample_rate" in features else [SAMPLE_RATE]
    if len(audio) != 1 or not audio[0] or len(audio[0]) % 2:
        raise CorruptRecordError("audio must be one non-empty int16 byte string")
    if rate != [SAMPLE_RATE]:
        raise CorruptRecordError(f"sample_rate {rate} is not [{SAMPLE_RATE}]")
    ids = features["id"].bytes_list.value if "id" in features else []
    clip_id = ids[0].decode("utf-8", errors="replace") if ids else ""
    waveform = np.frombuffer(audio[0], dtype="<i2").astype(np.float32) / np.float32(INT16_SCALE)
    labels = np.asarray(features["labels"].int64_list.value if "labels" in features else [], dtype=np.int64)
    return Clip(clip_id, waveform, labels)


class ShardWriter:
    """Writes clips round-robin into `num_shards` TFRecord files; use as a context manager.

    Each shard is written under a temporary name and renamed on a clean `close()`, so a
    crashed build never leaves files that look complete. Clips that fail validation (empty,
    NaN/Inf, not mono) are not written: they are counted in `skipped` by reason and logged.
    """

    def __init__(self, out_dir: str | os.PathLike, prefix: str, num_shards: int):
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        os.makedirs(out_dir, exist_ok=True)
        self.paths = [os.path.join(out_dir, shard_name(prefix, i, num_shards)) for i in range(num_shards)]
        self._writers = [tf.io.TFRecordWriter(path + ".partial") for path in self.paths]
        self._counts = [0] * num_shards
        self.written = 0
        self.skipped: Counter[str] = Counter()

    def write(self, clip_id: str, waveform: np.ndarray | Callable[[], np.ndarray], labels: Sequence[int] = ()) -> bool:
        """Writes one clip to the next shard; returns False (and counts it) if it was rejected.

        `waveform` may be a function that decodes it (e.g. `lambda: decode_audio(path)`): a
        decoding error (`BadAudioError`, any ValueError or OSError) is then a counted skip too.
        """
        try:
            if callable(waveform):
                waveform = waveform()
            record = serialize_clip(clip_id, waveform, labels)
        except (ValueError, TypeError, OSError) as error:
            self.skipped[str(error)] += 1
            logger.warning("skipping clip %r: %s", clip_id, error)
            return False
        shard = self.written % len(self._writers)
        self._writers[shard].write(record)
        self._counts[shard] += 1
        self.written += 1
        return True

    def close(self) -> None:
        """Flushes every shard, gives it its final name and writes its record count."""
        for writer, path, count in zip(self._writers, self.paths, self._counts):
            writer.close()
            os.replace(path + ".partial", path)
            write_record_count(path, count)
        self._writers = []

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:  # leave only .partial files behind: nothing that looks like a finished shard
            for writer in self._writers:
                writer.close()


def write_shards(
    clips: Iterable[tuple[str, np.ndarray, Sequence[int]]],
    out_dir: str | os.PathLike,
    prefix: str,
    num_shards: int,
) -> ShardWriter:
    """Writes (id, waveform or decoder, labels) clips to shards; returns the closed writer for its
    counts. Pass decoders (`lambda: decode_audio(path)`), not decoded waveforms, when a file may be
    bad: an error raised inside the `clips` generator itself ends it, and with it the shards."""
    with ShardWriter(out_dir, prefix, num_shards) as writer:
        for clip_id, waveform, labels in clips:
            writer.write(clip_id, waveform, labels)
    return writer


def write_record_count(shard_path: str, count: int) -> None:
    """Writes the sidecar of a finished shard: its number of (valid) records."""
    with tf.io.gfile.GFile(shard_path + COUNT_SUFFIX, "w") as sidecar:
        sidecar.write(f"{count}\n")


def read_record_count(shard_path: str) -> int | None:
    """The shard's record count from its sidecar, or None when there is none (or it is unreadable)."""
    try:
        with tf.io.gfile.GFile(shard_path + COUNT_SUFFIX) as sidecar:
            return int(sidecar.read().strip())
    except (tf.errors.NotFoundError, ValueError):
        return None


def list_shards(path_or_pattern: str | os.PathLike) -> list[str]:
    """Sorted shard files: every ``*.tfrecord`` in a directory, or the matches of a glob pattern.

    Paths may be local or on cloud storage (``gs://bucket/audioset/*.tfrecord``, through
    `tf.io.gfile`).

    Raises:
      FileNotFoundError: nothing matches; the message names the path.
    """
    path = os.fspath(path_or_pattern)
    is_dir = tf.io.gfile.isdir(path)
    pattern = os.path.join(path, "*" + SHARD_SUFFIX) if is_dir else path
    files = sorted(f for f in tf.io.gfile.glob(pattern)
                   if not f.endswith((COUNT_SUFFIX, ".partial")) and not tf.io.gfile.isdir(f))
    if not files:
        what = "directory" if is_dir else "pattern"
        raise FileNotFoundError(f"no TFRecord shards found for {what} {path!r} (looked for {pattern!r})")
    return files


def read_clips(path_or_pattern: str | os.PathLike, skipped: Counter[str] | None = None) -> Iterator[Clip]:
    """Yields every valid clip of the shards in file order, as NumPy `Clip`s (for probes and tools).

    Corrupt records are skipped with a logged warning and counted by reason in `skipped` when given.
    A shard file damaged at the TFRecord level (truncated, bad checksum) ends at the damage.
    """
    for path in list_shards(path_or_pattern):
        records = iter(tf.data.TFRecordDataset(path).as_numpy_iterator())
        index = 0
        while True:
            try:
                serialized = next(records)
            except StopIteration:
                break
            except tf.errors.DataLossError as error:
                _count_skip(skipped, f"damaged shard file: {error.message}", path, index)
                break
            try:
                yield parse_clip(serialized)
            except CorruptRecordError as error:
                _count_skip(skipped, str(error), path, index)
            index += 1


def _count_skip(skipped: Counter[str] | None, reason: str, path: str, index: int) -> None:
    logger.warning("skipping record %d of %s: %s", index, path, reason)
    if skipped is not None:
        skipped[reason] += 1
