"""Fixed log-mel filterbanks: the baseline frontends of LEAF (40 bins) and COLA (64 bins).

Reproduces the reference LEAF's `MelFilterbanks`, i.e. TensorFlow's `tf.signal.stft(pad_end=True)` followed
by `tf.signal.linear_to_mel_weight_matrix` and log(x + 1e-5).
"""

from __future__ import annotations

from types import MappingProxyType

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from leaf_ssl.frontends import filters
from leaf_ssl.frontends.framing import (as_waveform_batch, blocks_per_window, num_frames,
                                        split_into_blocks, window_and_stride_samples)

# Named configurations: LEAF's baseline, and COLA's (64 bins, 1024-point FFT).
MEL_PRESETS = MappingProxyType({
    "leaf": MappingProxyType({"n_filters": 40, "n_fft": 512}),
    "cola": MappingProxyType({"n_filters": 64, "n_fft": 1024}),
})


def stft_frames(waveform: jnp.ndarray, window: int, stride: int) -> jnp.ndarray:
    """(batch, samples) -> (batch, ceil(samples / stride), window) frames, as `tf.signal.frame(pad_end=True)`.

    Frame i holds samples [i*stride, i*stride + window), zeros past the end. Built from shifted views of
    stride-long blocks (no gather).
    """
    samples = waveform.shape[1]
    frames = num_frames(samples, stride)
    n_window_blocks = blocks_per_window(window, stride)
    padded = jnp.pad(waveform, ((0, 0), (0, (frames - 1 + n_window_blocks) * stride - samples)))
    blocks = split_into_blocks(padded, stride)
    spans = jnp.concatenate([blocks[:, j:j + frames] for j in range(n_window_blocks)], axis=2)
    return spans[:, :, :window]


class MelFilterbank(nn.Module):
    """Log-mel filterbank: waveform (batch, samples) -> (batch, ceil(samples / stride), n_filters).

    With K = int(sample_rate * window_len_ms // 1000 + 1) (401 at 16 kHz / 25 ms) and
    stride = int(sample_rate * window_stride_ms // 1000) (160):

      X[i, k] = sum_{n<K} x[i*stride + n] w[n] exp(-2 pi i k n / n_fft),  k = 0..n_fft/2   (zeros past the end)
      w[n]    = 0.5 - 0.5 cos(2 pi n / (K - 1))   for odd K (TF's "periodic" Hann; K for even K)
      out[i, j] = log(sum_k |X[i, k]|^2 W[k, j] + log_offset)

    W is `filters.mel_weight_matrix` (TF's triangles, HTK mel, min_freq..max_freq, zero DC weight).
    Frames START at sample i*stride (TF `pad_end` convention, not the centred 'SAME' frames of LEAF),
    and there are as many as LEAF's for the same input. No parameters; float32 throughout.

    Presets (`MEL_PRESETS`, `MelFilterbank.from_preset`, or `preset=` in `make_frontend`):
      'leaf': 40 bins, 512-point FFT (the defaults);  'cola': 64 bins, 1024-point FFT.

    Attributes:
      n_filters: number of mel bins.
      sample_rate: of the input, in Hz.
      n_fft: FFT length (frames are zero-padded to it, or cut if longer).
      window_len_ms, window_stride_ms: analysis window and hop in ms.
      min_freq, max_freq: frequency range of the mel filters in Hz.
      log_offset: added before the logarithm.
    """
    n_filters: int = 40
    sample_rate: int = 16000
    n_fft: int = 512
    window_len_ms: float = 25.0
    window_stride_ms: float = 10.0
    min_freq: float = 60.0
    max_freq: float = 7800.0
    log_offset: float = 1e-5

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> "MelFilterbank":
        """A MelFilterbank configured as the named preset ('leaf' or 'cola'), with optional overrides."""
        if preset not in MEL_PRESETS:
            raise ValueError(f"unknown mel preset {preset!r}; valid: {', '.join(MEL_PRESETS)}")
        return cls(**{**MEL_PRESETS[preset], **overrides})

    def window_and_stride(self) -> tuple[int, int]:
        """(K, stride) in samples."""
        return window_and_stride_samples(self.sample_rate, self.window_len_ms, self.window_stride_ms)

    def frozen_parts(self) -> tuple[str, ...]:
        """No parameters, so nothing to freeze."""
        return ()

    def __call__(self, waveform) -> jnp.ndarray:
        x = as_waveform_batch(waveform, type(self).__name__)
        window, stride = self.window_and_stride()
        hann = jnp.asarray(filters.hann_window(window), jnp.float32)
        spectrum = jnp.fft.rfft(stft_frames(x, window, stride) * hann, n=self.n_fft)
        power = jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum))
        mel_matrix = jnp.asarray(filters.mel_weight_matrix(
            self.n_filters, self.n_fft, self.sample_rate, self.min_freq, self.max_freq), jnp.float32)
        mel_energies = jnp.matmul(power, mel_matrix, precision=lax.Precision.HIGHEST)
        return jnp.log(mel_energies + self.log_offset)
