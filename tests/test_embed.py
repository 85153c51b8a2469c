"""leaf_ssl.embed and leaf_ssl.load: files of any rate and channel count embed exactly as the model does
on the resampled waveform; outputs mirror input paths; bad files are counted, never fatal."""
import copy
import itertools
import json
from fractions import Fraction

import jax
import numpy as np
import pytest
import scipy.signal
import soundfile

import leaf_ssl
from leaf_ssl.cli import embed as embed_command
from leaf_ssl.inference import files, windows
from leaf_ssl.inference.frozen_model import load_frozen_model
from tests.test_analyze import TINY, save_checkpoint

HOP_MS = 250  # frame hop of these tests: few windows per file


def write_inputs(root):
    """Two files named x.wav in different folders (8 kHz mono, 44.1 kHz stereo), a short flac, a corrupt
    file, an empty wav and a text file."""
    rng = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    soundfile.write(root / "a" / "x.wav", rng.normal(0, 0.1, 20000).astype(np.float32), 8000)  # 2.5 s
    soundfile.write(root / "b" / "x.wav", rng.normal(0, 0.1, (57330, 2)).astype(np.float32), 44100)  # 1.3 s
    soundfile.write(root / "b" / "short.flac", rng.normal(0, 0.1, 6400).astype(np.float32), 16000)  # 0.4 s
    (root / "b" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    soundfile.write(root / "empty.wav", np.zeros(0, np.float32), 16000)
    (root / "notes.txt").write_text("not audio")
    return root


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    """A tiny LEAF run at step 5 (its untrained variables, saved as train.py saves them)."""
    frozen = load_frozen_model(f"random:{TINY}:leaf")
    variables = copy.deepcopy(jax.tree.map(np.asarray, frozen.variables))
    return save_checkpoint(tmp_path_factory.mktemp("run"), frozen.config, variables, step=5)


@pytest.fixture(scope="module")
def cli_run(checkpoint_dir, tmp_path_factory):
    inputs = write_inputs(tmp_path_factory.mktemp("inputs") / "sounds")
    out = tmp_path_factory.mktemp("embeddings")
    embed_command.main(["--ckpt", str(checkpoint_dir), str(inputs), "--out", str(out), "--frames", "--hop_ms", str(HOP_MS),
                "--batch", "4"])
    return inputs, out, json.loads((out / files.REPORT_NAME).read_text())


@pytest.fixture(scope="module")
def reference(checkpoint_dir):
    """The model applied to one window at a time, and audio read and resampled here with scipy."""
    frozen = load_frozen_model(str(checkpoint_dir))
    encode = jax.jit(lambda window: frozen.model.apply(frozen.variables, window[None], train=False,
                                                       method="encode")[0])

    def read_16k(path):
        samples, rate = soundfile.read(path, dtype="float64", always_2d=True)
        ratio = Fraction(16000, rate)
        return scipy.signal.resample_poly(samples.mean(axis=1), ratio.numerator, ratio.denominator)

    # Every window is scaled to unit L2 norm first, as training crops are.
    unit = lambda window: np.asarray(window, np.float64) / max(np.linalg.norm(window), 1e-6)
    return read_16k, lambda window: np.asarray(encode(unit(window).astype(np.float32)))


def expected_segment_starts(samples: int, window: int) -> list[int]:
    """Whole windows, then one more window ending at the clip's end if a tail is left."""
    starts = [index * window for index in range(max(1, samples // window))]
    return starts + [samples - window] if samples > window and samples % window else starts


def window_samples(checkpoint_dir) -> int:
    """The checkpoint's training crop (tiny config: 0.32 s), the length of every embedded window."""
    return round(load_frozen_model(str(checkpoint_dir)).config.data.crop_seconds * 16000)


def test_outputs_mirror_input_paths_and_bad_files_are_counted(cli_run):
    inputs, out, report = cli_run
    names = sorted(str(path.relative_to(out)) for path in out.rglob("*.npy"))
    assert names == ["a/x.wav.frames.npy", "a/x.wav.npy", "a/x.wav.timestamps.npy",
                     "b/short.flac.frames.npy", "b/short.flac.npy", "b/short.flac.timestamps.npy",
                     "b/x.wav.frames.npy", "b/x.wav.npy", "b/x.wav.timestamps.npy"]
    assert report["counts"] == {"files": 5, "embedded": 3, "skipped": 2, "passed_over_not_audio": 1}
    reasons = {entry["path"]: entry["reason"] for entry in report["skipped"]}
    assert reasons[str(inputs / "empty.wav")] == "empty"
    assert reasons[str(inputs / "b" / "corrupt.wav")].startswith("unreadable")
    by_output = {entry["output"]: entry for entry in report["embedded"]}
    # 2.5 s = 40,000 samples: 7 windows of 5,120 and one more ending at the clip's end
    assert by_output["a/x.wav.npy"] | {"path": None} == {"path": None, "output": "a/x.wav.npy", "seconds": 2.5,
                                                          "segments": 8, "frames": 11}
    assert report["step"] == 5 and report["frames"]["hop_seconds"] == 0.25
    assert report["frames"]["window_seconds"] == pytest.approx(0.32)


@pytest.mark.parametrize("name", ["a/x.wav", "b/x.wav", "b/short.flac"])
def test_clip_embedding_is_the_mean_over_segments_of_the_resampled_audio(cli_run, reference, checkpoint_dir, name):
    inputs, out, report = cli_run
    read_16k, encode = reference
    window = window_samples(checkpoint_dir)
    waveform = read_16k(inputs / name)
    padded = np.pad(waveform, (0, max(0, window - waveform.size)))
    expected = np.mean([encode(padded[start:start + window])
                        for start in expected_segment_starts(waveform.size, window)], 0)
    clip = np.load(out / f"{name}.npy")
    assert clip.shape == (report["embedding_dim"],) and clip.dtype == np.float32
    np.testing.assert_allclose(clip, expected, rtol=1e-4, atol=1e-5)


def test_frame_embeddings_are_windows_centred_on_their_timestamps(cli_run, reference, checkpoint_dir):
    inputs, out, _ = cli_run
    read_16k, encode = reference
    half = window_samples(checkpoint_dir) // 2
    waveform = read_16k(inputs / "a" / "x.wav")  # 40,000 samples at 16 kHz: frames at 0, 0.25, ..., 2.5 s
    frames, timestamps = np.load(out / "a/x.wav.frames.npy"), np.load(out / "a/x.wav.timestamps.npy")
    assert frames.shape == (11, 320) and frames.dtype == np.float32
    np.testing.assert_allclose(timestamps, np.arange(11) * 0.25)
    for k in (0, 4, 10):
        centre = k * 4000
        window = np.array([waveform[i] if 0 <= i < waveform.size else 0.0 for i in range(centre - half, centre + half)])
        np.testing.assert_allclose(frames[k], encode(window), rtol=1e-4, atol=1e-5)


def test_load_embed_equals_the_cli_output(cli_run, checkpoint_dir):
    inputs, out, _ = cli_run
    model = leaf_ssl.load(str(checkpoint_dir))
    assert model.step == 5 and model.config.frontend.name == "leaf" and model.embedding_dim == 320
    assert model.window_samples == window_samples(checkpoint_dir) == 5120
    stereo, rate = soundfile.read(inputs / "b" / "x.wav", dtype="float32")
    np.testing.assert_allclose(model.embed(stereo, rate), np.load(out / "b/x.wav.npy"), rtol=1e-5, atol=1e-6)
    frames, seconds = model.frames(stereo, rate, hop_seconds=HOP_MS / 1000)
    np.testing.assert_allclose(frames, np.load(out / "b/x.wav.frames.npy"), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seconds, np.load(out / "b/x.wav.timestamps.npy"))
    assert model.filters().n_filters == 8
    with pytest.raises(ValueError, match="more channels than samples"):
        model.embed(stereo.T, rate)


def test_batching_keeps_each_jobs_rows_in_order():
    """Jobs of 1, 5, 2 and 7 windows through batches of 3: every job gets exactly its own rows back."""
    def fake_embed(batch):  # row -> (its first sample, its sum): identifies the window
        return np.stack([batch[:, 0], batch.sum(axis=1)], axis=1)

    waveforms = [np.arange(n * 10, dtype=np.float32) + 1000 * job for job, n in enumerate([1, 5, 2, 7])]
    jobs = [(job, windows.Windows(waveform, np.arange(0, waveform.size, 10), 10)) for job, waveform in enumerate(waveforms)]
    results = list(windows.embed_windows(fake_embed, jobs, batch_size=3, max_in_flight=1))
    assert [key for key, _ in results] == [0, 1, 2, 3]
    for (job, rows), waveform in zip(results, waveforms):
        expected = waveform.reshape(-1, 10)
        np.testing.assert_array_equal(rows, np.stack([expected[:, 0], expected.sum(axis=1)], axis=1))


def test_non_finite_features_are_refused_naming_the_job():
    def broken_embed(batch):  # a model whose damaged variables give NaN from the second batch on
        out = batch[:, :2].copy()
        if batch[0, 0] >= 3000:
            out[0, 0] = np.nan
        return out

    waveforms = [np.arange(n * 10, dtype=np.float32) + 1000 * job for job, n in enumerate([2, 2, 2, 2])]
    jobs = [(f"clip{job}", windows.Windows(w, np.arange(0, w.size, 10), 10)) for job, w in enumerate(waveforms)]
    results = windows.embed_windows(broken_embed, jobs, batch_size=2, max_in_flight=0)
    assert [key for key, _ in itertools.islice(results, 3)] == ["clip0", "clip1", "clip2"]
    with pytest.raises(windows.NonFiniteFeatures, match="1 non-finite values for the batch that starts with job 'clip3'"):
        next(results)


def test_window_geometry():
    waveform = np.arange(1, 40001, dtype=np.float32)  # sample i holds i + 1
    segments = windows.segment_windows(waveform, 16000)
    assert list(segments.starts) == [0, 16000, 24000]
    np.testing.assert_array_equal(segments.rows(2, 3)[0], waveform[24000:])
    short = windows.segment_windows(waveform[:100], 16000)
    np.testing.assert_array_equal(short.rows(0, 1)[0], np.r_[waveform[:100], np.zeros(15900)])
    frames, seconds = windows.frame_windows(waveform, 16000, hop_seconds=0.25)
    np.testing.assert_allclose(seconds, np.arange(11) * 0.25)
    rows = frames.rows(0, 11)
    assert rows.shape == (11, 16000)
    # window k holds samples k*4000 - 8000 .. k*4000 + 7999 (sample i holds i + 1), zeros outside the clip
    np.testing.assert_array_equal(rows[4], waveform[8000:24000])
    np.testing.assert_array_equal(rows[0], np.r_[np.zeros(8000), waveform[:8000]])
    np.testing.assert_array_equal(rows[10], np.r_[waveform[32000:], np.zeros(8000)])


def test_cli_errors_name_the_problem(tmp_path, capsys):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    for argv, message in (([str(tmp_path / "missing.wav")], "missing.wav does not exist"),
                          ([str(tmp_path / "texts")], "no audio files found")):
        with pytest.raises(SystemExit) as exit_info:
            embed_command.main(["--ckpt", f"random:{TINY}:leaf", "--out", str(tmp_path / "out"), *argv])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    soundfile.write(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(SystemExit) as exit_info:
        embed_command.main(["--ckpt", str(tmp_path / "no_run"), "--out", str(tmp_path / "out"), str(tmp_path / "a.wav")])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_frontend_features_from_python_and_the_cli(checkpoint_dir, reference, tmp_path):
    read_16k, _ = reference
    inputs = write_inputs(tmp_path / "sounds")
    embed_command.main(["--ckpt", str(checkpoint_dir), str(inputs), "--out", str(tmp_path / "out"),
                        "--features", "frontend"])
    report = json.loads((tmp_path / "out" / files.REPORT_NAME).read_text())
    assert report["features"] == "frontend" and report["counts"]["embedded"] == 3
    model = leaf_ssl.load(str(checkpoint_dir))
    for name in ("a/x.wav", "b/x.wav", "b/short.flac"):
        written = np.load(tmp_path / "out" / f"{name}.frontend.npy")
        seconds = np.load(tmp_path / "out" / f"{name}.frontend_seconds.npy")
        expected, expected_seconds = model.features(read_16k(inputs / name), 16000)
        assert written.shape == (len(seconds), 8) == expected.shape  # 10 ms frames, tiny LEAF's 8 filters
        np.testing.assert_allclose(written, expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(seconds, expected_seconds)
    assert not list((tmp_path / "out").rglob("x.wav.npy")), "no encoder embedding with --features frontend"


@pytest.mark.parametrize("frontend", ["leaf", "mel", "sincnet"])
def test_frontend_frame_times_locate_a_click_and_loudness_is_normalised(frontend):
    model = leaf_ssl.load(f"random:{TINY}:{frontend}")
    waveform = np.random.default_rng(0).normal(0, 1e-4, 16000).astype(np.float32)
    waveform[9_000] = 0.5  # a click at 562.5 ms in faint noise
    features, seconds = model.features(waveform, 16000)
    assert np.all(np.diff(seconds) == pytest.approx(0.01))
    energy = np.exp(features).sum(axis=1) if frontend == "mel" else features.sum(axis=1)
    assert abs(seconds[np.argmax(energy)] - 9_000 / 16000) <= 0.01, "the loudest frame is centred on the click"
    quieter, _ = model.features(waveform * 0.25, 16000)
    np.testing.assert_allclose(quieter, features, rtol=1e-4, atol=1e-4)
