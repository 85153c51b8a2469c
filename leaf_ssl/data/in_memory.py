"""The training streams without TensorFlow: this process's shards decoded once into host memory.

The same streams as `pipeline` (pairs of crops for pretraining, one labelled crop for supervised
training), for machines where TensorFlow is not installed, and for shards whose audio is compressed
(FLAC, Opus: decoded here, once, at start). Memory: every clip of this process's shards as int16
(115 MB per hour of audio), so this reader is for corpora that fit a host's memory; AudioSet at pod
scale streams through tf.data.

Stages, per process (its shards are ``files[process_index::process_count]``, as in `pipeline`):

1. at start, every record is read (`tfrecord_io`), parsed (`example_proto`) and decoded; corrupt
   records are dropped, counted and reported (`skipped_records` holds the count from the start);
2. the stream is the concatenation of epochs; epoch ``e`` is a permutation of all clips (a global
   shuffle, where tf.data shuffles in a buffer), drawn from NumPy's Philox keyed by (seed, process, e);
3. batch ``b`` holds stream positions ``[b * B, (b + 1) * B)``; its crop starts (uniform in each
   clip, a short clip zero-padded at its end) and its noise are drawn from generators keyed by
   (seed, process, b). So a run resumed at batch ``b`` reads exactly what the first run read from there;
4. crops are L2-normalised (silence stays zero) and the positives get Gaussian noise of
   ``noise_std``, as in `pipeline`.

Threads prepare the next batches while the accelerator runs the current step.
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import threading
import time
from collections import Counter
from typing import Callable

import numpy as np

from leaf_ssl.data import records, shards
from leaf_ssl.data.records import CROP_SAMPLES

logger = logging.getLogger(__name__)

# Domains of the random keys, so that no two uses of randomness share a key.
_ORDER, _CROPS, _NOISE = 0, 1, 2
_PREFETCH_BATCHES = 4
# Threads making batches by default: NumPy's copies and arithmetic release the GIL.
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)


class ClipStore:
    """Every valid clip of some shards, as int16 samples in one array.

    Attributes:
      samples: all clips' int16 samples, end to end.
      lengths: each clip's sample count (`offsets`: where each starts in `samples`).
      labels: each clip's int64 class indices.
      skipped: corrupt records dropped while loading, by reason.
      seconds: time the load took.
    """

    def __init__(self, files: list[str], threads: int | None = None):
        started = time.perf_counter()
        self.skipped: Counter[str] = Counter()
        threads = threads or min(len(files), os.cpu_count() or 1)
        # soundfile's decoder releases the GIL, so threads decode compressed shards in parallel.
        with concurrent.futures.ThreadPoolExecutor(max(threads, 1)) as pool:
            loaded = list(pool.map(_load_shard, files))
        clips = [clip for shard_clips, _ in loaded for clip in shard_clips]
        for _, shard_skips in loaded:
            self.skipped.update(shard_skips)
        self.lengths = np.array([len(samples) for samples, _ in clips], np.int64)
        self.samples = np.concatenate([samples for samples, _ in clips]) if clips else np.zeros(0, np.int16)
        self.labels = [labels for _, labels in clips]
        self.seconds = time.perf_counter() - started

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def offsets(self) -> np.ndarray:
        """Where each clip starts in `samples`."""
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def keep(self, wanted: Callable[[np.ndarray], bool], reason: str) -> None:
        """Drops the clips whose labels are not `wanted`, counting them as skipped for `reason`."""
        kept = [index for index, labels in enumerate(self.labels) if wanted(labels)]
        if len(kept) == len(self):
            return
        self.skipped[reason] += len(self) - len(kept)
        offsets = self.offsets
        self.samples = np.concatenate([self.samples[offsets[i]:offsets[i] + self.lengths[i]] for i in kept]
                                      ) if kept else np.zeros(0, np.int16)
        self.lengths = self.lengths[kept]
        self.labels = [self.labels[i] for i in kept]


def _load_shard(path: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], Counter[str]]:
    skipped: Counter[str] = Counter()
    clips = []
    for index, serialized in records.shard_records(path, skipped):
        try:
            samples, _, labels = records.parse_record(serialized)
        except records.CorruptRecordError as error:
            records.count_skip(skipped, str(error), path, index)
            continue
        clips.append((samples, labels))  # a view of the record's bytes, until ClipStore concatenates them
    return clips, skipped


class InMemoryStream:
    """An endless iterator of NumPy batches, as `pipeline.BatchStream` yields them.

    Attributes:
      files: this process's shard files.
      records_per_epoch: valid clips in those files; one epoch is this many pairs (or crops).
      skipped_records: corrupt records dropped when the shards were loaded.
      store: the decoded clips.
    """

    def __init__(self, store: ClipStore, files: list[str], *, per_process_batch: int, seed: int, process: int,
                 start_batch: int, make_batch: Callable[["InMemoryStream", int, np.ndarray], dict],
                 workers: int = DEFAULT_WORKERS):
        self.store, self.files = store, files
        self._offsets = store.offsets  # the store is not changed once the stream reads it
        self.records_per_epoch = len(store)
        self.skipped_records = sum(store.skipped.values())
        self.per_process_batch, self.seed, self.process = per_process_batch, seed, process
        self._make_batch = make_batch
        self._permutations: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # the permutation cache is shared by the workers
        # Batches are independent given their number, so workers make them in any order and the stream
        # hands them out in order: as many batches in flight as workers, plus some ahead.
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="in-memory-batches")
        self._next_batch = start_batch
        self._pending: collections.deque = collections.deque()
        for _ in range(workers + _PREFETCH_BATCHES):
            self._submit()

    def _submit(self) -> None:
        number = self._next_batch
        self._pending.append(self._pool.submit(lambda: self._make_batch(self, number, self.batch_clips(number))))
        self._next_batch += 1

    def __iter__(self) -> "InMemoryStream":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self._pending.popleft().result()
        self._submit()
        return batch

    def close(self) -> None:
        for pending in self._pending:
            pending.cancel()
        self._pool.shutdown(wait=False)

    def generator(self, domain: int, number: int) -> np.random.Generator:
        return np.random.Generator(np.random.Philox(key=np.random.SeedSequence(
            [self.seed, self.process, domain, number]).generate_state(2, np.uint64)))

    def batch_clips(self, batch_number: int) -> np.ndarray:
        """Indices into the store of batch `batch_number`'s clips."""
        positions = batch_number * self.per_process_batch + np.arange(self.per_process_batch, dtype=np.int64)
        epochs, within = np.divmod(positions, self.records_per_epoch)
        clips = np.empty_like(positions)
        for epoch in np.unique(epochs):
            chosen = epochs == epoch
            clips[chosen] = self._permutation(int(epoch))[within[chosen]]
        return clips

    def _permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch not in self._permutations:
                if len(self._permutations) > 4:  # batches in flight span a few epochs; keep the recent ones
                    self._permutations.pop(min(self._permutations))
                self._permutations[epoch] = self.generator(_ORDER, epoch).permutation(self.records_per_epoch)
            return self._permutations[epoch]

    def crops(self, clips: np.ndarray, unit: np.ndarray, crop_samples: int, normalize: bool) -> np.ndarray:
        """(len(clips), crop_samples) float32 crops at uniform starts (`unit` in [0, 1) picks each one)."""
        lengths = self.store.lengths[clips]
        starts = np.floor(unit * (np.maximum(lengths - crop_samples, 0) + 1)).astype(np.int64)
        out = np.zeros((len(clips), crop_samples), np.float32)
        for row, (clip, start, length) in enumerate(zip(clips, starts, lengths)):
            begin = self._offsets[clip] + start
            take = min(crop_samples, length - start)
            out[row, :take] = self.store.samples[begin:begin + take]
        out /= np.float32(records.INT16_SCALE)
        if normalize:  # as tf.math.l2_normalize: x / sqrt(max(sum x^2, 1e-12))
            out /= np.sqrt(np.maximum(np.sum(out * out, axis=1, keepdims=True), np.float32(1e-12)))
        return out


def pretraining_stream(path_or_pattern: str | os.PathLike, *, per_process_batch: int, seed: int,
                       crop_samples: int = CROP_SAMPLES, process_index: int | None = None, process_count: int | None = None,
                       noise_std: float = 0.001, normalize: bool = True, start_batch: int = 0,
                       workers: int = DEFAULT_WORKERS) -> InMemoryStream:
    """This process's endless stream of ``{'anchor', 'positive'}`` (B, crop_samples) float32 batches:
    two crops of each clip at independent starts, noise on the positive (arguments as in
    `pipeline.pretraining_dataset`; `workers`: threads making batches)."""
    if noise_std < 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}")

    def pairs(stream: InMemoryStream, batch_number: int, clips: np.ndarray) -> dict[str, np.ndarray]:
        starts = stream.generator(_CROPS, batch_number).random((2, len(clips)))
        anchor = stream.crops(clips, starts[0], crop_samples, normalize)
        positive = stream.crops(clips, starts[1], crop_samples, normalize)
        if noise_std > 0:
            positive += np.float32(noise_std) * stream.generator(_NOISE, batch_number).standard_normal(
                positive.shape, np.float32)
        return {"anchor": anchor, "positive": positive}

    return _stream(path_or_pattern, per_process_batch, seed, crop_samples, process_index, process_count,
                   start_batch, pairs, num_classes=None, workers=workers)


def labelled_stream(path_or_pattern: str | os.PathLike, *, per_process_batch: int, seed: int, num_classes: int,
                    crop_samples: int = CROP_SAMPLES, process_index: int | None = None, process_count: int | None = None,
                    normalize: bool = True, start_batch: int = 0, workers: int = DEFAULT_WORKERS) -> InMemoryStream:
    """This process's endless stream of ``{'audio': (B, crop_samples), 'labels': (B, num_classes)}``
    batches (arguments as in `pipeline.labelled_dataset`); a clip without a label in range is dropped
    at load and counted as corrupt."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")

    def labelled(stream: InMemoryStream, batch_number: int, clips: np.ndarray) -> dict[str, np.ndarray]:
        starts = stream.generator(_CROPS, batch_number).random(len(clips))
        multi_hot = np.zeros((len(clips), num_classes), np.float32)
        for row, clip in enumerate(clips):
            multi_hot[row, stream.store.labels[clip]] = 1.0
        return {"audio": stream.crops(clips, starts, crop_samples, normalize), "labels": multi_hot}

    return _stream(path_or_pattern, per_process_batch, seed, crop_samples, process_index, process_count,
                   start_batch, labelled, num_classes=num_classes, workers=workers)


def _stream(path_or_pattern, per_process_batch, seed, crop_samples, process_index, process_count, start_batch,
            make_batch, num_classes, workers) -> InMemoryStream:
    if per_process_batch < 1 or crop_samples < 1 or start_batch < 0:
        raise ValueError(f"need per_process_batch >= 1, crop_samples >= 1, start_batch >= 0; got "
                         f"{per_process_batch}, {crop_samples}, {start_batch}")
    process, count = shards.resolve_process(process_index, process_count)
    files = shards.local_shards(path_or_pattern, process, count)
    store = ClipStore(files)
    if num_classes is not None:
        store.keep(lambda labels: len(labels) > 0 and bool(np.all((labels >= 0) & (labels < num_classes))),
                   f"no label in [0, {num_classes})")
    hours = len(store.samples) / records.SAMPLE_RATE / 3600
    logger.info("process %d: %d clips (%.2f h) from %d shards decoded into memory in %.1f s", process, len(store),
                hours, len(files), store.seconds)
    if store.skipped:
        logger.warning("skipped %d corrupt record(s): %s", sum(store.skipped.values()), dict(store.skipped))
    if not len(store):
        raise ValueError(f"no valid records in the shards of process {process}: {files}")
    return InMemoryStream(store, files, per_process_batch=per_process_batch, seed=seed, process=process,
                          start_batch=start_batch, make_batch=make_batch, workers=workers)
