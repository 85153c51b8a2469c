"""Strided pooling over time with TF 'SAME' alignment: LEAF's Gaussian lowpass and SincNet's max-pool.

Inputs and outputs are channels-first, (batch, channels, time), so that every reduction runs over the
contiguous time axis. Both poolings are computed on stride-long blocks instead of as a strided
convolution. The 'SAME'-padded signal is cut into blocks of `stride` samples; frame i starts on block i
and spans J = ceil(window / stride) consecutive blocks (3 for window 401, stride 160). So with the window
zero-padded to J*stride taps and cut the same way,

    partial[b, c, n, j] = sum_{m<stride} blocks[b, c, n, m] * w[c, j, m]      (every block n, each j < J)
    y[b, c, i]          = sum_{j<J} partial[b, c, i + j, j]

The weighted pooling has two implementations of that sum (`weighted_pool`'s `impl`), equal to float32
rounding:

* 'passes': J fused multiply-reduce passes over the signal, one per j. Used on GPU and TPU, where the
  H200 throughput of docs/performance.md was measured with it.
* 'matmul': all J partials in one pass, as a batched matmul (channels batched, the stride contracted).
  Used on the CPU, where it measures faster (docs/performance.md).

XLA's grouped strided convolution with a 401-tap kernel, the obvious alternative to both, was measured
30x slower than the whole filterbank (docs/performance.md), mostly in its input gradient.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from leaf_ssl.frontends import constraints, filters
from leaf_ssl.frontends.framing import blocks_per_window, num_frames, same_padding, split_into_blocks

POOLING_IMPLS = ("passes", "matmul", "auto")

# Initial Gaussian lowpass sigma of the reference LEAF (relative to the half-window; ~ a Hann window).
POOLING_SIGMA_INIT = 0.4


def _same_padded_blocks(x: jnp.ndarray, window: int, stride: int, fill: float):
    """'SAME'-pads (batch, channels, samples) and cuts it into (batch, channels, n_blocks, stride).

    The end is padded further (with `fill`) so that the last frame's J blocks all exist.
    """
    samples = x.shape[-1]
    frames = num_frames(samples, stride)
    n_window_blocks = blocks_per_window(window, stride)
    pad_before, _ = same_padding(samples, window, stride)
    pad_after = (frames - 1 + n_window_blocks) * stride - pad_before - samples
    padded = jnp.pad(x, ((0, 0), (0, 0), (pad_before, pad_after)), constant_values=fill)
    return split_into_blocks(padded, stride, axis=2), frames, n_window_blocks


def resolve_pooling_impl(impl: str) -> str:
    """'auto' -> 'matmul' on the CPU, 'passes' elsewhere; other values are checked and returned."""
    if impl not in POOLING_IMPLS:
        raise ValueError(f"unknown pooling_impl {impl!r}; valid: {', '.join(POOLING_IMPLS)}")
    if impl == "auto":
        return "matmul" if jax.default_backend() == "cpu" else "passes"
    return impl


def weighted_pool(x: jnp.ndarray, windows: jnp.ndarray, stride: int, impl: str = "auto") -> jnp.ndarray:
    """Per-channel strided weighted sum, 'SAME' alignment (a depthwise strided conv, without the conv).

        y[b, c, i] = sum_{k<K} x_pad[b, c, i*stride + k] * windows[c, k]

    Args:
      x: (batch, channels, samples).
      windows: (channels, K) per-channel pooling windows.
      stride: hop in samples.
      impl: 'passes', 'matmul' or 'auto' (see the module docstring; `resolve_pooling_impl`).

    Returns:
      (batch, channels, ceil(samples / stride)).
    """
    channels, window = windows.shape
    blocks, frames, n_window_blocks = _same_padded_blocks(x, window, stride, 0.0)
    padded_windows = jnp.pad(windows, ((0, 0), (0, n_window_blocks * stride - window)))
    window_blocks = padded_windows.reshape(channels, n_window_blocks, stride)
    # Every block is reduced, then shifted: slicing before the reduction makes XLA's CPU reduce ~50x slower.
    if resolve_pooling_impl(impl) == "matmul":
        # HIGHEST: float32 on every backend (the default lets GPUs and TPUs round operands to tf32/bf16).
        partials = jnp.einsum("bcns,cjs->bcnj", blocks, window_blocks, precision=lax.Precision.HIGHEST)
        return sum(partials[:, :, j:j + frames, j] for j in range(n_window_blocks))
    pooled = 0.0
    for j in range(n_window_blocks):
        partial = jnp.sum(blocks * window_blocks[None, :, None, j, :], axis=-1)
        pooled = pooled + partial[:, :, j:j + frames]
    return pooled


def max_pool(x: jnp.ndarray, window: int, stride: int) -> jnp.ndarray:
    """Max over each 'SAME' window, padding ignored (as `tf.nn.max_pool1d(padding='SAME')`).

    Args:
      x: (batch, channels, samples).

    Returns:
      (batch, channels, ceil(samples / stride)).
    """
    blocks, frames, n_window_blocks = _same_padded_blocks(x, window, stride, -jnp.inf)
    pooled = None
    for j in range(n_window_blocks):
        taps_in_block = min(stride, window - j * stride)  # the last block is only partly in the window
        partial = jnp.max(blocks[..., :taps_in_block], axis=-1)[:, :, j:j + frames]
        pooled = partial if pooled is None else jnp.maximum(pooled, partial)
    return pooled


class GaussianLowpass(nn.Module):
    """LEAF's learnable per-channel Gaussian lowpass, window `window`, hop `stride`, 'SAME' aligned.

        y[b, c, i] = sum_{t<K} x_pad[b, c, i*stride + t] * exp(-0.5 ((t - (K-1)/2) / (s_c (K-1)/2))^2)

    with s_c = clip(sigma_c, 2/K, 0.5) (`constraints.constrain_pooling_sigma`). The window is not
    normalised, as in the reference. Channels-first in and out: (batch, channels, samples) ->
    (batch, channels, frames). Parameter: `sigma` (channels,), initialised to `sigma_init`.

    Attributes:
      window: K, the window length in samples.
      stride: hop in samples.
      sigma_init: initial sigma of every channel.
      impl: 'passes' | 'matmul' | 'auto' (`weighted_pool`).
    """
    window: int
    stride: int
    sigma_init: float = POOLING_SIGMA_INIT
    impl: str = "auto"

    @nn.compact
    def windows(self, channels: int) -> jnp.ndarray:
        """(channels, window) the pooling windows of the current `sigma`."""
        sigma = self.param("sigma", nn.initializers.constant(self.sigma_init), (channels,), jnp.float32)
        return filters.gaussian_lowpass_windows(constraints.constrain_pooling_sigma(sigma, self.window),
                                                self.window)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return weighted_pool(x, self.windows(x.shape[1]), self.stride, self.impl)
