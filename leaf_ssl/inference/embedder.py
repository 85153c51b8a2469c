"""A pretrained frontend + encoder as a Python object: what `leaf_ssl.load` returns.

    import leaf_ssl
    model = leaf_ssl.load("runs/demo_leaf")              # a run, its checkpoints/ or a step; or random:<config>
    clip = model.embed(waveform, sample_rate)            # (dim,) float32
    frames, seconds = model.frames(waveform, sample_rate)  # (n, dim) float32, (n,) window centres in s
    features, seconds = model.features(waveform, sample_rate)  # the frontend's (n, channels) output
    model.filters()                                      # centre frequencies, bandwidths, ... (frontends.inspect)

What an embedding is, the same in this object, `python -m leaf_ssl.embed` and `leaf_ssl.hear`:

* Audio of any sample rate and channel count is downmixed and resampled to 16 kHz mono
  (`data.audio.prepare_waveform`: channels averaged, exact-ratio polyphase resampling, clipped to [-1, 1]).
* The model is frozen and in inference mode (`inference.features`). A window is scaled to unit L2
  norm (as every training crop is) and its embedding is the pooled encoder output (`encode`;
  1280-d for EfficientNet-B0), the representation linear probes read, not the COLA projection head.
* Every window is as long as the model's training crops (`FrozenModel.window_samples`, 0.96 s by
  default): the encoder's padded convolutions and global pooling were trained at that length only.
* Clip embedding: the mean of the embeddings of the clip's segments, cut exactly as the probe cuts
  them (`inference.windows`: consecutive windows; a leftover tail gets one more segment aligned to
  the clip's end; a clip shorter than a window is one zero-padded segment).
* Frame embeddings: one window centred on each timestamp 0, hop, 2 hop, ... up to the clip's
  duration (default hop 50 ms), the audio zero-padded by half a window at both ends;
  n = samples // hop + 1.

Windows from any number of clips are embedded together in fixed-size batches by one jitted function
on the default JAX device (`inference.windows.embed_windows`): BatchNorm reads its running statistics,
so a window's embedding does not depend on what shares its batch, and each batch shape compiles once.
"""
from __future__ import annotations

import functools
from typing import Hashable, Iterable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leaf_ssl.data.audio import SAMPLE_RATE, prepare_waveform
from leaf_ssl.frontends import inspect
from leaf_ssl.inference.features import make_embed_fn
from leaf_ssl.inference.frozen_model import FrozenModel, load_frozen_model
from leaf_ssl.inference.windows import (DEFAULT_BATCH_SIZE, FRAME_HOP_SECONDS, Windows, checked_finite,
                                        embed_windows, frame_windows, segment_windows)


class Embedder:
    """A frozen, pretrained (or untrained `random:`) frontend + encoder: `leaf_ssl.load(ckpt)`.

    Attributes:
      frozen: the restored model and variables (`inference.frozen_model.FrozenModel`).
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

    def features(self, waveform, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """The frontend's output over the whole clip, (n_frames, channels) float32, and each frame's
        centre (n_frames,) in seconds: the learnt time-frequency representation the encoder reads.

        The clip is scaled to the loudness of a training crop (every crop has unit L2 norm, so its
        RMS is 1/sqrt(window_samples)), which PCEN's and the log's outputs depend on. Each clip
        length compiles once.
        """
        clip = self._mono_16k_at_training_loudness(waveform, sample_rate)
        frames = checked_finite(np.asarray(self._frontend(jnp.asarray(clip)[None])[0], np.float32), "a clip's frames")
        return frames, inspect.frame_centre_seconds(self.frozen.model.frontend, clip.size, SAMPLE_RATE)

    def _mono_16k_at_training_loudness(self, waveform, sample_rate: int) -> np.ndarray:
        clip = _mono_16k(waveform, sample_rate).astype(np.float64)
        norm = np.linalg.norm(clip)
        scale = np.sqrt(clip.size / self.window_samples) / norm if norm > 0 else 0.0
        return (clip * scale).astype(np.float32)

    @functools.cached_property
    def _frontend(self):
        apply = jax.jit(lambda variables, waveforms: self.frozen.model.apply(
            variables, waveforms, method=lambda module, batch: module.frontend(batch)))
        return lambda waveforms: apply(self.frozen.variables, waveforms)

    def filters(self) -> inspect.FrontendFilters:
        """The frontend's filters: centre frequencies and bandwidths in Hz, their mel reference, frequency
        responses, lowpass widths and PCEN parameters where the frontend has them (`frontends.inspect`)."""
        return inspect.frontend_filters(self.frozen.config.frontend, self.frozen.variables["params"].get("frontend", {}))

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
      leaf_ssl.training.checkpointing.CheckpointError: nothing usable there; the message says why.
    """
    return Embedder(load_frozen_model(ckpt), batch_size)


def _mono_16k(waveform, sample_rate: int) -> np.ndarray:
    """A (samples,) or (samples, channels) waveform of any rate as 16 kHz mono float32."""
    samples = np.asarray(waveform)
    if samples.ndim == 2 and samples.shape[1] > samples.shape[0]:
        raise ValueError(f"waveform of shape {samples.shape} has more channels than samples: pass "
                         f"(samples, channels), e.g. waveform.T for a (channels, samples) array")
    return prepare_waveform(samples, sample_rate, source="waveform")
