"""What a frozen model computes for a batch of windows, in inference mode.

Each window is scaled to unit L2 norm first, as every training crop is (the tf.data pipelines'
`normalize`): the frontend and BatchNorm statistics only ever saw such inputs, and a clip's
loudness would otherwise shift every feature. The model then runs `encode(waveform,
train=False)` (the pooled encoder output, not the COLA projection head) with `apply(...,
mutable=False)`: BatchNorm reads its running statistics and flax would raise if anything tried
to update a variable, so a window's embedding does not depend on the batch it is in. With
`features='frontend'` the encoder is skipped: each window is the mean and standard deviation
over frames of every frontend channel (`pooled_frontend`).
"""
import jax
import jax.numpy as jnp

from leaf_ssl.inference.frozen_model import FrozenModel

FEATURES = {
    "encoder": "pooled encoder output",  # the paper's probe
    # a floor that isolates what the encoder adds to the frontend
    "frontend": "frontend alone, each channel's mean and std over frames (no encoder)",
}
"""What a probe can read, and how its report describes each."""


def l2_normalize(waveforms: jax.Array) -> jax.Array:
    """Each row scaled to unit L2 norm, silence left at zero: `tf.math.l2_normalize` as the
    training pipelines apply it to every crop."""
    squared_norm = jnp.sum(jnp.square(waveforms), axis=-1, keepdims=True)
    return waveforms * jax.lax.rsqrt(jnp.maximum(squared_norm, 1e-12))


def pooled_frontend(features: jax.Array) -> jax.Array:
    """(batch, frames, channels) -> (batch, 2 * channels): each channel's mean over frames, then
    its standard deviation over frames."""
    return jnp.concatenate([jnp.mean(features, axis=1), jnp.std(features, axis=1)], axis=-1)


def make_embed_fn(frozen: FrozenModel, features: str = "encoder"):
    """Jitted (batch, samples) -> (batch, dim) float32 embedding of the L2-normalised waveforms,
    in inference mode: the pooled encoder output, or `pooled_frontend` (see FEATURES)."""
    embed = make_variables_embed_fn(frozen.model, features)
    return lambda waveforms: embed(frozen.variables, waveforms)


def make_variables_embed_fn(model, features: str = "encoder"):
    """`make_embed_fn` with the variables as an argument, `(variables, batch) -> (batch, dim)`: one
    compiled program for every set of weights of one model (a run evaluated while it trains)."""
    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}; valid: {list(FEATURES)}")

    @jax.jit
    def embed(variables, waveforms):
        waveforms = l2_normalize(waveforms)
        if features == "frontend":
            frames = model.apply(variables, waveforms, method=lambda module, w: module.frontend(w), mutable=False)
            return pooled_frontend(frames.astype(jnp.float32))
        pooled = model.apply(variables, waveforms, train=False, method="encode", mutable=False)
        return pooled.astype(jnp.float32)
    return embed
