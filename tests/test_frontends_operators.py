"""The operators of leaf_ssl.frontends against slow, obviously right computations.

Oracles: numpy loops and correlations, the TF 'SAME' rule as TensorFlow documents it, and XLA's own
'SAME' grouped convolution / reduce_window (the slow formulations the fast code avoids).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from leaf_ssl.frontends import compression, convolution, filters, framing, pooling
from leaf_ssl.frontends.constraints import PCENParams

RNG = np.random.default_rng(0)
jitted_pcen = jax.jit(compression.pcen, static_argnums=2)


def tf_same_padding(samples, window, stride):
    """The 'SAME' rule as documented by TensorFlow: out = ceil(in / stride), extra padding at the end."""
    out = math.ceil(samples / stride)
    total = max((out - 1) * stride + window - samples, 0)
    return out, total // 2


def slow_weighted_pool(x, windows, stride):
    """y[b, c, i] = sum_k x_pad[b, c, i*stride + k] * windows[c, k], by explicit loops."""
    batch, channels, samples = x.shape
    window = windows.shape[1]
    frames, before = tf_same_padding(samples, window, stride)
    padded = np.zeros((batch, channels, before + samples + window + stride))
    padded[:, :, before:before + samples] = x
    out = np.zeros((batch, channels, frames))
    for i in range(frames):
        out[:, :, i] = np.sum(padded[:, :, i * stride:i * stride + window] * windows[None], axis=-1)
    return out


# ----------------------------------------------------------------------------------------- sPCEN


def python_loop_pcen(energies, alpha, delta, root, smooth, floor):
    batch, frames, channels = energies.shape
    out = np.zeros_like(energies)
    for b in range(batch):
        for c in range(channels):
            smoothed = energies[b, 0, c]
            for t in range(frames):
                if t > 0:
                    smoothed = smooth[c] * energies[b, t, c] + (1 - smooth[c]) * smoothed
                out[b, t, c] = ((energies[b, t, c] / (floor + smoothed) ** alpha[c] + delta[c]) ** (1 / root[c])
                                - delta[c] ** (1 / root[c]))
    return out


@pytest.mark.parametrize("frames", [1, 2, 17, 96])
def test_pcen_equals_its_formula_evaluated_in_a_python_loop(frames):
    energies = RNG.uniform(1e-5, 5.0, (2, frames, 3))
    alpha, delta = RNG.uniform(0, 1, 3), RNG.uniform(0.1, 4, 3)
    root, smooth = RNG.uniform(1, 4, 3), RNG.uniform(0, 1, 3)
    params = PCENParams(*(jnp.asarray(p, jnp.float32) for p in (alpha, delta, root, smooth)))
    got = jitted_pcen(jnp.asarray(energies, jnp.float32), params, 1e-12)
    np.testing.assert_allclose(got, python_loop_pcen(energies, alpha, delta, root, smooth, 1e-12),
                               rtol=2e-5, atol=1e-6)


def test_pcen_smoother_extremes_are_constant_and_identity():
    energies = jnp.asarray(RNG.uniform(0.1, 2.0, (1, 10, 2)), jnp.float32)
    frozen = jax.jit(compression.exponential_moving_average)(energies, jnp.array([0.0, 1.0]))
    np.testing.assert_allclose(frozen[0, :, 0], np.full(10, energies[0, 0, 0]), rtol=1e-6)
    np.testing.assert_allclose(frozen[0, :, 1], energies[0, :, 1], rtol=1e-6)


def test_pcen_with_invalid_raw_params_uses_the_constrained_ones_and_stays_finite():
    energies = RNG.uniform(1e-5, 5.0, (1, 12, 4))
    raw = PCENParams(alpha=jnp.array([1.5, -0.2, 0.5, 0.9]), delta=jnp.array([-1.0, 2.0, 0.0, 1.0]),
                     root=jnp.array([0.5, 2.0, 1.0, 3.0]), smooth=jnp.array([0.1, 1.7, -0.3, 0.2]))
    got = np.asarray(jitted_pcen(jnp.asarray(energies, jnp.float32), raw, 1e-12))
    assert np.all(np.isfinite(got))
    valid = ([1.0, 0.0, 0.5, 0.9], [1e-6, 2.0, 1e-6, 1.0], [1.0, 2.0, 1.0, 3.0], [0.1, 1.0, 0.0, 0.2])
    np.testing.assert_allclose(got, python_loop_pcen(energies, *map(np.array, valid), 1e-12), rtol=2e-5, atol=1e-5)


# ------------------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("impl", ["passes", "matmul"])
@pytest.mark.parametrize("samples", [1, 159, 160, 161, 400, 401, 1000, 1601, 3200])
def test_weighted_pool_equals_a_direct_windowed_sum(samples, impl):
    x = RNG.standard_normal((2, 3, samples))
    windows = RNG.uniform(0, 1, (3, 401))
    got = pooling.weighted_pool(jnp.asarray(x, jnp.float32), jnp.asarray(windows, jnp.float32), 160, impl)
    expected = slow_weighted_pool(x, windows, 160)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", ["passes", "matmul"])
@pytest.mark.parametrize("samples, window, stride", [(1000, 401, 160), (999, 400, 160), (777, 50, 64)])
def test_weighted_pool_equals_xla_same_grouped_strided_conv(samples, window, stride, impl):
    x = jnp.asarray(RNG.standard_normal((2, 3, samples)), jnp.float32)
    windows = jnp.asarray(RNG.uniform(0, 1, (3, window)), jnp.float32)
    conv = lax.conv_general_dilated(x, windows[:, None, :], (stride,), "SAME",
                                    dimension_numbers=("NCW", "OIW", "NCW"), feature_group_count=3,
                                    precision=lax.Precision.HIGHEST)
    np.testing.assert_allclose(pooling.weighted_pool(x, windows, stride, impl), conv, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("samples", [1, 160, 161, 1000, 1601])
def test_max_pool_equals_xla_same_reduce_window(samples):
    x = jnp.asarray(RNG.standard_normal((2, 3, samples)) - 5.0, jnp.float32)  # negative: padding must not win
    expected = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 401), (1, 1, 160), "SAME")
    np.testing.assert_array_equal(pooling.max_pool(x, 401, 160), expected)


def test_lowpass_gradient_matches_the_gradient_of_the_slow_conv():
    x = jnp.asarray(RNG.standard_normal((1, 2, 900)), jnp.float32)
    sigma = jnp.array([0.3, 0.45])
    module = pooling.GaussianLowpass(401, 160)

    def fast(sigma, x):
        return jnp.sum(module.apply({"params": {"sigma": sigma}}, x) ** 2)

    def slow(sigma, x):
        windows = filters.gaussian_lowpass_windows(sigma, 401)
        y = lax.conv_general_dilated(x, windows[:, None, :], (160,), "SAME",
                                     dimension_numbers=("NCW", "OIW", "NCW"), feature_group_count=2,
                                     precision=lax.Precision.HIGHEST)
        return jnp.sum(y ** 2)

    for got, expected in zip(jax.grad(fast, (0, 1))(sigma, x), jax.grad(slow, (0, 1))(sigma, x)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------- frame geometry


@pytest.mark.parametrize("samples", [1, 2, 159, 160, 161, 15359, 15360, 15361, 16000])
def test_same_padding_follows_the_tf_rule(samples):
    frames, before = tf_same_padding(samples, 401, 160)
    assert framing.num_frames(samples, 160) == frames
    assert framing.same_padding(samples, 401, 160)[0] == before


@pytest.mark.parametrize("samples", [15360, 15361, 16001, 15999])
def test_an_impulse_at_a_frame_centre_peaks_in_that_frame(samples):
    centres = framing.same_frame_centres(samples, 401, 160)
    windows = jnp.asarray(np.hanning(401)[None], jnp.float32)
    for i in (0, 3, len(centres) // 2, len(centres) - 1):
        position = int(math.floor(centres[i]))
        if not 0 <= position < samples:
            continue
        impulse = np.zeros((1, 1, samples), np.float32)
        impulse[0, 0, position] = 1.0
        assert int(np.argmax(pooling.weighted_pool(jnp.asarray(impulse), windows, 160)[0, 0])) == i


def test_frame_centres_are_160_i_when_samples_is_one_past_a_multiple_of_the_stride():
    np.testing.assert_array_equal(framing.same_frame_centres(160 * 96 + 1, 401, 160), 160 * np.arange(97))
    np.testing.assert_array_equal(framing.same_frame_centres(160 * 96, 401, 160), 160 * np.arange(96) + 80)


# ---------------------------------------------------------------------------------- filterbanks


@pytest.mark.parametrize("samples, taps", [(3001, 401), (3000, 401), (2048, 400), (1, 401), (300, 401)])
def test_direct_and_fft_filterbanks_agree_with_numpy_correlation(samples, taps):
    x = RNG.standard_normal((2, samples))
    h = RNG.standard_normal((3, taps))
    direct = np.asarray(convolution.filterbank_direct(jnp.asarray(x, jnp.float32), jnp.asarray(h, jnp.float32)))
    fft = np.asarray(convolution.filterbank_fft(jnp.asarray(x, jnp.float32), jnp.asarray(h, jnp.float32)))
    before = (taps - 1) // 2  # 'SAME', stride 1
    expected = np.zeros((2, 3, samples))
    for b in range(2):
        padded = np.concatenate([np.zeros(before), x[b], np.zeros(taps)])
        for c in range(3):
            expected[b, c] = np.correlate(padded, h[c], mode="valid")[:samples]
    scale = np.abs(expected).max()
    np.testing.assert_allclose(direct, expected, atol=2e-5 * scale)
    np.testing.assert_allclose(fft, expected, atol=2e-5 * scale)
    np.testing.assert_allclose(fft, direct, atol=2e-5 * scale)


def test_fft_length_holds_the_linear_convolution():
    assert convolution.fft_length_for(15360, 401) == 16384
    assert convolution.fft_length_for(1, 401) == 512


def test_auto_pooling_impl_is_matmul_on_cpu_only_and_unknown_impl_is_an_error():
    assert pooling.resolve_pooling_impl("auto") == ("matmul" if jax.default_backend() == "cpu" else "passes")
    with pytest.raises(ValueError, match="passes, matmul, auto"):
        pooling.weighted_pool(jnp.ones((1, 1, 10)), jnp.ones((1, 5)), 2, "conv")


def test_auto_filterbank_impl_is_fft_off_tpu_and_unknown_impl_is_an_error():
    assert convolution.resolve_filterbank_impl("auto") == ("direct" if jax.default_backend() == "tpu" else "fft")
    with pytest.raises(ValueError, match="direct, fft, auto"):
        convolution.resolve_filterbank_impl("winograd")
