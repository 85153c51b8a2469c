"""SpecAugment-style masking of frontend features (Park et al., 2019), without time warping.

COLA applies it to the positive view only. Masks are drawn per example, so a batch never
shares one mask; callers inside `shard_map` fold the device index into the key so that
devices draw different masks too (the first author's code reused one mask everywhere).
"""
import jax
import jax.numpy as jnp


def _band_mask(key, size: int, num_masks: int, max_width: int) -> jax.Array:
    """Boolean (size,) mask, True inside `num_masks` random bands of width in [0, max_width].

    Each band's width w is uniform in {0..max_width} and its start uniform in {0..size-w},
    the usual SpecAugment sampling; bands may overlap.
    """
    positions = jnp.arange(size)
    mask = jnp.zeros((size,), bool)
    for band_key in jax.random.split(key, num_masks):
        width_key, start_key = jax.random.split(band_key)
        width = jax.random.randint(width_key, (), 0, max_width + 1)
        width = jnp.minimum(width, size)
        start = jax.random.randint(start_key, (), 0, size - width + 1)
        mask |= (positions >= start) & (positions < start + width)
    return mask


def spec_augment(key, features: jax.Array, *, freq_masks: int = 2, freq_mask_width: int = 10,
                 time_masks: int = 2, time_mask_width: int = 10) -> jax.Array:
    """Zero `freq_masks` channel bands and `time_masks` frame bands in each example.

    Args:
      key: PRNG key.
      features: (batch, frames, channels) frontend output.
    Returns:
      The features with masked entries set to 0, same shape and dtype.
    """
    if features.ndim != 3:
        raise ValueError(f"spec_augment expects (batch, frames, channels), got shape {features.shape}")
    batch, frames, channels = features.shape

    def one_example(example_key):
        freq_key, time_key = jax.random.split(example_key)
        freq = _band_mask(freq_key, channels, freq_masks, freq_mask_width)
        time = _band_mask(time_key, frames, time_masks, time_mask_width)
        return time[:, None] | freq[None, :]

    masked = jax.vmap(one_example)(jax.random.split(key, batch))
    return jnp.where(masked, jnp.zeros((), features.dtype), features)
