"""Initial values of the filterbank parameters: mel-scale inits of Gabor and sinc filters, random inits.

The `*_initializer(scheme, ...)` functions return a flax-style `init(key, shape, dtype)` for the named
scheme; the mel inits are deterministic and ignore the key.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from leaf_ssl.frontends import constraints, filters

Initializer = Callable[[jax.Array, tuple, jnp.dtype], jax.Array]

GABOR_INIT_SCHEMES = ("mel", "random", "normal", "uniform")
SINC_INIT_SCHEMES = ("mel", "random")

# n_fft of the mel filterbank that the Gabor mel-init imitates (the reference's).
GABOR_MEL_INIT_N_FFT = 512
# Scale of the first author's 'normal' / 'uniform' inits (flax's initializers.normal() / uniform() defaults).
_RAW_RANDOM_SCALE = 1e-2


def gabor_params_from_mel(n_filters: int, sample_rate: float, min_freq: float, max_freq: float,
                          n_fft: int = GABOR_MEL_INIT_N_FFT) -> np.ndarray:
    """Gabor [mu, sigma] imitating the n_fft-point mel filterbank (reference LEAF's mel init).

    With W the (n_fft//2 + 1, n_filters) `filters.mel_weight_matrix` and a_j = sqrt(W[:, j]):

        mu_j    = argmax_k a_j[k] * 2 pi / n_fft                    (radians / sample)
        FWHM_j  = #{k : a_j[k] >= max(a_j) / 2}                     (in bins)
        sigma_j = sqrt(2 ln 2) * n_fft / (pi * FWHM_j)              (samples)

    Returns:
      float32 array (n_filters, 2).
    """
    sqrt_filters = np.sqrt(filters.mel_weight_matrix(n_filters, n_fft, sample_rate, min_freq,
                                                     max_freq)).T.astype(np.float32)
    peak_bins = np.argmax(sqrt_filters, axis=1)
    half_peaks = sqrt_filters.max(axis=1, keepdims=True) / 2.0
    fwhm_bins = np.sum(sqrt_filters >= half_peaks, axis=1)
    mu = peak_bins * 2.0 * np.pi / n_fft
    sigma = math.sqrt(2.0 * math.log(2.0)) * n_fft / (np.pi * fwhm_bins)
    return np.stack([mu, sigma], axis=1).astype(np.float32)


def random_gabor_params(key: jax.Array, n_filters: int, window: int) -> jax.Array:
    """Gabor [mu, sigma] covering the whole allowed range, sorted by centre frequency.

        mu    ~ Uniform[0, pi]                              (radians / sample)
        sigma ~ Uniform[sigma_min, sigma_max]               (`constraints.gabor_sigma_bounds(window)`)

    drawn independently per filter, then the (mu, sigma) pairs are sorted by mu.
    """
    mu_key, sigma_key = jax.random.split(key)
    sigma_min, sigma_max = constraints.gabor_sigma_bounds(window)
    mu = jax.random.uniform(mu_key, (n_filters,), jnp.float32, 0.0, math.pi)
    sigma = jax.random.uniform(sigma_key, (n_filters,), jnp.float32, sigma_min, sigma_max)
    order = jnp.argsort(mu)
    return jnp.stack([mu[order], sigma[order]], axis=1)


def gabor_initializer(scheme: str, sample_rate: float, min_freq: float, max_freq: float,
                      window: int) -> Initializer:
    """Initializer of the (n_filters, 2) Gabor parameters [mu, sigma].

    Schemes:
      'mel':     `gabor_params_from_mel` (deterministic; the reference LEAF's default).
      'random':  `random_gabor_params`: mu ~ U[0, pi], sigma ~ U[sigma_min, sigma_max], sorted by mu.
      'normal':  every raw entry i.i.d. N(0, 0.01^2) (flax `initializers.normal()`, the first author's
                 'randn'). After the forward constraint all filters sit near mu = 0 with sigma = sigma_min,
                 and filters with mu < 0 start with a zero gradient for mu.
      'uniform': every raw entry i.i.d. U[0, 0.01) (flax `initializers.uniform()`); the same caveat.
    """
    if scheme == "mel":
        def init(key, shape, dtype=jnp.float32):
            del key
            return jnp.asarray(gabor_params_from_mel(shape[0], sample_rate, min_freq, max_freq), dtype)
    elif scheme == "random":
        def init(key, shape, dtype=jnp.float32):
            return random_gabor_params(key, shape[0], window).astype(dtype)
    elif scheme == "normal":
        def init(key, shape, dtype=jnp.float32):
            return _RAW_RANDOM_SCALE * jax.random.normal(key, shape, dtype)
    elif scheme == "uniform":
        def init(key, shape, dtype=jnp.float32):
            return jax.random.uniform(key, shape, dtype, 0.0, _RAW_RANDOM_SCALE)
    else:
        raise ValueError(f"unknown Gabor init {scheme!r}; valid: {', '.join(GABOR_INIT_SCHEMES)}")
    return init


def _bands_from_edges(edges_hz, array_module=jnp):
    """Contiguous bands from n+1 increasing edges: stored parameters [left edge, width]."""
    return array_module.stack([edges_hz[:-1], edges_hz[1:] - edges_hz[:-1]], axis=1)


def sinc_params_from_mel(n_filters: int, sample_rate: float, min_low_hz: float,
                         min_band_hz: float) -> np.ndarray:
    """SincNet [left edge, width] in Hz: contiguous bands between n+1 mel-spaced edges.

    Edges equally spaced in HTK mel from min_low_hz to sample_rate / 2 - (min_low_hz + min_band_hz),
    i.e. 50 Hz to 7,900 Hz at 16 kHz. The forward adds min_low_hz and min_band_hz back
    (`constraints.constrain_sinc_bands`), so the initial bands are shifted by those minima, as in the
    reference.
    """
    edges = filters.mel_to_hz(np.linspace(
        filters.hz_to_mel(min_low_hz),
        filters.hz_to_mel(sample_rate / 2.0 - (min_low_hz + min_band_hz)),
        n_filters + 1))
    return _bands_from_edges(edges, np).astype(np.float32)


def random_sinc_params(key: jax.Array, n_filters: int, sample_rate: float, min_low_hz: float,
                       min_band_hz: float) -> jax.Array:
    """SincNet [left edge, width]: contiguous bands between n+1 sorted uniform edges.

    Edges ~ Uniform[min_low_hz, sample_rate / 2 - (min_low_hz + min_band_hz)] i.i.d., sorted: the same
    span as the mel init, with random instead of mel-spaced band boundaries.
    """
    top = sample_rate / 2.0 - (min_low_hz + min_band_hz)
    edges = jnp.sort(jax.random.uniform(key, (n_filters + 1,), jnp.float32, min_low_hz, top))
    return _bands_from_edges(edges)


def sinc_initializer(scheme: str, sample_rate: float, min_low_hz: float,
                     min_band_hz: float) -> Initializer:
    """Initializer of the (n_filters, 2) SincNet parameters: 'mel' or 'random' (see the functions above)."""
    if scheme == "mel":
        def init(key, shape, dtype=jnp.float32):
            del key
            return jnp.asarray(sinc_params_from_mel(shape[0], sample_rate, min_low_hz, min_band_hz), dtype)
    elif scheme == "random":
        def init(key, shape, dtype=jnp.float32):
            return random_sinc_params(key, shape[0], sample_rate, min_low_hz, min_band_hz).astype(dtype)
    else:
        raise ValueError(f"unknown sinc init {scheme!r}; valid: {', '.join(SINC_INIT_SCHEMES)}")
    return init
