"""sPCEN: per-channel energy normalisation with learnable per-channel smoothing (LEAF's compression).

For energies E (batch, frames, channels), per channel:

    M_0 = E_0,   M_t = s E_t + (1 - s) M_{t-1}                          (smoother)
    PCEN(E)_t = (E_t / (floor + M_t)^alpha + delta)^(1/r) - delta^(1/r)

with (alpha, delta, r, s) constrained by `constraints.constrain_pcen_params`. The smoother is a linear
recurrence, evaluated by `lax.associative_scan` (log-depth, no Python loop over frames).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from leaf_ssl.frontends import constraints
from leaf_ssl.frontends.constraints import PCENParams

# Initial values of the reference LEAF's sPCEN.
PCEN_ALPHA_INIT = 0.96
PCEN_DELTA_INIT = 2.0
PCEN_ROOT_INIT = 2.0
PCEN_SMOOTH_INIT = 0.04
LEAF_PCEN_FLOOR = 1e-12


def exponential_moving_average(x: jnp.ndarray, smooth: jnp.ndarray) -> jnp.ndarray:
    """M_0 = x_0, M_t = smooth * x_t + (1 - smooth) * M_{t-1}, along axis 1.

    Args:
      x: (batch, frames, channels).
      smooth: (channels,) coefficients in [0, 1].
    """
    decay = jnp.broadcast_to(1.0 - smooth, x.shape)
    # M_t = decay_t * M_{t-1} + drive_t, with decay_0 = 0 and drive_0 = x_0 so that M_0 = x_0.
    decay = decay.at[:, 0].set(0.0)
    drive = (smooth * x).at[:, 0].set(x[:, 0])

    def compose(earlier, later):
        earlier_decay, earlier_drive = earlier
        later_decay, later_drive = later
        return earlier_decay * later_decay, later_decay * earlier_drive + later_drive

    _, smoothed = lax.associative_scan(compose, (decay, drive), axis=1)
    return smoothed


def pcen(energies: jnp.ndarray, params: PCENParams, floor: float) -> jnp.ndarray:
    """sPCEN of (batch, frames, channels) energies with per-channel raw `params` (constrained here)."""
    alpha, delta, root, smooth = constraints.constrain_pcen_params(params)
    smoothed = exponential_moving_average(energies, smooth)
    inverse_root = 1.0 / root
    return (energies / (floor + smoothed) ** alpha + delta) ** inverse_root - delta ** inverse_root


class PCEN(nn.Module):
    """Learnable per-channel sPCEN (module docstring has the equations).

    Parameters `alpha`, `delta`, `root`, `smooth`, each (channels,), initialised to the reference's
    0.96, 2.0, 2.0, 0.04.

    Attributes:
      floor: added to the smoother before the power (1e-12 in LEAF; the reference SincNet+ used 1e-6).
    """
    floor: float = LEAF_PCEN_FLOOR

    @nn.compact
    def __call__(self, energies: jnp.ndarray) -> jnp.ndarray:
        channels = (energies.shape[-1],)

        def constant_param(name, value):
            return self.param(name, nn.initializers.constant(value), channels, jnp.float32)

        params = PCENParams(
            alpha=constant_param("alpha", PCEN_ALPHA_INIT),
            delta=constant_param("delta", PCEN_DELTA_INIT),
            root=constant_param("root", PCEN_ROOT_INIT),
            smooth=constant_param("smooth", PCEN_SMOOTH_INIT),
        )
        return pcen(energies, params, self.floor)
