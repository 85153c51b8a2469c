"""The TFRecord shard format: one `tf.train.Example` per clip.

Features of each Example:

* ``audio``: bytes, the clip as 16 kHz mono int16 little-endian PCM (at least one sample);
* ``id``: bytes, a UTF-8 clip identifier;
* ``labels``: int64 list, class indices (empty for unlabelled pretraining data);
* ``sample_rate``: int64, always 16000; stored so that a shard written at another rate is
  rejected at read time instead of being played at the wrong speed;
* ``encoding`` (optional): bytes, ``flac`` or ``opus`` when ``audio`` holds the clip compressed (a FLAC
  or an Ogg/Opus file, at 16 kHz) instead of PCM. Absent for PCM. Compressed shards are decoded once,
  into memory, by the reader that loads them (`leaf_ssl.data.in_memory`; soundfile's libsndfile); the
  tf.data pipeline reads PCM only.

Shards are named ``{prefix}-{index:05d}-of-{count:05d}.tfrecord``; `ShardWriter` fills them
round-robin, so shards hold near-equal clip counts and can be split between processes.

Each finished shard has a sidecar ``<shard>.count`` holding its number of records, written
after the shard itself, so a run on millions of clips (possibly in a bucket) knows its epoch
length without reading every shard at start-up.

Int16 conversion: float samples are clipped to [-1, 1] and stored as round(x * 32768) clipped to
the int16 range; readers divide by 32768, so stored values read back exactly.
"""
from __future__ import annotations

import io
import logging
import os
from collections import Counter
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from leaf_ssl.data import tfrecord_io
from leaf_ssl.data.example_proto import ExampleDecodeError, decode_example

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The sample rate of every waveform in the project, in Hz."""
CROP_SAMPLES = 15360
"""0.96 s at 16 kHz, the COLA crop length."""
SHARD_SUFFIX = ".tfrecord"
COUNT_SUFFIX = ".count"
INT16_SCALE = 32768.0
"""Divisor between stored int16 samples and float samples in [-1, 1)."""
PCM = "pcm"
ENCODINGS = {PCM: None, "flac": ("FLAC", "PCM_16"), "opus": ("OGG", "OPUS")}
"""Payload encodings: soundfile's (format, subtype) of each compressed one."""
OPUS_KBIT_PER_S = 20
"""Opus's target bit rate: wideband speech quality at 16 kHz (PCM: 256 kbit/s, FLAC about 110 on the demo corpus)."""
# libsndfile maps its compression level in [0, 1] linearly onto Opus's bit rate, measured on the demo corpus:
# about 258 kbit/s at 0 down to 7 at 1.
OPUS_COMPRESSION_LEVEL = (258 - OPUS_KBIT_PER_S) / 251


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


def serialize_clip(clip_id: str, waveform: np.ndarray, labels: Sequence[int] = (), encoding: str = PCM) -> bytes:
    """Encodes one clip as a serialized `tf.train.Example` (see `to_int16` for validation), its audio as
    int16 PCM or compressed (`ENCODINGS`)."""
    import tensorflow as tf  # the writers need TensorFlow; the readers do not

    if not clip_id:
        raise ValueError("clip id must be a non-empty string")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r} is not one of {list(ENCODINGS)}")
    pcm = to_int16(waveform)
    labels = [int(label) for label in labels]
    if any(label < 0 for label in labels):
        raise ValueError(f"labels must be non-negative class indices, got {labels}")
    feature = {
        "audio": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_encode_audio(pcm, encoding)])),
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[clip_id.encode("utf-8")])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=labels)),
        "sample_rate": tf.train.Feature(int64_list=tf.train.Int64List(value=[SAMPLE_RATE])),
    }
    if encoding != PCM:
        feature["encoding"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoding.encode()]))
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # map order fixed: same clip, same bytes


def _encode_audio(pcm: np.ndarray, encoding: str) -> bytes:
    if encoding == PCM:
        return pcm.astype("<i2").tobytes()
    import soundfile

    file_format, subtype = ENCODINGS[encoding]
    buffer = io.BytesIO()
    extra = {"compression_level": OPUS_COMPRESSION_LEVEL} if encoding == "opus" else {}
    soundfile.write(buffer, pcm, SAMPLE_RATE, format=file_format, subtype=subtype, **extra)
    return buffer.getvalue()


def decode_audio_payload(payload, encoding: str) -> np.ndarray:
    """A record's ``audio`` bytes as int16 PCM samples.

    Raises:
      CorruptRecordError: an unknown encoding, or a payload that does not decode.
    """
    if encoding == PCM:
        if not len(payload) or len(payload) % 2:
            raise CorruptRecordError("audio must be one non-empty int16 byte string")
        return np.frombuffer(payload, dtype="<i2")
    if encoding not in ENCODINGS:
        raise CorruptRecordError(f"audio encoding {encoding!r} is not one of {list(ENCODINGS)}")
    try:
        import soundfile
    except ImportError as error:
        raise ImportError(f"shards with {encoding} audio are decoded by soundfile, which does not import here "
                          f"({error}): pip install soundfile") from error
    try:
        samples, rate = soundfile.read(io.BytesIO(bytes(payload)), dtype="int16", always_2d=False)
    except (RuntimeError, ValueError, soundfile.LibsndfileError) as error:
        raise CorruptRecordError(f"{encoding} audio does not decode: {error}") from error
    if rate != SAMPLE_RATE or samples.ndim != 1 or not samples.size:
        raise CorruptRecordError(f"{encoding} audio is not mono 16 kHz ({rate} Hz, shape {samples.shape})")
    return samples


def parse_clip(serialized: bytes) -> Clip:
    """Decodes one serialized record into a `Clip` (NumPy; neither TensorFlow nor protobuf).

    Raises:
      CorruptRecordError: the bytes are not a valid clip record.
    """
    samples, clip_id, labels = parse_record(serialized)
    return Clip(clip_id, samples.astype(np.float32) / np.float32(INT16_SCALE), labels)


def parse_record(serialized: bytes) -> tuple[np.ndarray, str, np.ndarray]:
    """(int16 samples, id, int64 labels) of one serialized record.

    Raises:
      CorruptRecordError: the bytes are not a valid clip record.
    """
    try:
        features = decode_example(serialized)
    except ExampleDecodeError as error:
        raise CorruptRecordError(f"not a tf.train.Example: {error}") from error
    audio = features.get("audio", [])
    rate = features.get("sample_rate", [SAMPLE_RATE])
    encoding = bytes(features["encoding"][0]).decode("utf-8", errors="replace") if features.get("encoding") else PCM
    if len(audio) != 1 or not isinstance(audio[0], memoryview):
        raise CorruptRecordError("audio must be one non-empty int16 byte string")
    if rate != [SAMPLE_RATE]:
        raise CorruptRecordError(f"sample_rate {rate} is not [{SAMPLE_RATE}]")
    samples = decode_audio_payload(audio[0], encoding)
    ids = features.get("id", [])
    clip_id = bytes(ids[0]).decode("utf-8", errors="replace") if ids and isinstance(ids[0], memoryview) else ""
    labels = features.get("labels", [])
    if not all(isinstance(label, int) for label in labels):
        raise CorruptRecordError("labels are not int64")
    return samples, clip_id, np.asarray(labels, dtype=np.int64)


def record_encoding(serialized: bytes) -> str:
    """The ``encoding`` of one serialized record (`PCM` when it has none)."""
    try:
        values = decode_example(serialized).get("encoding")
    except ExampleDecodeError:
        return PCM
    return bytes(values[0]).decode("utf-8", errors="replace") if values else PCM


class ShardWriter:
    """Writes clips round-robin into `num_shards` TFRecord files; use as a context manager.

    Each shard is written under a temporary name and renamed on a clean `close()`, so a
    crashed build never leaves files that look complete. Clips that fail validation (empty,
    NaN/Inf, not mono) are not written: they are counted in `skipped` by reason and logged.
    """

    def __init__(self, out_dir: str | os.PathLike, prefix: str, num_shards: int, encoding: str = PCM):
        import tensorflow as tf

        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding {encoding!r} is not one of {list(ENCODINGS)}")
        self.encoding = encoding
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
            record = serialize_clip(clip_id, waveform, labels, self.encoding)
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
    import tensorflow as tf

    with tf.io.gfile.GFile(shard_path + COUNT_SUFFIX, "w") as sidecar:
        sidecar.write(f"{count}\n")


def read_record_count(shard_path: str) -> int | None:
    """The shard's record count from its sidecar, or None when there is none (or it is unreadable)."""
    try:
        return int(tfrecord_io.read_text(shard_path + COUNT_SUFFIX).strip())
    except (OSError, ValueError):  # TensorFlow's NotFoundError is an OSError too
        return None


def list_shards(path_or_pattern: str | os.PathLike) -> list[str]:
    """Sorted shard files: every ``*.tfrecord`` in a directory, or the matches of a glob pattern.

    Paths may be local or on cloud storage (``gs://bucket/audioset/*.tfrecord``, through
    TensorFlow's filesystems).

    Raises:
      FileNotFoundError: nothing matches; the message names the path.
    """
    path = os.fspath(path_or_pattern)
    is_dir = tfrecord_io.is_dir(path)
    pattern = os.path.join(path, "*" + SHARD_SUFFIX) if is_dir else path
    files = [f for f in tfrecord_io.glob(pattern)
             if not f.endswith((COUNT_SUFFIX, ".partial")) and not tfrecord_io.is_dir(f)]
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
        for index, serialized in shard_records(path, skipped):
            try:
                yield parse_clip(serialized)
            except CorruptRecordError as error:
                count_skip(skipped, str(error), path, index)


def shard_records(path: str, skipped: Counter[str] | None) -> Iterator[tuple[int, bytes]]:
    """(index, bytes) of each record of one shard, ending at damage (counted as one skip)."""
    records = tfrecord_io.read_records(path)
    index = 0
    while True:
        try:
            serialized = next(records)
        except StopIteration:
            return
        except tfrecord_io.DamagedShardError as error:
            count_skip(skipped, f"damaged shard file: {error}", path, index)
            return
        yield index, serialized
        index += 1


def count_skip(skipped: Counter[str] | None, reason: str, path: str, index: int) -> None:
    logger.warning("skipping record %d of %s: %s", index, path, reason)
    if skipped is not None:
        skipped[reason] += 1
