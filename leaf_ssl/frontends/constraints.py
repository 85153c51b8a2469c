"""Constraints applied to the raw learnable parameters in every forward pass.

The optimizer updates the raw parameters freely; the forward pass only ever sees their projection onto
the valid set, exactly as the reference LEAF does (Keras constraints applied inside `call`). All use
clipping, so within the valid set the forward is the identity on the stored values and the gradient
is finite everywhere (zero past a bound, split at the bound itself).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp

_SQRT_2_LN_2 = math.sqrt(2.0 * math.log(2.0))

# delta must stay positive: (x + delta)^(1/r) - delta^(1/r) is NaN for delta < 0 (the reference lets it go
# there). The bound is far below any trained value and keeps d/d delta of delta^(1/r) finite.
PCEN_MIN_DELTA = 1e-6


def gabor_sigma_bounds(window: int) -> tuple[float, float]:
    """Allowed range of the Gabor envelope std in samples, for a filter of `window` taps.

    [4 sqrt(2 ln 2) / pi, window * sqrt(2 ln 2) / pi]: the frequency response's FWHM
    2 sqrt(2 ln 2) / sigma then lies in [2 pi / window, pi / 2] radians per sample.
    """
    return 4.0 * _SQRT_2_LN_2 / math.pi, window * _SQRT_2_LN_2 / math.pi


def constrain_gabor_params(gabor_params: jnp.ndarray, window: int) -> jnp.ndarray:
    """Clips [mu, sigma] per filter: mu to [0, pi], sigma to `gabor_sigma_bounds(window)`."""
    sigma_min, sigma_max = gabor_sigma_bounds(window)
    mu = jnp.clip(gabor_params[:, 0], 0.0, math.pi)
    sigma = jnp.clip(gabor_params[:, 1], sigma_min, sigma_max)
    return jnp.stack([mu, sigma], axis=1)


def pooling_sigma_bounds(window: int) -> tuple[float, float]:
    """Allowed range [2 / window, 0.5] of the Gaussian lowpass sigma (relative to the half-window)."""
    return 2.0 / window, 0.5


def constrain_pooling_sigma(sigma: jnp.ndarray, window: int) -> jnp.ndarray:
    """Clips the Gaussian lowpass sigma to `pooling_sigma_bounds(window)`."""
    low, high = pooling_sigma_bounds(window)
    return jnp.clip(sigma, low, high)


class PCENParams(NamedTuple):
    """Per-channel sPCEN parameters, each (channels,)."""
    alpha: jnp.ndarray
    delta: jnp.ndarray
    root: jnp.ndarray
    smooth: jnp.ndarray


def constrain_pcen_params(params: PCENParams) -> PCENParams:
    """alpha in [0, 1], delta >= PCEN_MIN_DELTA, root >= 1, smooth in [0, 1].

    Identical to the reference for valid values (it applies min(alpha, 1), max(root, 1) and clips smooth
    to [0, 1]); the lower bound on alpha and the one on delta are this project's additions.
    """
    return PCENParams(
        alpha=jnp.clip(params.alpha, 0.0, 1.0),
        delta=jnp.maximum(params.delta, PCEN_MIN_DELTA),
        root=jnp.maximum(params.root, 1.0),
        smooth=jnp.clip(params.smooth, 0.0, 1.0),
    )


def constrain_sinc_bands(bands: jnp.ndarray, sample_rate: float, min_low_hz: float,
                         min_band_hz: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Band edges in Hz from the stored SincNet parameters [p0, p1] (reference parametrisation).

        low  = min_low_hz + |p0|
        high = clip(low + min_band_hz + |p1|, min_low_hz, sample_rate / 2)

    Returns:
      (low, high), each (n_filters,).
    """
    low = min_low_hz + jnp.abs(bands[:, 0])
    high = jnp.clip(low + min_band_hz + jnp.abs(bands[:, 1]), min_low_hz, sample_rate / 2.0)
    return low, high
