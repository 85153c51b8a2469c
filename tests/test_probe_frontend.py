"""`--features frontend`: the probe reads each frontend channel's mean and std over a segment's
frames, without the encoder."""
import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from leaf_ssl.inference.features import make_embed_fn, pooled_frontend
from leaf_ssl.cli import probe as probe_command
from leaf_ssl.evaluation import probe, tables
from leaf_ssl.frontends import make_frontend
from leaf_ssl.inference import frozen_model
from tests.probe_fixtures import write_tone_task
from tests.tiny_config import CONFIGS, tiny_config
from tests.cli_exits import assert_exits

FLOOR = f"random:{CONFIGS / 'tiny.py'}:leaf"


def test_pooled_frontend_against_a_loop():
    features = np.random.default_rng(0).normal(size=(3, 7, 5)).astype(np.float32)
    expected = np.zeros((3, 10))
    for example in range(3):
        for channel in range(5):
            values = [float(features[example, frame, channel]) for frame in range(7)]
            mean = sum(values) / len(values)
            expected[example, channel] = mean
            expected[example, 5 + channel] = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    np.testing.assert_allclose(np.asarray(pooled_frontend(features)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_frontend_features_are_the_standalone_frontend_pooled_and_ignore_the_encoder():
    frozen = frozen_model.load_frozen_model(FLOOR)
    waveforms = np.random.default_rng(1).normal(scale=0.2, size=(4, 5120)).astype(np.float32)
    features = np.asarray(make_embed_fn(frozen, "frontend")(waveforms))

    # the same frontend built on its own from the config, fed L2-normalised rows by numpy
    frontend = make_frontend(tiny_config("leaf").frontend)
    unit = waveforms / np.linalg.norm(waveforms, axis=1, keepdims=True)
    frames = np.asarray(frontend.apply({"params": frozen.variables["params"]["frontend"]}, unit))
    expected = np.concatenate([frames.mean(axis=1), frames.std(axis=1)], axis=1)
    assert features.shape == (4, 2 * 8)  # tiny.py: 8 filters
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-6)

    # scrambling every encoder parameter changes the encoder's embedding, not the frontend's
    params = dict(frozen.variables["params"])
    params["encoder"] = jax.tree.map(lambda leaf: leaf[::-1] * -2.0 + 0.1, params["encoder"])
    scrambled = frozen_model.FrozenModel(frozen.model, {**frozen.variables, "params": params}, frozen.config,
                                       frozen.source, frozen.step)
    np.testing.assert_array_equal(np.asarray(make_embed_fn(scrambled, "frontend")(waveforms)), features)
    assert not np.allclose(np.asarray(make_embed_fn(scrambled)(waveforms)),
                           np.asarray(make_embed_fn(frozen)(waveforms)))


def test_unknown_features_are_an_error():
    with pytest.raises(ValueError, match="unknown features 'decoder'"):
        make_embed_fn(frozen_model.load_frozen_model(FLOOR), "decoder")


@pytest.mark.slow
def test_probe_cli_reads_the_frontend_alone_in_its_own_row_and_cache(tmp_path):
    task = f"folder:{write_tone_task(tmp_path / 'tones', train_per_class=6, test_per_class=3)}"
    common = ["--ckpt", FLOOR, "--task", task, "--seeds", "2", "--epochs", "300", "--batch", "32", "--min_steps", "0"]
    probe_command.main([*common, "--workdir", str(tmp_path / "encoder")])
    probe_command.main([*common, "--workdir", str(tmp_path / "frontend"), "--features", "frontend"])
    encoder = json.loads((tmp_path / "encoder" / "tones.json").read_text())
    frontend = json.loads((tmp_path / "frontend" / "tones.json").read_text())

    assert frontend["model"]["training"] == "untrained" and frontend["model"]["features"] == "frontend"
    assert encoder["model"]["training"] == "untrained" and encoder["model"]["features"] == "encoder"
    assert frontend["embedding"]["dim"] == 16 and encoder["embedding"]["dim"] != 16
    assert frontend["embedding"]["cache"] != encoder["embedding"]["cache"]
    assert frontend["counts"] == encoder["counts"]
    # three tones an octave or more apart: the mel-initialised filters' mean energies separate them
    assert frontend["mean"] > 0.9, frontend["per_seed"]
    assert "frontend alone" in (tmp_path / "frontend" / "tones.md").read_text()
    assert "pooled encoder output" in (tmp_path / "encoder" / "tones.md").read_text()
    _, rows = tables.assemble([frontend, encoder])
    assert [row["training"] for row in rows] == ["untrained", "untrained, frontend only"]
    floor = frozen_model.FrozenModel(model=None, variables={}, config=None, source=FLOOR, step=0)
    assert probe.default_workdir(floor, features="frontend") != probe.default_workdir(floor)


def test_default_results_folder_is_outside_the_run(tmp_path):
    run = tmp_path / "runs" / "demo_leaf"
    step = frozen_model.FrozenModel(model=None, variables={}, config=None, source=str(run / "checkpoints" / "240"),
                                    step=240, run_dir=str(run))
    assert probe.default_workdir(step) == Path("probes") / "demo_leaf"
    assert probe.default_workdir(step, bn_reestimated=True, features="encoder") == Path("probes") / "demo_leaf_bn"
    gcs = dataclasses.replace(step, source="gs://bucket/runs/demo_leaf/checkpoints/240", run_dir="gs://bucket/runs/demo_leaf")
    assert probe.default_workdir(gcs) == Path("probes") / "demo_leaf"


def test_the_embedding_cache_is_keyed_by_the_run_not_its_folder(tmp_path):
    from leaf_ssl.evaluation import cache, tasks
    from tests.probe_fixtures import write_tone_task
    from tests.tiny_config import tiny_config
    task = tasks.resolve_task(f"folder:{write_tone_task(tmp_path / 'tones', train_per_class=1, test_per_class=1)}")
    step = frozen_model.FrozenModel(model=None, variables={}, config=tiny_config("mel"), step=240, run_id="3f2a",
                                    source="/a/runs/cosine/checkpoints/240", run_dir="/a/runs/cosine")
    copy = dataclasses.replace(step, source="/b/cosine_copy/checkpoints/240", run_dir="/b/cosine_copy")
    key = lambda frozen: cache.cache_key(frozen, task, segment_samples=5120)
    assert key(copy) == key(step)
    assert key(dataclasses.replace(copy, run_id="9c1d")) != key(step), "another run"
    assert key(dataclasses.replace(copy, step=120)) != key(step), "another step"
    assert key(dataclasses.replace(step, run_id=None)) != key(dataclasses.replace(copy, run_id=None)), \
        "without ids, folders tell runs apart"


def test_batch_norm_reestimation_with_frontend_features_is_refused(tmp_path, capsys):
    assert_exits(capsys, 2, "no effect with --features frontend", probe_command.main,
                 ["--ckpt", FLOOR, "--task", "folder:/nowhere", "--features", "frontend", "--bn_batches", "2"])
