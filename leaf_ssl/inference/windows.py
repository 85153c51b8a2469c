"""Cutting 16 kHz waveforms into the fixed-length windows a frozen model embeds, and embedding
windows in fixed-size batches: the one segmenter and the one batcher of every tool (the probe,
`leaf_ssl.load`, `python -m leaf_ssl.embed`, the HEAR API).

Clip segments, for a clip of `n` samples and segments of `length` samples (the model's training
crop length):

* n <= length: one segment, the clip zero-padded at the end;
* otherwise: segments start at 0, length, 2*length, ... while they fit, and a trailing remainder
  gets one more segment aligned to the END of the clip (so it overlaps the previous one). Every
  sample is covered, no segment but a short clip's is padded, and the padding never dilutes a
  long clip's last segment with silence.

E.g. 2.5 s -> [0, 1), [1, 2), [1.5, 2.5); 2 s -> [0, 1), [1, 2); 0.4 s -> [0, 0.4) + 0.6 s zeros.

Frames: one window centred on each timestamp 0, hop, 2 hop, ... up to the clip's duration, the
audio zero-padded by half a window at both ends; n = samples // hop + 1.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Hashable, Iterable, Iterator

import numpy as np

from leaf_ssl.data.audio import SAMPLE_RATE


class NonFiniteFeatures(ValueError):
    """A model gave NaN or Inf for finite audio: its variables are damaged, and nothing is written."""


def checked_finite(values: np.ndarray, what: str) -> np.ndarray:
    """`values`, or NonFiniteFeatures naming `what` when any is NaN or Inf. The audio every reader
    feeds is finite (decoding refuses the rest), so the model is what went wrong."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise NonFiniteFeatures(f"the model gave {bad} non-finite values for {what}: its parameters or BatchNorm "
                                "statistics are damaged, so nothing is written (a checkpoint without recorded "
                                "digests cannot be verified: its reader warns so)")
    return values


def segment_starts(num_samples: int, length: int) -> list[int]:
    """Start sample of each segment of a clip of `num_samples` (see the module docstring)."""
    if num_samples <= length:
        return [0]
    starts = list(range(0, num_samples - length + 1, length))
    if starts[-1] + length < num_samples:
        starts.append(num_samples - length)
    return starts


FRAME_HOP_SECONDS = 0.05
"""Default hop between frame embeddings (HEAR 2021 asks for 50 ms or less)."""
DEFAULT_BATCH_SIZE = 64
"""Windows per embedding call."""
MAX_BATCHES_IN_FLIGHT = 2
"""Batches queued on the device while the next audio is read: decoding overlaps compute."""


@dataclasses.dataclass(frozen=True)
class Windows:
    """Fixed-length windows of one waveform: window i is `padded[starts[i]:starts[i] + length]`."""
    padded: np.ndarray
    starts: np.ndarray
    length: int

    def __len__(self) -> int:
        return len(self.starts)

    def rows(self, begin: int, end: int) -> np.ndarray:
        """Windows begin..end-1 as a (end - begin, length) float32 array (only those are copied)."""
        all_windows = np.lib.stride_tricks.sliding_window_view(self.padded, self.length)
        return all_windows[self.starts[begin:end]]


def segment_windows(waveform: np.ndarray, length: int) -> Windows:
    """The segments of `length` samples of a 16 kHz mono waveform (`segment_starts`)."""
    waveform = np.asarray(waveform, np.float32)
    padded = np.pad(waveform, (0, max(0, length - waveform.size)))
    return Windows(padded, np.asarray(segment_starts(waveform.size, length)), length)


def frame_windows(waveform: np.ndarray, length: int,
                  hop_seconds: float = FRAME_HOP_SECONDS) -> tuple[Windows, np.ndarray]:
    """Windows of `length` samples centred on 0, hop, 2 hop, ... <= duration, and those timestamps in seconds.

    Window k covers samples [k*hop - length/2, k*hop + length/2) of the waveform, zeros outside it.
    """
    hop = hop_samples(hop_seconds)
    waveform = np.asarray(waveform, np.float32)
    starts = np.arange(waveform.size // hop + 1) * hop
    before = length // 2
    after = max(0, starts[-1] + length - before - waveform.size)
    return Windows(np.pad(waveform, (before, after)), starts, length), starts / SAMPLE_RATE


def hop_samples(hop_seconds: float) -> int:
    """A frame hop in 16 kHz samples; refuses hops under one sample."""
    hop = int(round(hop_seconds * SAMPLE_RATE))
    if hop < 1:
        raise ValueError(f"frame hop of {hop_seconds * 1000:g} ms is under one sample at {SAMPLE_RATE} Hz")
    return hop


def embed_windows(embed_batch, jobs: Iterable[tuple[Hashable, Windows]], batch_size: int,
                  max_in_flight: int = MAX_BATCHES_IN_FLIGHT) -> Iterator[tuple[Hashable, np.ndarray]]:
    """Embeds the windows of successive jobs; yields (key, (len(windows), dim) float32) per job, in order.

    Rows of consecutive jobs share batches of exactly `batch_size` windows (many short clips fill one
    batch); the last batch is zero-padded and its padding dropped. A job is yielded as soon as all its
    rows are back, and `jobs` is read lazily, so decoding the next files overlaps the device's work.

    Args:
      embed_batch: (batch_size, length) float32 -> (batch_size, dim) array (asynchronous, e.g. jitted).
      jobs: (key, Windows) pairs; every Windows has at least one window.
      batch_size: windows per call.
      max_in_flight: dispatched batches not yet read back before a result is waited for.
    """
    batcher = _WindowBatcher(embed_batch, batch_size, max_in_flight)
    for key, windows in jobs:
        batcher.add(key, windows)
        yield from batcher.collect(final=False)
    yield from batcher.collect(final=True)


class _WindowBatcher:
    """The bookkeeping of `embed_windows`: staged rows, batches on the device, results owed to jobs."""

    def __init__(self, embed_batch, batch_size: int, max_in_flight: int):
        if batch_size < 1:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        self.embed_batch, self.batch_size, self.max_in_flight = embed_batch, batch_size, max_in_flight
        self.batch: np.ndarray | None = None  # a fresh array per batch: the device may still read the last
        self.filled = 0
        self.in_flight: collections.deque = collections.deque()  # (device result, real rows)
        self.computed: list[np.ndarray] = []  # host rows not yet handed back, in job order
        self.computed_rows = 0
        self.owed: collections.deque = collections.deque()  # (key, rows) of jobs not yet handed back

    def add(self, key: Hashable, windows: Windows) -> None:
        if len(windows) == 0:
            raise ValueError(f"job {key!r} has no windows")
        self.owed.append((key, len(windows)))
        begin = 0
        while begin < len(windows):
            if self.batch is None:
                self.batch, self.filled = np.zeros((self.batch_size, windows.length), np.float32), 0
            take = min(self.batch_size - self.filled, len(windows) - begin)
            self.batch[self.filled:self.filled + take] = windows.rows(begin, begin + take)
            self.filled += take
            begin += take
            if self.filled == self.batch_size:
                self._launch()

    def collect(self, final: bool) -> list[tuple[Hashable, np.ndarray]]:
        """Reads back batches beyond the in-flight allowance (all when final); returns completed jobs."""
        if final and self.batch is not None:
            self._launch()
        while len(self.in_flight) > (0 if final else self.max_in_flight):
            result, rows = self.in_flight.popleft()
            key = self.owed[0][0] if self.owed else "the last batch"
            rows_back = np.asarray(result, np.float32)[:rows]
            self.computed.append(checked_finite(rows_back, f"the batch that starts with job {key!r}"))
            self.computed_rows += rows
        completed = []
        while self.owed and self.owed[0][1] <= self.computed_rows:
            key, rows = self.owed.popleft()
            stacked = np.concatenate(self.computed) if len(self.computed) > 1 else self.computed[0]
            completed.append((key, stacked[:rows]))
            self.computed, self.computed_rows = [stacked[rows:]], self.computed_rows - rows
        return completed

    def _launch(self) -> None:
        self.in_flight.append((self.embed_batch(self.batch), self.filled))
        self.batch = None
