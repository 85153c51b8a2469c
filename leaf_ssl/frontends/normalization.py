"""Per-example, per-channel normalisation over time (LEAF's optional instance norm)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

INSTANCE_NORM_EPSILON = 1e-6


class InstanceNorm(nn.Module):
    """For (batch, frames, channels) features, per example b and channel c over frames t:

        y[b, t, c] = (x[b, t, c] - mean_t x[b, :, c]) / sqrt(var_t x[b, :, c] + 1e-6) * scale_c + bias_c

    (biased variance), as the reference's `tfa.layers.InstanceNormalization(axis=2, epsilon=1e-6)`.
    Parameters `scale` (ones) and `bias` (zeros), each (channels,). Uses no batch statistics.
    """

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        channels = (x.shape[-1],)
        scale = self.param("scale", nn.initializers.ones, channels, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, channels, jnp.float32)
        mean = jnp.mean(x, axis=1, keepdims=True)
        variance = jnp.mean(jnp.square(x - mean), axis=1, keepdims=True)
        return (x - mean) / jnp.sqrt(variance + INSTANCE_NORM_EPSILON) * scale + bias
