"""The tf.data input pipeline of contrastive pretraining: pairs of random crops of each clip.

Stages, per process (each process reads only its own shards, ``files[process_index::process_count]``):

1. epoch ``e`` (counting from 0, repeating forever): shard order permuted, shards interleaved,
   records shuffled; all seeded by (seed, process, e), so each epoch has a different order and
   every run with the same seed has the same one;
2. each serialized record gets its position ``i`` inside its epoch and is parsed and validated
   (no audio decoding yet); corrupt records are dropped and counted (see below);
3. ``start_batch`` whole batches of valid records are skipped here, before any audio work;
4. two independent crops of ``crop_samples`` are cut from each clip at random starts drawn with
   stateless random ops keyed by (seed, process, e, i): so a clip's crops do not depend on how
   many batches were skipped or on thread scheduling. A clip shorter than a crop is zero-padded
   at its end (both crops then start at 0);
5. batches of ``per_process_batch`` pairs: crops decoded from int16, each L2-normalised
   (`tf.math.l2_normalize`: silence stays zero, never NaN), Gaussian noise of ``noise_std``
   added to the positives, keyed by (seed, process, batch number).

`labelled_dataset` is the same stream for supervised training: one crop per clip with its
labels as a multi-hot vector; a record without a label in range counts as corrupt there.

Corrupt records (not a tf.train.Example, no ``audio``, an odd or zero byte count, a
``sample_rate`` other than 16000) never stop a run. They are counted exactly: a gap in the record
positions ``i`` of the surviving records (plus an end-of-epoch marker for gaps at the end) is
the number dropped; each batch carries the count of records dropped since the previous batch,
and `BatchStream` adds it to ``skipped_records`` and logs a warning. A shard file
damaged at the TFRecord level (truncated, bad checksum) ends at the damage with TensorFlow's
logged warning; the records after it cannot be read, so they are not counted.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Iterator

import numpy as np
import tensorflow as tf

from leaf_ssl.data.records import CROP_SAMPLES, INT16_SCALE, SAMPLE_RATE
from leaf_ssl.data.shards import count_valid_records, local_shards, resolve_process

logger = logging.getLogger(__name__)

# Domains of the stateless random keys, so that no two uses of randomness share a key.
_ORDER, _CROPS, _NOISE = 0, 1, 2

_PARSE_FEATURES = {
    "audio": tf.io.FixedLenFeature([], tf.string),
    "sample_rate": tf.io.FixedLenFeature([], tf.int64, default_value=SAMPLE_RATE),
    "labels": tf.io.VarLenFeature(tf.int64),
}


class BatchStream:
    """An endless iterator of NumPy batches: ``{'anchor': (B, crop), 'positive': (B, crop)}``
    float32 for pretraining, ``{'audio': (B, crop), 'labels': (B, classes)}`` for `labelled_dataset`.

    Attributes:
      dataset: the underlying `tf.data.Dataset` (its elements also hold ``skipped_records``).
      files: this process's shard files.
      records_per_epoch: valid records in those files; one epoch is this many pairs.
      skipped_records: corrupt records dropped so far, up to the last batch returned.
    """

    def __init__(self, dataset: tf.data.Dataset, files: list[str], records_per_epoch: int):
        self.dataset = dataset
        self.files = files
        self.records_per_epoch = records_per_epoch
        self.skipped_records = 0
        self._batches = dataset.as_numpy_iterator()

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = next(self._batches)
        skipped = int(batch.pop("skipped_records"))
        if skipped:
            self.skipped_records += skipped
            logger.warning("skipped %d corrupt record(s); %d so far", skipped, self.skipped_records)
        return batch


def pretraining_dataset(
    path_or_pattern: str | os.PathLike,
    *,
    per_process_batch: int,
    seed: int,
    crop_samples: int = CROP_SAMPLES,
    process_index: int | None = None,
    process_count: int | None = None,
    noise_std: float = 0.001,
    normalize: bool = True,
    shuffle_buffer: int = 4096,
    interleave_cycle: int = 8,
    start_batch: int = 0,
) -> BatchStream:
    """Builds this process's endless stream of (anchor, positive) crop batches.

    Args:
      path_or_pattern: a directory of ``*.tfrecord`` shards or a glob pattern.
      per_process_batch: pairs per batch on this process (global batch: this x process_count).
      seed: the run's seed; the same seed gives the same batches, run after run.
      crop_samples: samples per crop (0.96 s).
      process_index, process_count: this process's share of the shards; default to
        `jax.process_index()` and `jax.process_count()`.
      noise_std: standard deviation of the Gaussian noise added to the positives (0 disables).
      normalize: L2-normalise each crop; tests switch it off to see raw samples.
      shuffle_buffer: records in the shuffle buffer (serialized clips, so memory is about
        shuffle_buffer x clip bytes).
      interleave_cycle: shards read concurrently.
      start_batch: resume point: the stream yields exactly the batches a fresh run yields from
        batch ``start_batch`` on. Whole epochs are skipped by number; within an epoch the
        records are skipped before decoding.

    Raises:
      FileNotFoundError: no shards match `path_or_pattern`.
      ValueError: fewer shards than processes, no valid record in this process's shards, or a
        bad argument.
    """
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")
    return _batch_stream(
        path_or_pattern, per_process_batch=per_process_batch, seed=seed, process_index=process_index,
        process_count=process_count, shuffle_buffer=shuffle_buffer, interleave_cycle=interleave_cycle,
        start_batch=start_batch, crop_samples=crop_samples, num_classes=None,
        cut=lambda element, run_key: _cut_crop_pair(element, run_key, crop_samples),
        finish=lambda batch_number, batch, run_key: _finish_pairs(
            batch_number, batch, run_key, crop_samples, noise_std, normalize))


def labelled_dataset(
    path_or_pattern: str | os.PathLike,
    *,
    per_process_batch: int,
    seed: int,
    num_classes: int,
    crop_samples: int = CROP_SAMPLES,
    process_index: int | None = None,
    process_count: int | None = None,
    normalize: bool = True,
    shuffle_buffer: int = 4096,
    interleave_cycle: int = 8,
    start_batch: int = 0,
) -> BatchStream:
    """This process's endless stream of labelled crop batches for supervised training.

    Batches: ``audio`` (B, crop_samples) float32, one crop per clip at a uniform random start
    (L2-normalised unless `normalize` is False, zero-padded when the clip is shorter);
    ``labels`` (B, num_classes) float32, 1 for each of the clip's classes. A record with no
    label, or a label outside [0, num_classes), is dropped and counted like a corrupt one.
    Everything else (shards per process, epochs, seeding, resuming at `start_batch`) is as in
    `pretraining_dataset`.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return _batch_stream(
        path_or_pattern, per_process_batch=per_process_batch, seed=seed, process_index=process_index,
        process_count=process_count, shuffle_buffer=shuffle_buffer, interleave_cycle=interleave_cycle,
        start_batch=start_batch, crop_samples=crop_samples, num_classes=num_classes,
        cut=lambda element, run_key: _cut_labelled_crop(element, run_key, crop_samples),
        finish=lambda batch_number, batch, run_key: _finish_labelled(batch, crop_samples, normalize))


def _batch_stream(path_or_pattern, *, per_process_batch, seed, process_index, process_count, shuffle_buffer,
                  interleave_cycle, start_batch, crop_samples, num_classes, cut, finish) -> BatchStream:
    """The stages shared by both streams: shards, epochs, validation, resume skip, cut, batch, finish."""
    if per_process_batch < 1 or crop_samples < 1 or start_batch < 0:
        raise ValueError(
            f"need per_process_batch >= 1, crop_samples >= 1, start_batch >= 0; got "
            f"{per_process_batch}, {crop_samples}, {start_batch}"
        )
    process, process_count = resolve_process(process_index, process_count)
    files = local_shards(path_or_pattern, process, process_count)
    records_per_epoch = count_valid_records(files)
    if records_per_epoch == 0:
        raise ValueError(f"no valid records in the shards of process {process}: {files}")
    logger.info("process %d: %d shards, %d clips per epoch", process, len(files), records_per_epoch)

    records_to_skip = start_batch * per_process_batch
    run_key = tf.constant([seed, process], tf.int64)

    def epoch_records(epoch):
        return _epoch_records(files, run_key, epoch, shuffle_buffer, interleave_cycle, num_classes)

    clips = (
        tf.data.Dataset.counter(records_to_skip // records_per_epoch)
        .flat_map(epoch_records)
        .scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)), _count_gaps)
        .filter(lambda element: tf.logical_not(element["end_of_epoch"]))
        .skip(records_to_skip % records_per_epoch)
    )
    crops = clips.map(lambda element: cut(element, run_key), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
    batches = (
        crops.batch(per_process_batch, drop_remainder=True)
        .enumerate(start=start_batch)
        .map(lambda batch_number, batch: finish(batch_number, batch, run_key),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.deterministic = True
    return BatchStream(batches.with_options(options), files, records_per_epoch)


def _derive_seed(key: tf.Tensor, *data) -> tf.Tensor:
    """A new stateless-RNG key [2] from `key` and integers, independent for distinct data."""
    for value in data:
        key = tf.random.experimental.stateless_fold_in(key, tf.cast(value, tf.int64))
    return key


def _epoch_records(files, run_key, epoch, shuffle_buffer, interleave_cycle, num_classes) -> tf.data.Dataset:
    """One epoch's records in shuffled order, parsed, plus an end-of-epoch marker.

    Elements: dicts with epoch, position (of the serialized record in this epoch's order),
    audio (bytes), end_of_epoch, and labels (multi-hot) when `num_classes` is given. Corrupt
    records are already dropped: their positions are gaps.
    """
    epoch_key = _derive_seed(run_key, _ORDER, epoch)
    shuffled_files = tf.random.experimental.stateless_shuffle(tf.constant(files), _derive_seed(epoch_key, 0))
    shuffle_seed = tf.random.stateless_uniform([], _derive_seed(epoch_key, 1), minval=None, maxval=None, dtype=tf.int64)
    records = (
        tf.data.Dataset.from_tensor_slices(shuffled_files)
        .interleave(
            # A damaged file ends at the damage (TF logs it) instead of failing the run.
            lambda path: tf.data.TFRecordDataset(path).ignore_errors(log_warning=True),
            cycle_length=min(interleave_cycle, len(files)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
    )
    # The marker is enumerated after the last record, so its position is the epoch's record count.
    with_marker = records.map(lambda record: (record, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.constant(b""), True))
    )

    def end_marker_fields():
        fields = {"audio": tf.constant(b"")}
        if num_classes is not None:
            fields["labels"] = tf.zeros([num_classes], tf.float32)
        return fields, tf.constant(True)

    def parse(position, record_and_marker):
        record, end_of_epoch = record_and_marker
        fields, valid = tf.cond(end_of_epoch, end_marker_fields, lambda: _parse_record(record, num_classes))
        element = dict(fields, epoch=epoch, position=position, end_of_epoch=end_of_epoch)
        return element, valid

    return (
        with_marker.enumerate()
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()  # unparsable records: dropped here, counted by `_count_gaps`
        .filter(lambda element, valid: valid)
        .map(lambda element, valid: element)
    )


def _parse_record(record: tf.Tensor, num_classes: int | None) -> tuple[dict, tf.Tensor]:
    """({'audio': bytes[, 'labels': multi-hot]}, is valid); raises InvalidArgumentError for
    bytes that are not an Example. With `num_classes`, a record needs labels in range."""
    features = tf.io.parse_single_example(record, _PARSE_FEATURES)
    length = tf.strings.length(features["audio"])
    valid = (length > 0) & (length % 2 == 0) & (features["sample_rate"] == SAMPLE_RATE)
    fields = {"audio": features["audio"]}
    if num_classes is not None:
        labels = features["labels"].values
        in_range = (tf.size(labels) > 0) & tf.reduce_all((labels >= 0) & (labels < num_classes))
        valid &= in_range
        # Out-of-range labels would be silently dropped by one_hot; the record is invalid anyway.
        one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        fields["labels"] = tf.cast(tf.reduce_sum(one_hot, axis=0) > 0, tf.float32)
    return fields, valid


def _count_gaps(state, element):
    """Scan step: attaches to each record the number of records dropped since the previous one.

    State: (next expected position, drops not yet attached to a record). Drops at the end of
    an epoch show up as a gap before the epoch's end marker and move on to the next record.
    """
    expected_position, pending = state
    dropped = pending + element["position"] - expected_position
    if_end = (tf.constant(0, tf.int64), dropped)
    if_record = (element["position"] + 1, tf.constant(0, tf.int64))
    new_state = tf.cond(element["end_of_epoch"], lambda: if_end, lambda: if_record)
    output = dict(element, skipped_records=tf.where(element["end_of_epoch"], tf.constant(0, tf.int64), dropped))
    return new_state, output


def _random_crop(audio: tf.Tensor, key: tf.Tensor, crop_samples: int) -> tf.Tensor:
    """A crop of int16 PCM bytes at a uniform random start inside the clip (all of a shorter clip).

    Byte-level cut: only the crop is copied and decoded later, never the whole clip.
    """
    clip_samples = tf.cast(tf.strings.length(audio), tf.int64) // 2
    last_start = tf.maximum(clip_samples - crop_samples, 0)
    start = tf.random.stateless_uniform([], key, minval=0, maxval=last_start + 1, dtype=tf.int64)
    return tf.strings.substr(audio, 2 * start, 2 * crop_samples)


def _clip_key(element, run_key) -> tf.Tensor:
    return _derive_seed(run_key, _CROPS, element["epoch"], element["position"])


def _cut_crop_pair(element, run_key, crop_samples):
    """Two crops, as int16 byte strings, at independent uniform starts inside the clip."""
    clip_key = _clip_key(element, run_key)
    anchor, positive = (_random_crop(element["audio"], _derive_seed(clip_key, index), crop_samples)
                        for index in range(2))
    return {"anchor": anchor, "positive": positive, "skipped_records": element["skipped_records"]}


def _cut_labelled_crop(element, run_key, crop_samples):
    """One crop of the clip (drawn like a pair's anchor) and its labels."""
    crop = _random_crop(element["audio"], _derive_seed(_clip_key(element, run_key), 0), crop_samples)
    return {"audio": crop, "labels": element["labels"], "skipped_records": element["skipped_records"]}


def _decode_crops(crops: tf.Tensor, crop_samples: int, normalize: bool) -> tf.Tensor:
    """Int16 byte strings to float32 (batch, crop_samples), zero-padding short crops."""
    pcm = tf.io.decode_raw(crops, tf.int16, little_endian=True, fixed_length=2 * crop_samples)
    waveform = tf.cast(pcm, tf.float32) / INT16_SCALE
    return tf.math.l2_normalize(waveform, axis=-1) if normalize else waveform


def _finish_pairs(batch_number, batch, run_key, crop_samples, noise_std, normalize):
    """Decodes a batch of crop pairs, normalises, adds noise to the positives."""
    anchor = _decode_crops(batch["anchor"], crop_samples, normalize)
    positive = _decode_crops(batch["positive"], crop_samples, normalize)
    if noise_std > 0:
        noise_key = _derive_seed(run_key, _NOISE, batch_number)
        positive += noise_std * tf.random.stateless_normal(tf.shape(positive), noise_key)
    return {"anchor": anchor, "positive": positive, "skipped_records": tf.reduce_sum(batch["skipped_records"])}


def _finish_labelled(batch, crop_samples, normalize):
    return {"audio": _decode_crops(batch["audio"], crop_samples, normalize), "labels": batch["labels"],
            "skipped_records": tf.reduce_sum(batch["skipped_records"])}


def crops_per_second(batches: Iterator[dict[str, np.ndarray]], num_batches: int = 50) -> float:
    """Measures a pipeline's throughput in crops (2 per pair) per second, after one warm-up batch."""
    first = next(batches)
    start = time.perf_counter()
    for _ in range(num_batches):
        next(batches)
    return 2 * num_batches * len(first["anchor"]) / (time.perf_counter() - start)
