"""BatchNorm re-estimation for probes (leaf_ssl.evaluation.batch_norm): inference mode with the
re-estimated statistics computes what training mode computes on the calibration batch; moments
pool exactly over batches; the probe CLI labels, caches and tabulates the variant apart."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.cli import probe as probe_command
from leaf_ssl.model import build
from leaf_ssl.training.batches import input_batches
from leaf_ssl.evaluation import probe, tables
from leaf_ssl.data import records
from leaf_ssl.evaluation import batch_norm
from leaf_ssl.inference import frozen_model
from leaf_ssl.inference.features import l2_normalize
from tests.probe_fixtures import write_tone_task
from tests.tiny_config import tiny_config
from tests.cli_exits import assert_exits

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

BATCH = 8


@pytest.fixture(scope="module")
def floor_run(tmp_path_factory):
    """A run workdir holding only config.json (the `random:` floor of it) and shards of noise bursts:
    loud and quiet clips, so that batch moments are far from BatchNorm's initial (0, 1)."""
    root = tmp_path_factory.mktemp("floor")
    rng = np.random.default_rng(0)
    clips = [(f"clip{index}", (rng.normal(size=8000) * rng.uniform(0.01, 0.5)).astype(np.float32), ())
             for index in range(64)]
    records.write_shards(clips, root / "shards", "pretrain", 2)
    config = tiny_config("leaf")
    config.data.train_shards = str(root / "shards")
    config.data.shuffle_buffer = 4
    (root / "run").mkdir()
    (root / "run" / "config.json").write_text(json.dumps(config.to_dict()))
    return root / "run"


def _calibration_crops(frozen, num_batches, batch_size):
    """The crops `reestimate` reads: the first batches of the config's anchor stream."""
    stream = input_batches(frozen.config, per_process_batch=batch_size,
                                      crop_samples=frozen.window_samples, start_batch=0)
    return np.concatenate([next(stream)["anchor"] for _ in range(num_batches)])


def test_inference_with_reestimated_statistics_is_training_mode_on_that_batch(floor_run):
    frozen = frozen_model.load_frozen_model(f"random:{floor_run}")
    calibrated = batch_norm.reestimate(frozen, num_batches=1, batch_size=BATCH)
    crops = jnp.asarray(_calibration_crops(frozen, 1, BATCH))

    # training mode (batch moments, no drop-path) of the same weights, computed without batch_norm.py
    config = frozen.config.copy_and_resolve_references()
    config.encoder.drop_path_rate = 0.0
    model = build.build_model(config, data_parallel=False)
    training_mode, _ = model.apply(frozen.variables, l2_normalize(crops), train=True, method="encode",
                                   mutable=["batch_stats"])
    inference = calibrated.model.apply(calibrated.variables, l2_normalize(crops), train=False, method="encode")
    np.testing.assert_allclose(inference, training_mode, rtol=2e-3, atol=2e-4)
    # ...which the initial statistics (BatchNorm as identity) do not compute
    as_initialised = frozen.model.apply(frozen.variables, l2_normalize(crops), train=False, method="encode")
    assert not np.allclose(as_initialised, training_mode, rtol=0.1, atol=0.01)
    assert calibrated.batch_norm.startswith("re-estimated: 1 x 8 crops")
    assert frozen.batch_norm == frozen_model.BATCH_NORM_AS_SAVED
    assert jax.tree.structure(calibrated.variables) == jax.tree.structure(frozen.variables)


def test_moments_pool_exactly_over_batches(floor_run):
    """The stem BatchNorm's input does not depend on any other BatchNorm, so its statistics from two
    batches of 8 must equal those of one batch of the same 16 crops, and its mean must be the plain
    mean of the stem convolution's output over batch, time and frequency."""
    frozen = frozen_model.load_frozen_model(f"random:{floor_run}")
    two = batch_norm.reestimate(frozen, num_batches=2, batch_size=BATCH).variables["batch_stats"]["encoder"]
    one = batch_norm.reestimate(frozen, num_batches=1, batch_size=2 * BATCH).variables["batch_stats"]["encoder"]
    stem_two, stem_one = two["stem_bn"], one["stem_bn"]
    np.testing.assert_allclose(stem_two["mean"], stem_one["mean"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stem_two["var"], stem_one["var"], rtol=1e-3, atol=1e-6)

    crops = jnp.asarray(_calibration_crops(frozen, 2, BATCH))
    _, state = frozen.model.apply(frozen.variables, l2_normalize(crops), train=False, method="encode",
                                  capture_intermediates=True, mutable=["intermediates"])
    stem = np.asarray(state["intermediates"]["encoder"]["stem_conv"]["__call__"][0], np.float64)
    np.testing.assert_allclose(stem_two["mean"], stem.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stem_two["var"], stem.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-6)


def test_probe_cli_reports_and_tabulates_the_reestimated_floor(floor_run, tmp_path):
    task = f"folder:{write_tone_task(tmp_path / 'tones', train_per_class=4, test_per_class=2)}"
    common = ["--task", task, "--seeds", "1", "--epochs", "5", "--min_steps", "0", "--workdir", str(tmp_path / "probes")]
    probe_command.main(["--ckpt", f"random:{floor_run}", *common])
    plain = json.loads((tmp_path / "probes" / "tones.json").read_text())
    probe_command.main(["--ckpt", f"random:{floor_run}", "--bn_batches", "2", "--bn_batch", "4",
                "--workdir", str(tmp_path / "probes_bn"), *common[:-2]])
    reestimated = json.loads((tmp_path / "probes_bn" / "tones.json").read_text())

    assert plain["model"]["training"] == "untrained" and plain["model"]["batch_norm"] == "as saved"
    assert reestimated["model"]["training"] == "untrained"
    assert reestimated["model"]["batch_norm"].startswith("re-estimated: 2 x 4 crops")
    assert "BatchNorm statistics: re-estimated" in (tmp_path / "probes_bn" / "tones.md").read_text()
    assert plain["embedding"]["cache"] != reestimated["embedding"]["cache"]
    _, rows = tables.assemble([plain, reestimated])
    # without --workdir the two floors default to different folders
    floor = frozen_model.FrozenModel(model=None, variables={}, config=None, source=f"random:{floor_run}", step=0)
    assert probe.default_workdir(floor, bn_reestimated=True) != probe.default_workdir(floor)
    assert [row["training"] for row in rows] == ["untrained", "untrained, BN re-estimated"]


def test_missing_calibration_data_is_a_clear_error(floor_run, tmp_path, capsys):
    task = f"folder:{write_tone_task(tmp_path / 'tones', train_per_class=1, test_per_class=1)}"
    assert_exits(capsys, 1, r"cannot re-estimate BatchNorm.*nowhere", probe_command.main,
                 ["--ckpt", f"random:{floor_run}", "--task", task, "--bn_batches", "1",
                  "--bn_data", str(tmp_path / "nowhere"), "--workdir", str(tmp_path / "probes")])
    with pytest.raises(ValueError, match="positive"):
        batch_norm.reestimate(frozen_model.load_frozen_model(f"random:{floor_run}"), num_batches=0, batch_size=4)
