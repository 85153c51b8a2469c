"""SincNet and SincNet+: learnable band-pass sinc filterbanks.

Ravanelli & Bengio, "Speaker recognition from raw waveform with SincNet" (2018), as the reference LEAF
implementation builds it as a frontend (google-research/leaf-audio `SincNet`, `SincNetPlus`), except that
the filters use the real sample rate (the reference always assumed 16 kHz).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from leaf_ssl.frontends import constraints, convolution, filters, initializers
from leaf_ssl.frontends.compression import PCEN
from leaf_ssl.frontends.framing import as_waveform_batch, window_and_stride_samples
from leaf_ssl.frontends.leaf import ENERGY_FLOOR
from leaf_ssl.frontends.pooling import GaussianLowpass, max_pool

MIN_LOW_HZ = 50.0
MIN_BAND_HZ = 50.0
LEAKY_RELU_SLOPE = 0.2
# Keras LayerNormalization's default epsilon, which the reference SincNet uses.
LAYER_NORM_EPSILON = 1e-3
# Floor of the reference SincNet+'s PCEN (its PCENLayer default; LEAF's is 1e-12).
SINCNET_PLUS_PCEN_FLOOR = 1e-6


class SincFilterbank(nn.Module):
    """Hamming-windowed band-pass sinc filters, applied at stride 1 with 'SAME' alignment.

    Parameter `sinc` (n_filters, 2) = raw [p0, p1] in Hz. The band of filter c is
    low_c = 50 + |p0_c|, high_c = clip(low_c + 50 + |p1_c|, 50, sample_rate / 2)
    (`constraints.constrain_sinc_bands`) and its taps are

        h_c[k] = g_c(t_k) / max_t g_c(t) * (0.54 - 0.46 cos(2 pi k / K)),   k = 0..K-1, t_k = (k - K//2) / sr
        g_c(t) = 2 high_c sinc(2 high_c t) - 2 low_c sinc(2 low_c t)

    (`filters.sinc_bandpass_filters`, `filters.hamming_window`).

    Attributes:
      n_filters: number of band-pass filters = output channels.
      window: filter length K in samples.
      sample_rate: in Hz.
      filter_init: 'mel' | 'random' (`initializers.sinc_initializer`).
      impl: 'direct' | 'fft' | 'auto' (`convolution.apply_filterbank`).
    """
    n_filters: int
    window: int
    sample_rate: float
    filter_init: str = "mel"
    impl: str = "auto"

    @nn.compact
    def __call__(self, waveform: jnp.ndarray) -> jnp.ndarray:
        init = initializers.sinc_initializer(self.filter_init, self.sample_rate, MIN_LOW_HZ, MIN_BAND_HZ)
        bands = self.param("sinc", init, (self.n_filters, 2), jnp.float32)
        low, high = constraints.constrain_sinc_bands(bands, self.sample_rate, MIN_LOW_HZ, MIN_BAND_HZ)
        taps = filters.sinc_bandpass_filters(low, high, self.window, self.sample_rate)
        taps = taps * jnp.asarray(filters.hamming_window(self.window), jnp.float32)[None, :]
        return convolution.apply_filterbank(waveform, taps, self.impl)


class _SincFrontendBase(nn.Module):
    """Fields and helpers shared by SincNet and SincNet+ (see their docstrings)."""
    n_filters: int = 40
    sample_rate: int = 16000
    window_len_ms: float = 25.0
    window_stride_ms: float = 10.0
    filter_init: str = "mel"
    filterbank_impl: str = "auto"
    learn_filters: bool = True

    def window_and_stride(self) -> tuple[int, int]:
        """(K, stride) in samples."""
        return window_and_stride_samples(self.sample_rate, self.window_len_ms, self.window_stride_ms)

    def _rectified_filter_outputs(self, waveform) -> jnp.ndarray:
        """Validated waveform -> sinc filterbank (stride 1) -> LeakyReLU(0.2): (batch, n_filters, samples)."""
        x = as_waveform_batch(waveform, type(self).__name__)
        window, _ = self.window_and_stride()
        filtered = SincFilterbank(self.n_filters, window, self.sample_rate, self.filter_init,
                                  self.filterbank_impl, name="filterbank")(x)
        return nn.leaky_relu(filtered, negative_slope=LEAKY_RELU_SLOPE)


class SincNet(_SincFrontendBase):
    """SincNet frontend: waveform (batch, samples) -> (batch, ceil(samples / stride), n_filters).

      1. sinc filterbank (stride 1, 'SAME')   `SincFilterbank`, K = 401 taps at 16 kHz / 25 ms
      2. LeakyReLU                             y = max(x, 0.2 x)
      3. max-pool                              window K, hop stride (160), 'SAME' alignment, padding ignored
      4. floor                                 max(y, 1e-5)
      5. LayerNorm over channels               (y - mean_c) / sqrt(var_c + 1e-3) * scale + bias

    Parameters: `filterbank/sinc` (n_filters, 2) = raw [low edge, width] in Hz;
    `normalization/{scale,bias}` (n_filters,).

    Attributes:
      n_filters: number of band-pass filters = output channels.
      sample_rate: of the input, in Hz.
      window_len_ms: filter and max-pool window in ms (25 -> 401 taps at 16 kHz).
      window_stride_ms: hop in ms (10 -> 160 samples at 16 kHz).
      filter_init: 'mel': contiguous bands between mel-spaced edges from 50 Hz to sample_rate/2 - 100 Hz
        (the reference's); 'random': the same span with sorted uniform random edges.
      filterbank_impl: 'direct' | 'fft' | 'auto' (direct on TPU, fft elsewhere).
      learn_filters: False lists 'filterbank' in `frozen_parts()`.
      learn_normalization: False lists 'normalization' in `frozen_parts()`.
    """
    learn_normalization: bool = True

    def frozen_parts(self) -> tuple[str, ...]:
        """Top-level parameter groups the optimizer must not update."""
        return tuple(name for name, learns in (("filterbank", self.learn_filters),
                                               ("normalization", self.learn_normalization))
                     if not learns)

    @nn.compact
    def __call__(self, waveform) -> jnp.ndarray:
        window, stride = self.window_and_stride()
        pooled = jnp.swapaxes(max_pool(self._rectified_filter_outputs(waveform), window, stride), 1, 2)
        return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, use_fast_variance=False,
                            name="normalization")(jnp.maximum(pooled, ENERGY_FLOOR))


class SincNetPlus(_SincFrontendBase):
    """SincNet+ frontend: SincNet's filters and LeakyReLU, then LEAF's Gaussian lowpass and sPCEN.

      1-2. as SincNet
      3. Gaussian lowpass, 'SAME'   as `Leaf` step 3 (per-channel sigma, init 0.4)
      4. floor                      max(y, 1e-5)
      5. sPCEN                      as `Leaf` step 5, floor `pcen_floor` (1e-6, the reference's)

    Parameters: `filterbank/sinc` (n_filters, 2); `pooling/sigma` (n_filters,);
    `compression/{alpha,delta,root,smooth}` (n_filters,). The reference kept this PCEN fixed (not trained,
    one shared smoothing coefficient); learn_compression=False reproduces that, the default learns it
    per channel as in LEAF.

    Attributes:
      n_filters, sample_rate, window_len_ms, window_stride_ms, filter_init, filterbank_impl: as SincNet.
      pooling_impl: the Gaussian lowpass's 'passes', 'matmul' or 'auto' (`pooling.weighted_pool`).
      learn_filters / learn_pooling / learn_compression: False lists 'filterbank' / 'pooling' /
        'compression' in `frozen_parts()`.
      pcen_floor: added to the smoother inside sPCEN.
    """
    pooling_impl: str = "auto"
    learn_pooling: bool = True
    learn_compression: bool = True
    pcen_floor: float = SINCNET_PLUS_PCEN_FLOOR

    def frozen_parts(self) -> tuple[str, ...]:
        """Top-level parameter groups the optimizer must not update."""
        return tuple(name for name, learns in (("filterbank", self.learn_filters),
                                               ("pooling", self.learn_pooling),
                                               ("compression", self.learn_compression))
                     if not learns)

    @nn.compact
    def __call__(self, waveform) -> jnp.ndarray:
        window, stride = self.window_and_stride()
        pooled = jnp.swapaxes(
            GaussianLowpass(window, stride, impl=self.pooling_impl, name="pooling")(
                self._rectified_filter_outputs(waveform)), 1, 2)
        return PCEN(floor=self.pcen_floor, name="compression")(jnp.maximum(pooled, ENERGY_FLOOR))
