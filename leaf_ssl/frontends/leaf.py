"""LEAF: a learnable frontend of complex Gabor filters, Gaussian lowpass pooling and sPCEN.

Zeghidour et al., "LEAF: A Learnable Frontend for Audio Classification" (ICLR 2021), as in the reference
implementation google-research/leaf-audio, whose conventions (parametrisation, constraints, initial
values, 'SAME' frame alignment, interleaved real/imaginary channels) this module reproduces.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from leaf_ssl.frontends import constraints, convolution, filters, fused, initializers
from leaf_ssl.frontends.compression import LEAF_PCEN_FLOOR, PCEN
from leaf_ssl.frontends.framing import as_waveform_batch, window_and_stride_samples
from leaf_ssl.frontends.normalization import InstanceNorm
from leaf_ssl.frontends.pooling import GaussianLowpass
from leaf_ssl.frontends.preemphasis import Preemphasis

# 'fused' replaces the filterbank, squared modulus and pooling together, so only LEAF offers it.
FILTERBANK_IMPLS = convolution.FILTERBANK_IMPLS + ("fused",)

# Floor applied to the pooled energies before compression (reference: tf.maximum(x, 1e-5)).
ENERGY_FLOOR = 1e-5


class GaborFilterbank(nn.Module):
    """Complex Gabor filters applied at stride 1 with 'SAME' alignment.

    Parameter `gabor` (n_filters, 2) = raw [mu (radians/sample), sigma (samples)] per filter; the forward
    uses `constraints.constrain_gabor_params` of it and the impulse responses of
    `filters.gabor_impulse_responses`. Output (batch, 2 * n_filters, samples), channels-first: the real
    and imaginary parts of each filter's response, interleaved [re_0, im_0, re_1, im_1, ...] as in the
    reference.

    Attributes:
      n_filters: number of complex filters.
      window: filter length K in samples.
      sample_rate, min_freq, max_freq: used by the 'mel' init only.
      filter_init: 'mel' | 'random' | 'normal' | 'uniform' (`initializers.gabor_initializer`).
      impl: 'direct' | 'fft' | 'auto' (`convolution.apply_filterbank`).
    """
    n_filters: int
    window: int
    sample_rate: float
    min_freq: float
    max_freq: float
    filter_init: str = "mel"
    impl: str = "auto"

    @nn.compact
    def taps(self) -> jnp.ndarray:
        """(2 * n_filters, window) impulse responses, real and imaginary parts interleaved."""
        init = initializers.gabor_initializer(self.filter_init, self.sample_rate, self.min_freq,
                                              self.max_freq, self.window)
        gabor = self.param("gabor", init, (self.n_filters, 2), jnp.float32)
        responses = filters.gabor_impulse_responses(
            constraints.constrain_gabor_params(gabor, self.window), self.window)
        return filters.interleave_real_imag(responses)

    def __call__(self, waveform: jnp.ndarray) -> jnp.ndarray:
        return convolution.apply_filterbank(waveform, self.taps(), self.impl)


def squared_modulus(interleaved: jnp.ndarray) -> jnp.ndarray:
    """(batch, 2C, time) channels [re_0, im_0, ...] -> (batch, C, time) energies re_c^2 + im_c^2."""
    batch, channels, time = interleaved.shape
    pairs = interleaved.reshape(batch, channels // 2, 2, time)
    return jnp.sum(jnp.square(pairs), axis=2)


class Leaf(nn.Module):
    """LEAF frontend: waveform (batch, samples) -> features (batch, ceil(samples / stride), n_filters).

    Pipeline, with K = int(sample_rate * window_len_ms // 1000 + 1) taps (401 at 16 kHz) and
    stride = int(sample_rate * window_stride_ms // 1000) samples (160):

      0. optional pre-emphasis        y[n] = k_0 x[n] + k_1 x[n+1], k = [-0.97, 1]  (`preemphasis`)
      1. Gabor filterbank (stride 1)  u_c[n] = sum_t x[n + t] h_c(t),
                                      h_c(t) = exp(i mu_c t) exp(-t^2 / (2 sigma_c^2)) / (sqrt(2 pi) sigma_c)
                                      mu_c in [0, pi], sigma_c in [4 sqrt(2 ln 2)/pi, K sqrt(2 ln 2)/pi]
      2. squared modulus              e_c[n] = |u_c[n]|^2
      3. Gaussian lowpass, 'SAME'     p_c[i] = sum_t e_c[i*stride - P + t] exp(-0.5 ((t - (K-1)/2) / (s_c (K-1)/2))^2)
                                      s_c in [2/K, 0.5], init 0.4; frames = ceil(samples / stride)
      4. floor                        p_c = max(p_c, 1e-5)
      5. sPCEN                        M_0 = p_0, M_i = s p_i + (1 - s) M_{i-1}
                                      out = (p / (1e-12 + M)^alpha + delta)^(1/r) - delta^(1/r)
                                      init alpha 0.96, delta 2, r 2, s 0.04 (per channel)
      6. optional instance norm       over frames, per example and channel (`instance_norm`)

    Frame i is the 'SAME' frame of `framing.same_padding` (the reference's alignment). Everything runs in
    float32; nothing uses batch statistics or randomness at apply time.

    Parameters: `filterbank/gabor` (n_filters, 2) = [mu, sigma]; `pooling/sigma` (n_filters,);
    `compression/{alpha,delta,root,smooth}` each (n_filters,); with the options, `preemphasis/kernel` (2,)
    and `instance_norm/{scale,bias}` (n_filters,).

    Attributes:
      n_filters: number of complex Gabor filters = output channels.
      sample_rate: of the input, in Hz.
      window_len_ms: filter and pooling window length in ms (25 -> 401 taps at 16 kHz).
      window_stride_ms: hop between frames in ms (10 -> 160 samples at 16 kHz).
      min_freq, max_freq: frequency range in Hz of the mel filterbank imitated by the 'mel' init.
      filter_init: how the Gabor parameters start (see `initializers.gabor_initializer`):
        'mel'     centres and bandwidths of a 512-point, `min_freq`..`max_freq` mel filterbank (reference);
        'random'  mu ~ U[0, pi], sigma ~ U over its whole allowed range, pairs sorted by mu;
        'normal'  raw entries ~ N(0, 0.01^2) (the first author's 'randn');
        'uniform' raw entries ~ U[0, 0.01).
        (Named `filter_init` because `init` is flax's Module.init; `make_frontend` accepts `init`.)
      filterbank_impl: 'direct' (lax conv), 'fft' (rfft/irfft) or 'auto' (direct on TPU, fft elsewhere);
        or 'fused': steps 1-3 in one Pallas kernel (`fused.gabor_energy_pool`), compiled on TPU,
        interpreted on the CPU (slow: for tests), refused on GPU. `auto` never picks it: it is unmeasured.
      pooling_impl: the Gaussian lowpass's 'passes', 'matmul' or 'auto' (matmul on the CPU, passes
        elsewhere); see `pooling.weighted_pool`.
      learn_filters: False lists 'filterbank' (and 'preemphasis') in `frozen_parts()`.
      learn_pooling: False lists 'pooling' in `frozen_parts()`.
      learn_compression: False lists 'compression' in `frozen_parts()`.
      preemphasis: add the learnable 2-tap pre-emphasis (learns with the filters).
      instance_norm: add a learnable instance normalisation after sPCEN (always learns).
    """
    n_filters: int = 40
    sample_rate: int = 16000
    window_len_ms: float = 25.0
    window_stride_ms: float = 10.0
    min_freq: float = 60.0
    max_freq: float = 7800.0
    filter_init: str = "mel"
    filterbank_impl: str = "auto"
    pooling_impl: str = "auto"
    learn_filters: bool = True
    learn_pooling: bool = True
    learn_compression: bool = True
    preemphasis: bool = False
    instance_norm: bool = False

    def window_and_stride(self) -> tuple[int, int]:
        """(K, stride) in samples."""
        return window_and_stride_samples(self.sample_rate, self.window_len_ms, self.window_stride_ms)

    def frozen_parts(self) -> tuple[str, ...]:
        """Top-level parameter groups the optimizer must not update."""
        frozen = []
        if not self.learn_filters:
            frozen.append("filterbank")
            if self.preemphasis:
                frozen.append("preemphasis")
        if not self.learn_pooling:
            frozen.append("pooling")
        if not self.learn_compression:
            frozen.append("compression")
        return tuple(frozen)

    @nn.compact
    def __call__(self, waveform) -> jnp.ndarray:
        x = as_waveform_batch(waveform, type(self).__name__)
        window, stride = self.window_and_stride()
        if self.preemphasis:
            x = Preemphasis(name="preemphasis")(x)
        filterbank = GaborFilterbank(self.n_filters, window, self.sample_rate, self.min_freq, self.max_freq,
                                     self.filter_init, self.filterbank_impl, name="filterbank")
        lowpass = GaussianLowpass(window, stride, impl=self.pooling_impl, name="pooling")
        if self.filterbank_impl == "fused":
            pooled = fused.gabor_energy_pool(x, filterbank.taps(), lowpass.windows(self.n_filters), stride)
        else:
            pooled = lowpass(squared_modulus(filterbank(x)))
        pooled = jnp.swapaxes(pooled, 1, 2)
        features = PCEN(floor=LEAF_PCEN_FLOOR, name="compression")(jnp.maximum(pooled, ENERGY_FLOOR))
        if self.instance_norm:
            features = InstanceNorm(name="instance_norm")(features)
        return features
