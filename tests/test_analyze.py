"""leaf_ssl.analyze: filter parameters -> Hz and ms against closed forms computed here, hand-set
filters reported exactly, and the command line's figures, JSON and summary."""
import copy
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile

from leaf_ssl.cli import analyze as analyze_command
from leaf_ssl.frontends import inspect
from leaf_ssl.training import checkpointing
from leaf_ssl.frontends import filters, make_frontend
from leaf_ssl.inference.frozen_model import load_frozen_model
from tests.tiny_config import CONFIGS
from tests.cli_exits import assert_exits

SAMPLE_RATE = 16000
TINY = CONFIGS / "tiny.py"
# Hand-set LEAF filters of the tiny config (8 filters, 401 taps), deliberately not in frequency order.
HAND_CENTRES_HZ = np.array([900.0, 150.0, 2500.0, 400.0, 7000.0, 1500.0, 5000.0, 3500.0])
HAND_SIGMAS = np.array([80.0, 120.0, 40.0, 100.0, 10.0, 60.0, 20.0, 30.0])  # samples, inside the bounds
HAND_POOLING_SIGMAS = np.linspace(0.1, 0.45, 8)
HAND_PCEN = {"alpha": np.linspace(0.5, 0.95, 8), "delta": np.linspace(0.5, 3.0, 8),
             "root": np.linspace(1.5, 4.0, 8), "smooth": np.linspace(0.01, 0.2, 8)}


def hand_set_leaf_params() -> dict:
    return {
        "filterbank": {"gabor": jnp.asarray(np.stack([2 * np.pi * HAND_CENTRES_HZ / SAMPLE_RATE, HAND_SIGMAS], 1),
                                            jnp.float32)},
        "pooling": {"sigma": jnp.asarray(HAND_POOLING_SIGMAS, jnp.float32)},
        "compression": {key: jnp.asarray(value, jnp.float32) for key, value in HAND_PCEN.items()},
    }


def save_checkpoint(workdir: Path, config, variables: dict, step: int) -> Path:
    """Writes `variables` as a training run's checkpoint `workdir/checkpoints/<step>` (format of train.py)."""
    store = checkpointing.CheckpointStore(workdir / "checkpoints", async_save=False)
    meta = {"config": config.to_dict(), "step": step,
            "param_shapes": checkpointing.param_shapes(variables["params"])}
    store.save(step, {"params": variables["params"], "batch_stats": variables["batch_stats"]}, meta)
    store.wait()
    store.close()
    return workdir


@pytest.fixture(scope="module")
def hand_set_checkpoint(tmp_path_factory):
    """A tiny LEAF run at step 5 whose frontend parameters are the hand-set ones above."""
    frozen = load_frozen_model(f"random:{TINY}:leaf")
    variables = copy.deepcopy(jax.tree.map(np.asarray, frozen.variables))
    variables["params"]["frontend"] = hand_set_leaf_params()
    return save_checkpoint(tmp_path_factory.mktemp("hand_set_run"), frozen.config, variables, step=5)


def half_amplitude_crossings(frequencies: np.ndarray, amplitude: np.ndarray) -> tuple[float, float]:
    """Linearly interpolated frequencies where a single-peaked amplitude crosses half its peak."""
    half = amplitude.max() / 2
    above = np.flatnonzero(amplitude >= half)
    first, last = above[0], above[-1]
    lower = np.interp(half, amplitude[[first - 1, first]], frequencies[[first - 1, first]])
    upper = np.interp(half, amplitude[[last + 1, last]], frequencies[[last + 1, last]])
    return lower, upper


@pytest.mark.parametrize("centre_hz, sigma", [(1000.0, 30.0), (3000.0, 8.0), (6000.0, 50.0)])
def test_gabor_centre_and_bandwidth_match_a_numerical_fourier_transform(centre_hz, sigma):
    """A long Gabor filter built here, transformed by a zero-padded FFT: its peak and half-amplitude width."""
    t = np.arange(-2000, 2001)
    mu = 2 * np.pi * centre_hz / SAMPLE_RATE
    taps = np.exp(1j * mu * t) * np.exp(-t ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    spectrum = np.abs(np.fft.fft(taps, 1 << 18))[:1 << 17]
    frequencies = np.arange(1 << 17) * SAMPLE_RATE / (1 << 18)
    lower, upper = half_amplitude_crossings(frequencies, spectrum)
    assert inspect.gabor_centre_hz(mu, SAMPLE_RATE) == pytest.approx(centre_hz)
    assert inspect.gabor_centre_hz(mu, SAMPLE_RATE) == pytest.approx(frequencies[spectrum.argmax()], abs=0.1)
    assert inspect.gabor_bandwidth_hz(sigma, SAMPLE_RATE) == pytest.approx(upper - lower, rel=1e-3)
    # and the DTFT helper agrees with the FFT on a coarse grid
    grid = np.array([centre_hz - 100, centre_hz, centre_hz + 250])
    np.testing.assert_allclose(inspect.dtft_amplitude(taps[None], grid, SAMPLE_RATE)[0],
                               np.exp(-sigma ** 2 * (2 * np.pi * (grid - centre_hz) / SAMPLE_RATE) ** 2 / 2),
                               rtol=1e-6)


def test_leaf_analysis_reports_hand_set_parameters_exactly():
    analysed = inspect.frontend_filters({"name": "leaf", "n_filters": 8}, hand_set_leaf_params())
    np.testing.assert_allclose(analysed.centre_hz, HAND_CENTRES_HZ, rtol=1e-6)
    np.testing.assert_allclose(analysed.bandwidth_hz, math.sqrt(2 * math.log(2)) * SAMPLE_RATE / (np.pi * HAND_SIGMAS),
                               rtol=1e-6)
    # sigma is relative to the half-window (401 - 1) / 2 = 200 samples = 12.5 ms
    np.testing.assert_allclose(analysed.lowpass_std_ms, HAND_POOLING_SIGMAS * 12.5, rtol=1e-6)
    for key, value in HAND_PCEN.items():
        np.testing.assert_allclose(analysed.pcen[key], value, rtol=1e-6)
    assert analysed.learnable and analysed.frontend == "leaf"
    np.testing.assert_array_equal(analysed.order, np.argsort(HAND_CENTRES_HZ))
    # each computed response peaks at its centre, with the closed-form width (of the untruncated filter)
    spacing = analysed.response_hz[1]
    for channel in (0, 3, 5):
        response = analysed.responses[channel]
        assert response.max() == pytest.approx(1.0)
        assert abs(analysed.response_hz[response.argmax()] - HAND_CENTRES_HZ[channel]) <= spacing
        lower, upper = half_amplitude_crossings(analysed.response_hz, response)
        assert upper - lower == pytest.approx(analysed.bandwidth_hz[channel], abs=spacing)  # interpolation error


def test_leaf_analysis_reports_what_the_forward_pass_uses_after_its_constraints():
    params = hand_set_leaf_params()
    params["filterbank"]["gabor"] = params["filterbank"]["gabor"].at[0].set(jnp.array([-0.3, 1e4]))
    params["pooling"]["sigma"] = params["pooling"]["sigma"].at[1].set(2.0)
    params["compression"]["alpha"] = params["compression"]["alpha"].at[2].set(1.5)
    analysed = inspect.frontend_filters({"name": "leaf", "n_filters": 8}, params)
    sigma_max = 401 * math.sqrt(2 * math.log(2)) / math.pi
    assert analysed.centre_hz[0] == 0.0
    assert analysed.bandwidth_hz[0] == pytest.approx(math.sqrt(2 * math.log(2)) * SAMPLE_RATE / (math.pi * sigma_max))
    assert analysed.lowpass_std_ms[1] == pytest.approx(0.5 * 12.5)
    assert analysed.pcen["alpha"][2] == 1.0


def test_every_parameter_past_a_bound_is_named_with_its_channels(capsys):
    """A clipped parameter gets no gradient: the analysis names each one (the hand-set ones are inside)."""
    params = hand_set_leaf_params()
    assert inspect.frontend_filters({"name": "leaf", "n_filters": 8}, params).at_bounds == {}
    params["filterbank"]["gabor"] = params["filterbank"]["gabor"].at[0, 0].set(-0.3).at[6, 1].set(1e4)
    params["pooling"]["sigma"] = params["pooling"]["sigma"].at[1].set(2.0)
    params["compression"]["alpha"] = params["compression"]["alpha"].at[2].set(1.02).at[7].set(-0.1)
    params["compression"]["smooth"] = params["compression"]["smooth"].at[4].set(-0.036)
    params["compression"]["root"] = params["compression"]["root"].at[3].set(0.9)
    analysed = inspect.frontend_filters({"name": "leaf", "n_filters": 8}, params)
    assert analysed.at_bounds == {"gabor.mu": [0], "gabor.sigma": [6], "lowpass.sigma": [1], "pcen.alpha": [2, 7],
                                  "pcen.root": [3], "pcen.smooth": [4]}
    summary = inspect.summarise(analysed)
    assert summary["at_bounds"] == analysed.at_bounds
    assert "pcen.smooth 1 channel(s) [4]" in inspect.format_summary("run", analysed, summary)


def test_sinc_analysis_reports_band_edges_from_the_reference_parametrisation():
    """low = 50 + |p0|, high = min(low + 50 + |p1|, sr / 2); centre the midpoint, width high - low."""
    raw = jnp.array([[100.0, 200.0], [-950.0, 400.0], [7000.0, 5000.0]])
    low, high = np.array([150.0, 1000.0, 7050.0]), np.array([400.0, 1450.0, 8000.0])
    plain = inspect.frontend_filters({"name": "sincnet", "n_filters": 3}, {"filterbank": {"sinc": raw}})
    np.testing.assert_allclose(plain.centre_hz, (low + high) / 2)
    np.testing.assert_allclose(plain.bandwidth_hz, high - low)
    assert plain.lowpass_std_ms is None and plain.pcen is None and "max-pool" in plain.pooling
    # a Hamming-windowed ideal band-pass has half its passband amplitude at its cut-offs
    response = plain.responses[1]
    for cutoff in (1000.0, 1450.0):
        assert np.interp(cutoff, plain.response_hz, response) == pytest.approx(0.5, abs=0.06)
    plus_params = {"filterbank": {"sinc": raw}, "pooling": {"sigma": jnp.full(3, 0.2)},
                   "compression": {key: jnp.asarray(value[:3], jnp.float32) for key, value in HAND_PCEN.items()}}
    plus = inspect.frontend_filters({"name": "sincnet_plus", "n_filters": 3}, plus_params)
    np.testing.assert_allclose(plus.centre_hz, plain.centre_hz)
    np.testing.assert_allclose(plus.lowpass_std_ms, [2.5] * 3, rtol=1e-6)
    np.testing.assert_allclose(plus.pcen["root"], HAND_PCEN["root"][:3], rtol=1e-6)


def test_mel_analysis_reports_the_fixed_triangles():
    analysed = inspect.frontend_filters({"name": "mel", "preset": "leaf"}, {})
    # 40 HTK-mel triangles over 60-7800 Hz; apexes at equally spaced mels, half amplitude 3/4 of a step away
    mel = lambda f: 1127 * math.log(1 + f / 700)
    hz = lambda m: 700 * (math.exp(m / 1127) - 1)
    step = (mel(7800) - mel(60)) / 41
    apexes = [mel(60) + step * (j + 1) for j in range(40)]
    np.testing.assert_allclose(analysed.centre_hz, [hz(m) for m in apexes], rtol=1e-9)
    np.testing.assert_allclose(analysed.bandwidth_hz, [hz(m + 0.75 * step) - hz(m - 0.75 * step) for m in apexes],
                               rtol=1e-9)
    assert not analysed.learnable and analysed.pcen is None and analysed.lowpass_std_ms is None
    np.testing.assert_array_equal(analysed.mel_centre_hz, analysed.centre_hz)
    # the continuous triangles equal the frontend's weight matrix on its FFT bins
    bins = np.linspace(0, SAMPLE_RATE / 2, 257)
    np.testing.assert_allclose(inspect.mel_triangle_amplitudes(bins, 40, 60, 7800).T ** 2,
                               filters.mel_weight_matrix(40, 512, SAMPLE_RATE, 60, 7800), atol=1e-12)
    summary = inspect.summarise(analysed)
    assert summary["moved_fraction"] == 0 and summary["median_bandwidth_ratio"] == pytest.approx(1.0)


def initial_leaf_filters(n_filters: int, init: str = "mel") -> tuple[dict, inspect.FrontendFilters]:
    config = {"name": "leaf", "n_filters": n_filters, "init": init}
    params = make_frontend(config).init(jax.random.key(3), jnp.zeros((1, 800)))["params"]
    return params, inspect.frontend_filters(config, params)


def test_summary_counts_moved_centres_and_coverage():
    params, mel_init = initial_leaf_filters(4)
    assert inspect.summarise(mel_init)["moved_fraction"] == 0.0
    mel_mu = np.asarray(params["filterbank"]["gabor"])[:, 0]
    # centres moved by 0%, 5%, 20% and -20%: two of four beyond 10%, median shift 12.5%
    params["filterbank"]["gabor"] = jnp.asarray(np.stack([mel_mu * [1.0, 1.05, 1.2, 0.8], [20.0] * 4], 1),
                                                jnp.float32)
    summary = inspect.summarise(inspect.frontend_filters({"name": "leaf", "n_filters": 4}, params), 0.1)
    assert summary["moved_fraction"] == 0.5
    assert summary["median_shift"] == pytest.approx(0.125, rel=1e-5)
    # union of [900, 1100], [1000, 1400], [3000, 3100] and [7900, 8000] (clipped at Nyquist): 700 Hz
    assert inspect.band_coverage([1000, 1200, 3050, 8100], [200, 400, 100, 400], 8000) == pytest.approx(700 / 8000)


def test_random_init_is_compared_with_the_mel_init_of_as_many_filters():
    params, analysed = initial_leaf_filters(8, "random")
    _, mel_init = initial_leaf_filters(8, "mel")
    np.testing.assert_array_equal(analysed.mel_centre_hz, mel_init.centre_hz)
    np.testing.assert_array_equal(analysed.mel_bandwidth_hz, mel_init.bandwidth_hz)
    np.testing.assert_allclose(analysed.centre_hz, np.asarray(params["filterbank"]["gabor"])[:, 0] * SAMPLE_RATE
                               / (2 * np.pi), rtol=1e-6)
    assert inspect.summarise(analysed)["moved_fraction"] > 0


def assert_valid_png(path: Path) -> None:
    from matplotlib.image import imread
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pixels = imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500 and pixels.std() > 0.05, f"{path} looks empty"


@pytest.mark.slow
def test_cli_on_a_checkpoint_and_untrained_floors(hand_set_checkpoint, tmp_path, capsys):
    out = tmp_path / "analysis"
    analyze_command.main(["--ckpt", str(hand_set_checkpoint), "--ckpt", f"random:{TINY}:sincnet_plus",
                  "--ckpt", f"random:{TINY}:mel", "--out", str(out)])
    printed = capsys.readouterr().out
    for label in ("leaf (mel init), self-supervised, step 5", "sincnet_plus (mel init), untrained", "mel, untrained"):
        assert label in printed
    assert "40 fixed mel filters" in printed and "centres moved > 10% from mel" in printed
    report = json.loads((out / "analysis.json").read_text())
    assert report["figures"] == ["centre_frequencies.png", "bandwidths.png", "centre_histogram.png",
                                 "frequency_responses.png", "lowpass.png", "pcen.png"]
    for name in report["figures"]:
        assert_valid_png(out / name)
    leaf = report["checkpoints"][0]
    assert leaf["step"] == 5 and leaf["model"]["training"] == "self-supervised"
    order = np.argsort(HAND_CENTRES_HZ)
    assert leaf["filters"]["channel"] == order.tolist()
    np.testing.assert_allclose(leaf["filters"]["centre_hz"], HAND_CENTRES_HZ[order], rtol=1e-6)
    np.testing.assert_allclose(leaf["filters"]["lowpass_std_ms"], HAND_POOLING_SIGMAS[order] * 12.5, rtol=1e-6)
    np.testing.assert_allclose(leaf["filters"]["pcen"]["delta"], HAND_PCEN["delta"][order], rtol=1e-6)
    assert sum(leaf["histogram"]["counts"]) == 8 and leaf["histogram"]["edges_hz"][-1] == 8000
    assert leaf["summary"]["centre_range_hz"] == pytest.approx([150, 7000], rel=1e-6)
    assert report["checkpoints"][2]["summary"]["learnable"] is False


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert_exits(capsys, 2, "does not exist", analyze_command.main,
                 ["--ckpt", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert_exits(capsys, 2, "2 --label for 1 --ckpt", analyze_command.main,
                 ["--ckpt", str(tmp_path), "--label", "a", "--label", "b", "--out", str(tmp_path / "out")])


def test_cli_draws_each_frontend_s_output_for_a_clip(hand_set_checkpoint, tmp_path, capsys):
    clip = tmp_path / "tone.wav"
    soundfile.write(clip, (0.3 * np.sin(2 * np.pi * 440 * np.arange(12000) / 16000)).astype(np.float32), 16000)
    out = tmp_path / "analysis"
    analyze_command.main(["--ckpt", str(hand_set_checkpoint), "--ckpt", f"random:{TINY}:mel", "--out", str(out),
                          "--clip", str(clip)])
    assert json.loads((out / "analysis.json").read_text())["figures"][-1] == "frontend_output.png"
    assert_valid_png(out / "frontend_output.png")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    assert_exits(capsys, 2, "bad.wav", analyze_command.main,
                 ["--ckpt", f"random:{TINY}:mel", "--out", str(out), "--clip", str(tmp_path / "bad.wav")])
