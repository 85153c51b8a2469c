"""Pure filter math: mel scale, mel weight matrix, windows and impulse responses.

These functions hold no state and are shared by the frontend modules and by analysis tools (e.g. plotting
learned filters against the mel scale). Functions of learnable parameters use `jax.numpy` (they run
inside jit/grad); functions of constants only use numpy in float64 and are evaluated once.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax
import numpy as np

# HTK mel scale constants: mel = 1127 ln(1 + f / 700) = 2595 log10(1 + f / 700).
_MEL_BREAK_HZ = 700.0
_MEL_HIGH_FREQ_Q = 1127.0


def hz_to_mel(frequency_hz):
    """HTK mel scale: mel(f) = 1127 * ln(1 + f / 700)."""
    return _MEL_HIGH_FREQ_Q * np.log1p(np.asarray(frequency_hz, np.float64) / _MEL_BREAK_HZ)


def mel_to_hz(mel):
    """Inverse of `hz_to_mel`: f(m) = 700 * (exp(m / 1127) - 1)."""
    return _MEL_BREAK_HZ * np.expm1(np.asarray(mel, np.float64) / _MEL_HIGH_FREQ_Q)


def mel_weight_matrix(n_mels: int, n_fft: int, sample_rate: float, min_freq: float,
                      max_freq: float) -> np.ndarray:
    """Triangular mel filters over the bins of an n_fft-point spectrum, TensorFlow's convention.

    Same as `tf.signal.linear_to_mel_weight_matrix`: the n_fft // 2 + 1 spectrum bins sit at
    f_k = k * (sample_rate / 2) / (n_fft // 2), the band edges are n_mels + 2 points equally spaced in
    HTK mel from mel(min_freq) to mel(max_freq), and filter j is the triangle

        W[k, j] = max(0, min((m_k - e_j) / (e_{j+1} - e_j), (e_{j+2} - m_k) / (e_{j+2} - e_{j+1})))

    with m_k = mel(f_k), peaking at 1 on e_{j+1}; the DC bin (k = 0) always gets weight 0.

    Returns:
      float64 array (n_fft // 2 + 1, n_mels).
    """
    n_bins = n_fft // 2 + 1
    bin_mels = hz_to_mel(np.linspace(0.0, sample_rate / 2.0, n_bins))[1:, None]
    edges = np.linspace(hz_to_mel(min_freq), hz_to_mel(max_freq), n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels - lower) / (centre - lower)
    falling = (upper - bin_mels) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.concatenate([np.zeros((1, n_mels)), weights], axis=0)


def hann_window(length: int) -> np.ndarray:
    """TensorFlow's periodic Hann window, w[n] = 0.5 - 0.5 cos(2 pi n / N), n = 0..length-1.

    N = length for even lengths and N = length - 1 for odd ones: `tf.signal.hann_window(periodic=True)`
    is the symmetric window when the length is odd (401 taps: N = 400).
    """
    period = length if length % 2 == 0 else length - 1
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / max(period, 1))


def hamming_window(length: int) -> np.ndarray:
    """Hamming window of the reference SincNet, w[n] = 0.54 - 0.46 cos(2 pi n / length), n = 0..length-1."""
    n = np.arange(length)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / length)


def centred_taps(size: int) -> np.ndarray:
    """Tap positions t = -(size // 2) .. (size - 1) // 2 of a filter centred on its middle tap."""
    return np.arange(-(size // 2), (size + 1) // 2, dtype=np.float64)


def gabor_impulse_responses(gabor_params: jnp.ndarray, size: int) -> jnp.ndarray:
    """Complex Gabor filters, one per row of `gabor_params` = [mu, sigma].

        h(t) = exp(i mu t) * exp(-t^2 / (2 sigma^2)) / (sqrt(2 pi) sigma),   t = -(size//2) .. (size-1)//2

    mu is the centre frequency in radians per sample (the frequency response peaks at mu), sigma the
    standard deviation of the Gaussian envelope in samples (the response's FWHM is 2 sqrt(2 ln 2) / sigma).

    Args:
      gabor_params: (n_filters, 2) float array [mu, sigma] (already constrained).
      size: number of taps.

    Returns:
      (n_filters, size) complex64 array.
    """
    mu = gabor_params[:, 0:1]
    sigma = gabor_params[:, 1:2]
    t = jnp.asarray(centred_taps(size), jnp.float32)[None, :]
    envelope = jnp.exp(-(t ** 2) / (2.0 * sigma ** 2)) / (math.sqrt(2.0 * math.pi) * sigma)
    phase = mu * t
    return lax.complex(envelope * jnp.cos(phase), envelope * jnp.sin(phase))


def interleave_real_imag(filters: jnp.ndarray) -> jnp.ndarray:
    """(n, size) complex -> (2n, size) real with rows [re_0, im_0, re_1, im_1, ...], the reference's layout."""
    stacked = jnp.stack([jnp.real(filters), jnp.imag(filters)], axis=1)
    return stacked.reshape(2 * filters.shape[0], filters.shape[1])


def sinc_bandpass_filters(low_hz: jnp.ndarray, high_hz: jnp.ndarray, size: int,
                          sample_rate: float) -> jnp.ndarray:
    """Windowless band-pass sinc filters, normalised to a peak of 1 (the reference SincNet's).

    With t_k = k / sample_rate for the taps k of `centred_taps(size)`, a band [f_lo, f_hi] is the
    difference of two ideal low-passes,

        g(t) = 2 f_hi sinc(2 f_hi t) - 2 f_lo sinc(2 f_lo t),   sinc(x) = sin(pi x) / (pi x),

    divided by max_t g(t) (= 2 (f_hi - f_lo), reached at t = 0).

    Args:
      low_hz, high_hz: (n_filters,) band edges in Hz.
      size: number of taps.
      sample_rate: in Hz; the taps are 1 / sample_rate apart.

    Returns:
      (n_filters, size) float32 array.
    """
    t = jnp.asarray(centred_taps(size) / sample_rate, jnp.float32)[None, :]
    low = low_hz[:, None]
    high = high_hz[:, None]
    band = 2.0 * high * jnp.sinc(2.0 * high * t) - 2.0 * low * jnp.sinc(2.0 * low * t)
    return band / jnp.max(band, axis=1, keepdims=True)


def gaussian_lowpass_windows(sigma: jnp.ndarray, size: int) -> jnp.ndarray:
    """Gaussian pooling windows of LEAF, one per channel, unnormalised.

        w(t) = exp(-0.5 * ((t - (size - 1) / 2) / (sigma * (size - 1) / 2))^2),   t = 0 .. size-1

    sigma is relative to the half-width (size - 1) / 2: sigma = 0.4 approximates a Hann window.

    Args:
      sigma: (channels,) float array (already constrained).
      size: window length in samples.

    Returns:
      (channels, size) float32 array.
    """
    half_width = 0.5 * (size - 1)
    t = jnp.arange(size, dtype=jnp.float32)[None, :] - half_width
    return jnp.exp(-0.5 * (t / (sigma[:, None] * half_width)) ** 2)
