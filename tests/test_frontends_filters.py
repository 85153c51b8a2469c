"""Pure filter math of leaf_ssl.frontends: impulse responses, mel scale, inits and constraints.

Each expectation is computed independently of the code under test (numpy FFTs, the textbook mel formula
2595 log10(1 + f/700), the stated bounds).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.frontends import constraints, filters, initializers

SAMPLE_RATE = 16000
WINDOW = 401


def textbook_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def textbook_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


@pytest.mark.parametrize("mu, sigma", [(0.3, 20.0), (1.1, 8.0), (2.5, 60.0), (math.pi / 2, 3.0)])
def test_gabor_response_peaks_at_its_centre_frequency(mu, sigma):
    response = np.asarray(filters.gabor_impulse_responses(jnp.array([[mu, sigma]]), WINDOW))[0]
    n_fft = 1 << 14
    magnitude = np.abs(np.fft.fft(response, n_fft))
    peak_frequency = np.argmax(magnitude) * 2 * np.pi / n_fft
    assert abs(peak_frequency - mu) <= 2 * np.pi / n_fft
    # Half-maximum width of a Gaussian with std 1/sigma in frequency: 2 sqrt(2 ln 2) / sigma.
    above_half = np.count_nonzero(magnitude >= magnitude.max() / 2) * 2 * np.pi / n_fft
    assert above_half == pytest.approx(2 * math.sqrt(2 * math.log(2)) / sigma, rel=0.05, abs=4 * np.pi / n_fft)


def test_gabor_impulse_response_is_a_normalised_gaussian_times_a_phasor():
    mu, sigma = 0.7, 12.0
    response = np.asarray(filters.gabor_impulse_responses(jnp.array([[mu, sigma]]), WINDOW))[0]
    t = np.arange(WINDOW) - WINDOW // 2
    expected = np.exp(1j * mu * t) * np.exp(-t ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    np.testing.assert_allclose(response, expected, atol=1e-6)


def test_interleave_real_imag_alternates_parts_per_filter():
    complex_filters = jnp.array([[1 + 2j, 3 + 4j], [5 + 6j, 7 + 8j]], jnp.complex64)
    np.testing.assert_array_equal(filters.interleave_real_imag(complex_filters),
                                  [[1, 3], [2, 4], [5, 7], [6, 8]])


def test_mel_scale_is_htk_and_invertible():
    hz = np.array([0.0, 60.0, 700.0, 1000.0, 7800.0])
    # TF (and this code) use 1127 for 2595 / ln(10) = 1127.0105: equal to 1e-5.
    np.testing.assert_allclose(filters.hz_to_mel(hz), textbook_mel(hz), rtol=1e-5)
    np.testing.assert_allclose(filters.mel_to_hz(filters.hz_to_mel(hz)), hz, atol=1e-9)
    assert filters.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)  # the mel scale's anchor


def test_mel_weight_matrix_triangles_peak_on_mel_spaced_centres():
    n_mels, n_fft = 20, 512
    weights = filters.mel_weight_matrix(n_mels, n_fft, SAMPLE_RATE, 60.0, 7800.0)
    assert weights.shape == (n_fft // 2 + 1, n_mels)
    assert np.all(weights[0] == 0) and np.all(weights >= 0) and np.all(weights <= 1)
    centres_hz = textbook_hz(np.linspace(textbook_mel(60.0), textbook_mel(7800.0), n_mels + 2))[1:-1]
    bin_hz = SAMPLE_RATE / n_fft
    assert np.all(np.abs(np.argmax(weights, axis=0) * bin_hz - centres_hz) <= bin_hz)
    # No weight outside each triangle's edges.
    edges_hz = textbook_hz(np.linspace(textbook_mel(60.0), textbook_mel(7800.0), n_mels + 2))
    bins_hz = np.arange(n_fft // 2 + 1) * bin_hz
    for j in range(n_mels):
        outside = (bins_hz <= edges_hz[j] - 1e-6) | (bins_hz >= edges_hz[j + 2] + 1e-6)
        assert np.all(weights[outside, j] == 0)


def test_windows_match_their_formulas():
    np.testing.assert_allclose(filters.hann_window(401), np.hanning(401), atol=1e-12)  # symmetric, odd
    n = np.arange(400)
    np.testing.assert_allclose(filters.hann_window(400), 0.5 - 0.5 * np.cos(2 * np.pi * n / 400))
    n = np.arange(401)
    np.testing.assert_allclose(filters.hamming_window(401), 0.54 - 0.46 * np.cos(2 * np.pi * n / 401))


def test_gaussian_lowpass_window_is_centred_with_relative_sigma():
    sigma = jnp.array([0.4, 0.1])
    windows = np.asarray(filters.gaussian_lowpass_windows(sigma, WINDOW))
    assert windows.shape == (2, WINDOW)
    assert np.all(np.argmax(windows, axis=1) == 200) and np.allclose(windows[:, 200], 1.0)
    # At t = centre +- sigma * half_width the Gaussian is exp(-1/2).
    offset = int(round(0.1 * 200))
    assert windows[1, 200 + offset] == pytest.approx(math.exp(-0.5), rel=1e-5)
    np.testing.assert_allclose(windows, windows[:, ::-1], rtol=1e-6)


def test_sinc_bandpass_passes_its_band_and_peaks_at_one():
    low, high = 1000.0, 2000.0
    taps = np.asarray(filters.sinc_bandpass_filters(jnp.array([low]), jnp.array([high]), 801, SAMPLE_RATE))[0]
    assert taps.max() == pytest.approx(1.0)
    gain = np.abs(np.fft.rfft(taps * np.hamming(801), 8192))
    freqs = np.fft.rfftfreq(8192, 1 / SAMPLE_RATE)
    in_band = gain[(freqs > 1150) & (freqs < 1850)]
    out_band = gain[(freqs < 700) | (freqs > 2300)]
    assert in_band.min() > 50 * out_band.max()


def test_mel_init_centres_follow_the_mel_scale_and_increase():
    params = initializers.gabor_params_from_mel(40, SAMPLE_RATE, 60.0, 7800.0)
    mu, sigma = params[:, 0], params[:, 1]
    assert np.all(np.diff(mu) > 0)
    centres_hz = textbook_hz(np.linspace(textbook_mel(60.0), textbook_mel(7800.0), 42))[1:-1]
    bin_radians = 2 * np.pi / 512
    np.testing.assert_array_less(np.abs(mu - 2 * np.pi * centres_hz / SAMPLE_RATE), bin_radians + 1e-6)
    # sqrt of a triangle is >= half its peak over 3/4 of its base: FWHM ~ 0.75 (f_{j+2} - f_j).
    edges_hz = textbook_hz(np.linspace(textbook_mel(60.0), textbook_mel(7800.0), 42))
    expected_fwhm_bins = 0.75 * (edges_hz[2:] - edges_hz[:-2]) / (SAMPLE_RATE / 512)
    fwhm_bins = math.sqrt(2 * math.log(2)) * 512 / (np.pi * sigma)
    np.testing.assert_array_less(np.abs(fwhm_bins - expected_fwhm_bins), 2.0 + 0.1 * expected_fwhm_bins)


@pytest.mark.parametrize("scheme", initializers.GABOR_INIT_SCHEMES)
def test_gabor_inits_have_the_right_shape_and_stay_valid_after_constraints(scheme):
    init = initializers.gabor_initializer(scheme, SAMPLE_RATE, 60.0, 7800.0, WINDOW)
    params = init(jax.random.PRNGKey(3), (16, 2), jnp.float32)
    assert params.shape == (16, 2) and params.dtype == jnp.float32
    constrained = np.asarray(constraints.constrain_gabor_params(params, WINDOW))
    sigma_min, sigma_max = constraints.gabor_sigma_bounds(WINDOW)
    assert np.all((constrained[:, 0] >= 0) & (constrained[:, 0] <= np.pi))
    assert np.all((constrained[:, 1] >= sigma_min) & (constrained[:, 1] <= sigma_max))


def test_random_gabor_init_covers_the_allowed_range_sorted_by_centre():
    params = np.asarray(initializers.random_gabor_params(jax.random.PRNGKey(0), 2000, WINDOW))
    mu, sigma = params[:, 0], params[:, 1]
    sigma_min, sigma_max = constraints.gabor_sigma_bounds(WINDOW)
    assert np.all(np.diff(mu) >= 0)
    assert mu.min() >= 0 and mu.max() <= np.pi and mu.min() < 0.01 and mu.max() > np.pi - 0.01
    assert sigma.min() >= sigma_min and sigma.max() <= sigma_max
    assert sigma.min() < sigma_min + 0.01 * sigma_max and sigma.max() > 0.99 * sigma_max
    # Uniform: about half the draws below the midpoint of each range.
    assert abs(np.mean(mu < np.pi / 2) - 0.5) < 0.05
    assert abs(np.mean(sigma < (sigma_min + sigma_max) / 2) - 0.5) < 0.05


def test_sinc_mel_init_gives_contiguous_mel_spaced_bands():
    params = initializers.sinc_params_from_mel(10, SAMPLE_RATE, 50.0, 50.0)
    edges = textbook_hz(np.linspace(textbook_mel(50.0), textbook_mel(SAMPLE_RATE / 2 - 100.0), 11))
    np.testing.assert_allclose(params[:, 0], edges[:-1], rtol=1e-5)
    np.testing.assert_allclose(params[:, 0] + params[:, 1], edges[1:], rtol=1e-5)


def test_random_sinc_init_gives_contiguous_bands_inside_the_span():
    params = np.asarray(initializers.random_sinc_params(jax.random.PRNGKey(0), 32, SAMPLE_RATE, 50.0, 50.0))
    lows, widths = params[:, 0], params[:, 1]
    assert np.all(widths >= 0) and np.all(np.diff(lows) >= 0)
    np.testing.assert_allclose(lows[1:], lows[:-1] + widths[:-1], rtol=1e-5)
    assert lows[0] >= 50.0 and lows[-1] + widths[-1] <= SAMPLE_RATE / 2 - 100.0 + 1e-3


def test_unknown_init_scheme_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mel, random, normal, uniform"):
        initializers.gabor_initializer("xavier", SAMPLE_RATE, 60.0, 7800.0, WINDOW)
    with pytest.raises(ValueError, match="mel, random"):
        initializers.sinc_initializer("normal", SAMPLE_RATE, 50.0, 50.0)


def test_constraints_clip_to_their_stated_bounds():
    ln2 = math.log(2)
    gabor = constraints.constrain_gabor_params(jnp.array([[-1.0, 0.0], [4.0, 1e4], [1.0, 10.0]]), WINDOW)
    np.testing.assert_allclose(gabor, [[0.0, 4 * math.sqrt(2 * ln2) / math.pi],
                                       [math.pi, WINDOW * math.sqrt(2 * ln2) / math.pi],
                                       [1.0, 10.0]], rtol=1e-6)
    np.testing.assert_allclose(constraints.constrain_pooling_sigma(jnp.array([0.0, 0.3, 2.0]), WINDOW),
                               [2.0 / WINDOW, 0.3, 0.5], rtol=1e-6)
    pcen = constraints.constrain_pcen_params(constraints.PCENParams(
        alpha=jnp.array([-0.5, 0.5, 1.5]), delta=jnp.array([-2.0, 0.0, 3.0]),
        root=jnp.array([0.2, 1.0, 3.0]), smooth=jnp.array([-0.1, 0.5, 1.1])))
    np.testing.assert_allclose(pcen.alpha, [0.0, 0.5, 1.0])
    assert np.all(np.asarray(pcen.delta) > 0) and float(pcen.delta[2]) == 3.0
    np.testing.assert_allclose(pcen.root, [1.0, 1.0, 3.0])
    np.testing.assert_allclose(pcen.smooth, [0.0, 0.5, 1.0])


def test_sinc_band_constraint_is_the_reference_parametrisation():
    low, high = constraints.constrain_sinc_bands(jnp.array([[-100.0, 200.0], [7000.0, 5000.0]]),
                                                 SAMPLE_RATE, 50.0, 50.0)
    np.testing.assert_allclose(low, [150.0, 7050.0])
    np.testing.assert_allclose(high, [400.0, SAMPLE_RATE / 2])
