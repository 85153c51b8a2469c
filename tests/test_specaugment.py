"""SpecAugment masks: band counts and widths, per-example independence."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.model.specaugment import spec_augment


def _bands(flags):
    """Lengths of the runs of True in a 1-D boolean array."""
    runs, length = [], 0
    for flag in list(flags) + [False]:
        if flag:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


@pytest.mark.parametrize("seed", range(5))
def test_masked_region_is_at_most_the_requested_bands(seed):
    features = jnp.ones((6, 50, 40))
    out = np.asarray(spec_augment(jax.random.key(seed), features, freq_masks=2, freq_mask_width=7,
                                  time_masks=3, time_mask_width=5))
    for example in out:
        masked = example == 0
        full_freq = masked.all(axis=0)   # channels zeroed in every frame
        full_time = masked.all(axis=1)   # frames zeroed in every channel
        # Every zero lies in a fully masked channel or a fully masked frame.
        np.testing.assert_array_equal(masked, full_time[:, None] | full_freq[None, :])
        assert full_freq.sum() <= 2 * 7 and full_time.sum() <= 3 * 5
        assert all(w <= 2 * 7 for w in _bands(full_freq)) and len(_bands(full_freq)) <= 2
        assert len(_bands(full_time)) <= 3


def test_examples_get_different_masks_and_unmasked_values_are_kept():
    features = jax.random.normal(jax.random.key(1), (16, 50, 40))
    out = np.asarray(spec_augment(jax.random.key(0), features))
    masks = out == 0
    assert len({m.tobytes() for m in masks}) > 1
    kept = ~masks
    np.testing.assert_array_equal(out[kept], np.asarray(features)[kept])
    assert masks.any()


def test_zero_masks_is_identity_and_rank_is_checked():
    features = jax.random.normal(jax.random.key(1), (2, 10, 8))
    out = spec_augment(jax.random.key(0), features, freq_masks=0, time_masks=0)
    np.testing.assert_array_equal(out, features)
    with pytest.raises(ValueError, match="batch, frames, channels"):
        spec_augment(jax.random.key(0), jnp.ones((10, 8)))
