"""The chirp image of the training summaries: readable when a few channels dominate, and a PNG that an
independent decoder (Pillow) reads back to the same pixels."""
import io

import numpy as np

from leaf_ssl.training.summaries import _as_image, gray_png, png_size


def test_a_few_loud_channels_do_not_blacken_the_rest():
    rng = np.random.default_rng(0)
    frames = rng.uniform(1.0, 2.5, size=(96, 40)).astype(np.float32)  # (frames, channels), sPCEN-like levels
    loud = [33, 34, 35, 36, 37]  # five channels ~10x louder, as pinned sPCEN channels were
    frames[:, loud] *= 10.0
    frames[:, 3] = 1.7  # a channel that does not answer at all
    image = _as_image(frames)  # (channels, frames), lowest channel at the bottom
    assert image.shape == (40, 96) and image.min() >= 0.0 and image.max() <= 1.0
    quiet_rows = np.delete(image, [39 - channel for channel in [*loud, 3]], axis=0)
    # one scale for all would squeeze the quiet channels into [0, 0.1]; each keeps its full range
    assert np.allclose(quiet_rows.min(axis=1), 0.0) and np.allclose(quiet_rows.max(axis=1), 1.0)
    assert np.all(image[39 - 3] == 0.0)  # a constant channel is not divided by zero
    # the order of levels within a channel survives: a monotone map
    assert np.all(np.diff(image[39][np.argsort(frames[:, 0])]) >= 0)


def test_the_png_decodes_to_the_image_s_pixels():
    from PIL import Image
    image = np.random.default_rng(1).uniform(-0.2, 1.2, size=(7, 13))  # out-of-range values are clipped
    png = gray_png(image)
    decoded = Image.open(io.BytesIO(png))
    assert decoded.mode == "L" and decoded.size == png_size(png) == (13, 7)
    np.testing.assert_array_equal(np.asarray(decoded), np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
