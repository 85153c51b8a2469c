"""A pretrained frontend + encoder as a Python object, and the embedding core all tools share.

    import leaf_ssl
    model = leaf_ssl.load("runs/demo_leaf")              # a run, its checkpoints/ or a step; or random:<config>
    clip = model.embed(waveform, sample_rate)            # (dim,) float32
    frames, seconds = model.frames(waveform, sample_rate)  # (n, dim) float32, (n,) window centres in s
    model.filters()                                      # centre frequencies, bandwidths, ... (leaf_ssl.analyze)

What an embedding is, the same in this object, `python -m leaf_ssl.embed` and `leaf_ssl.hear`:

* Audio of any sample rate and channel count is downmixed and resampled to 16 kHz mono
  (`data.audio.prepare_waveform`: channels averaged, exact-ratio polyphase resampling, clipped to [-1, 1]).
* The model is frozen and in inference mode. A window is scaled to unit L2 norm (as every training
  crop is) and its embedding is the pooled encoder output (`encode`; 1280-d for EfficientNet-B0),
  the representation linear probes read, not the COLA projection head.
* Every window is as long as the model's training crops (`FrozenModel.window_samples`, 0.96 s by
  default): the encoder's padded convolutions and global pooling were trained at that length only.
* Clip embedding: the mean of the embeddings of the clip's segments, cut exactly as the probe cuts
  them (`probing.segments`: consecutive windows; a leftover tail gets one more segment aligned to
  the clip's end; a clip shorter than a window is one zero-padded segment).
* Frame embeddings: one window centred on each timestamp 0, hop, 2 hop, ... up to the clip's
  duration (default hop 50 ms), the audio zero-padded by half a window at both ends;
  n = samples // hop + 1.

Windows from any number of clips are embedded together in fixed-size batches by one jitted function
on the default JAX device (`probing.embedding.make_embed_fn`): BatchNorm reads its running statistics,
so a window's embedding does not depend on what shares its batch, and each batch shape compiles once.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Hashable, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leaf_ssl import analyze
from leaf_ssl.data.audio import SAMPLE_RATE, prepare_waveform
from leaf_ssl.probing.checkpoint import FrozenModel, load_frozen_model
from leaf_ssl.probing.embedding import make_embed_fn
from leaf_ssl.probing.segments import segment_starts

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
    """The probe's segments of `length` samples of a 16 kHz mono waveform (`probing.segments.segment_starts`)."""
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
            self.computed.append(np.asarray(result, np.float32)[:rows])
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


class Embedder:
    """A frozen, pretrained (or untrained `random:`) frontend + encoder: `leaf_ssl.load(ckpt)`.

    Attributes:
      frozen: the restored model and variables (`probing.checkpoint.FrozenModel`).
      batch_size: windows per embedding call (the most; fewer windows get a smaller power-of-two batch).
      sample_rate: 16000, the rate everything is resampled to.
    """
    sample_rate = SAMPLE_RATE

    def __init__(self, frozen: FrozenModel, batch_size: int = DEFAULT_BATCH_SIZE):
        self.frozen = frozen
        self.batch_size = batch_size
        self._embed_batch = make_embed_fn(frozen)

    @property
    def config(self) -> ml_collections.ConfigDict:
        """The training config the model was rebuilt from."""
        return self.frozen.config

    @property
    def step(self) -> int:
        """The checkpoint's training step (0 for `random:`)."""
        return self.frozen.step

    @property
    def source(self) -> str:
        """The resolved checkpoint step folder, or the `random:` spec."""
        return self.frozen.source

    @property
    def window_samples(self) -> int:
        """Samples per embedded window: the model's training crop length."""
        return self.frozen.window_samples

    @functools.cached_property
    def embedding_dim(self) -> int:
        """Width of every embedding (the encoder's pooled output), found by shape inference only."""
        def encode(waveforms):
            return self.frozen.model.apply(self.frozen.variables, waveforms, train=False,
                                           method="encode")
        return int(jax.eval_shape(encode, jax.ShapeDtypeStruct((1, self.window_samples), jnp.float32)).shape[-1])

    def embed(self, waveform, sample_rate: int) -> np.ndarray:
        """Clip embedding (dim,) float32 of a waveform (samples,) or (samples, channels) at `sample_rate`."""
        return self.clip_embeddings([_mono_16k(waveform, sample_rate)])[0]

    def frames(self, waveform, sample_rate: int,
               hop_seconds: float = FRAME_HOP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
        """Frame embeddings (n, dim) float32 and their timestamps (n,) in seconds (window centres)."""
        return self.frame_embeddings([_mono_16k(waveform, sample_rate)], hop_seconds)[0]

    def filters(self) -> analyze.FrontendFilters:
        """The frontend's filters: centre frequencies and bandwidths in Hz, their mel reference, frequency
        responses, lowpass widths and PCEN parameters where the frontend has them (`leaf_ssl.analyze`)."""
        return analyze.model_filters(self.frozen)

    def clip_embeddings(self, waveforms: list[np.ndarray]) -> np.ndarray:
        """(len(waveforms), dim) clip embeddings of 16 kHz mono float32 waveforms, batched together."""
        jobs = [(index, segment_windows(waveform, self.window_samples)) for index, waveform in enumerate(waveforms)]
        embeddings = np.zeros((len(waveforms), self.embedding_dim), np.float32)
        for index, segments in self.stream(jobs, self._batch_size_for(jobs)):
            embeddings[index] = segments.mean(axis=0)
        return embeddings

    def frame_embeddings(self, waveforms: list[np.ndarray],
                         hop_seconds: float = FRAME_HOP_SECONDS) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per 16 kHz mono waveform: frame embeddings (n, dim) and timestamps (n,) in seconds."""
        framed = [frame_windows(waveform, self.window_samples, hop_seconds) for waveform in waveforms]
        jobs = [(index, windows) for index, (windows, _) in enumerate(framed)]
        return [(frames, framed[index][1]) for index, frames in self.stream(jobs, self._batch_size_for(jobs))]

    def stream(self, jobs: Iterable[tuple[Hashable, Windows]],
               batch_size: int | None = None) -> Iterator[tuple[Hashable, np.ndarray]]:
        """`embed_windows` with this model: (key, Windows) jobs in, (key, (n, dim) embeddings) out."""
        return embed_windows(self._embed_batch, jobs, batch_size or self.batch_size)

    def _batch_size_for(self, jobs: list[tuple[Hashable, Windows]]) -> int:
        """The smallest power of two holding every window, capped at `batch_size`: embedding one short
        clip does not pay for a full batch, and at most log2(batch_size) + 1 shapes ever compile."""
        total = sum(len(windows) for _, windows in jobs)
        return min(self.batch_size, 1 << max(total - 1, 0).bit_length())


def load(ckpt: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Embedder:
    """The model of a run's workdir, its `checkpoints/` folder, one step folder, or `random:<config>`.

    Raises:
      leaf_ssl.checkpointing.CheckpointError: nothing usable there; the message says why.
    """
    return Embedder(load_frozen_model(ckpt), batch_size)


def _mono_16k(waveform, sample_rate: int) -> np.ndarray:
    """A (samples,) or (samples, channels) waveform of any rate as 16 kHz mono float32."""
    samples = np.asarray(waveform)
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:
        raise ValueError(f"waveform of shape {samples.shape} has more channels than samples: pass "
                         f"(samples, channels), e.g. waveform.T for a (channels, samples) array")
    return prepare_waveform(samples, sample_rate, source="waveform")
