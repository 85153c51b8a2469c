"""LEAF's optional learnable pre-emphasis: a 2-tap FIR filter with the reference's 'SAME' alignment."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

PREEMPHASIS_COEFFICIENT = 0.97


class Preemphasis(nn.Module):
    """y[n] = k_0 x[n] + k_1 x[n + 1], with x[samples] = 0, initialised to k = [-0.97, 1].

    This is a Keras `Conv1D(kernel_size=2, padding='SAME')` as the reference LEAF uses: 'SAME' padding of a
    2-tap kernel puts the one padding zero at the end, so the output is x[n+1] - 0.97 x[n] (the classic
    x[n] - 0.97 x[n-1], one sample earlier). Parameter: `kernel` (2,).
    """

    @nn.compact
    def __call__(self, waveform: jnp.ndarray) -> jnp.ndarray:
        kernel = self.param(
            "kernel", lambda key, shape, dtype: jnp.array([-PREEMPHASIS_COEFFICIENT, 1.0], dtype),
            (2,), jnp.float32)
        following = jnp.pad(waveform[:, 1:], ((0, 0), (0, 1)))
        return kernel[0] * waveform + kernel[1] * following
