"""The probe end to end on the tiny model: a checkpoint trained here, the untrained floor,
frozen-model guarantees, caching, and checkpoint errors."""
import hashlib
import json
import math
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from leaf_ssl.inference.features import make_embed_fn
from leaf_ssl.cli import probe as probe_command
from leaf_ssl.evaluation import probe
from leaf_ssl.training.checkpointing import CheckpointError
from leaf_ssl.data import records
from leaf_ssl.inference import frozen_model
from leaf_ssl.evaluation import evaluators, linear, tasks
from leaf_ssl.training import loop
from tests.tensorboard_events import read_events
from tests.probe_fixtures import write_tone_task
from tests.tiny_config import CONFIGS, tiny_config
from tests.cli_exits import assert_exits

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

# tiny data: more epochs than the paper's 50, and exactly those (no step floor) to keep the suite fast
FAST_RECIPE = linear.ProbeRecipe(epochs=300, batch_size=64, min_steps=0)


@pytest.fixture(scope="module")
def tone_task(tmp_path_factory):
    return tasks.folder_task(write_tone_task(tmp_path_factory.mktemp("tones") / "tones"))


@pytest.fixture(scope="module")
def trained_run(tone_task, tmp_path_factory):
    """A tiny LEAF model pretrained with COLA for 6 steps on the tone task's train audio (checkpoints 3, 6)."""
    root = tmp_path_factory.mktemp("tone_run")
    clips = list(tone_task.clips("train", tasks.SkipLog()))
    records.write_shards(((clip.id, clip.waveform, ()) for clip in clips), root / "shards", "pretrain", 2)
    config = tiny_config("leaf")
    config.data.train_shards = str(root / "shards")
    config.train.total_steps = 6
    config.train.checkpoint_every_steps = 3
    loop.run(config, root / "run")
    return root / "run"


def _tree_bytes(variables) -> list[bytes]:
    return [np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(variables)]


def _folder_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def test_probe_cli_on_a_trained_checkpoint_writes_results_and_caches(trained_run, tone_task, tmp_path, capsys):
    before = _folder_digest(trained_run)
    argv = ["--ckpt", str(trained_run), "--task", tone_task.spec, "--workdir", str(tmp_path), "--seeds", "2",
            "--epochs", "300", "--batch", "64"]
    probe_command.main(argv)
    result = json.loads((tmp_path / "tones.json").read_text())
    run_id = json.loads((trained_run / "run.json").read_text())["run_id"]
    assert result["model"] | {"checkpoint": None} == {"frontend": "leaf", "init": "mel", "training": "self-supervised",
                                                      "encoder": "efficientnet_tiny", "checkpoint": None, "step": 6,
                                                      "batch_norm": "as saved", "features": "encoder",
                                                      "run_id": run_id, "seed": 0, "evaluator": "linear"}
    assert result["metric"] == "accuracy" and len(result["per_seed"]) == 2
    assert result["mean"] == pytest.approx(np.mean(result["per_seed"]))
    assert result["mean"] > 1 / 3, "better than chance on three tone classes"
    # 24 train and 12 test clips of 0.5-2.3 s, cut into the run's 0.32 s training crops: 2 to 8 segments each
    assert result["recipe"]["segment_seconds"] == pytest.approx(0.32)
    steps_per_epoch = math.ceil(result["counts"]["train"]["segments"] / 64)
    assert result["recipe"]["epochs"] == max(300, math.ceil(2000 / steps_per_epoch)), "the step floor's epochs"
    assert result["counts"]["train"]["clips"] == 24 and result["counts"]["test"]["clips"] == 12
    assert 2 * 24 <= result["counts"]["train"]["segments"] <= 8 * 24
    assert "accuracy" in (tmp_path / "tones.md").read_text() and "accuracy" in capsys.readouterr().out
    assert not result["embedding"]["from_cache"]
    assert _folder_digest(trained_run) == before, "a probe leaves the run's files alone unless asked"
    # same checkpoint, same task: embeddings come from the cache, scores repeat exactly; asked to, the
    # probe puts the score beside the run's training curves, at the checkpoint's step
    probe_command.main([*argv, "--tensorboard"])
    again = json.loads((tmp_path / "tones.json").read_text())
    assert again["embedding"]["from_cache"] and again["per_seed"] == result["per_seed"]
    scalars, _, _ = read_events(trained_run / "tensorboard")
    assert scalars["probe/tones/accuracy"] == {6: pytest.approx(result["mean"])}
    assert scalars["probe/tones/accuracy_std"] == {6: pytest.approx(result["std"])}


def test_one_call_probes_several_tasks_like_separate_calls(trained_run, tone_task, tmp_path, capsys):
    copy = tmp_path / "tones_copy"
    shutil.copytree(tone_task.spec.removeprefix("folder:"), copy)
    common = ["--ckpt", str(trained_run), "--seeds", "1", "--epochs", "300", "--batch", "64", "--min_steps", "0"]
    # the bad last task stops the call before any work
    assert_exits(capsys, 2, "nowhere", probe_command.main,
                 [*common, "--task", tone_task.spec, "--task", "folder:/nowhere", "--workdir", str(tmp_path / "both")])
    assert not (tmp_path / "both").exists()
    probe_command.main([*common, "--task", tone_task.spec, "--task", f"folder:{copy}", "--workdir", str(tmp_path / "both")])
    probe_command.main([*common, "--task", f"folder:{copy}", "--workdir", str(tmp_path / "alone")])
    together = json.loads((tmp_path / "both" / "tones_copy.json").read_text())
    alone = json.loads((tmp_path / "alone" / "tones_copy.json").read_text())
    assert together["per_seed"] == alone["per_seed"]
    assert json.loads((tmp_path / "both" / "tones.json").read_text())["task"]["name"] == "tones"


def test_frozen_model_is_frozen_and_in_inference_mode(trained_run, tone_task, tmp_path):
    frozen = frozen_model.load_frozen_model(str(trained_run))
    params_before, stats_before = _tree_bytes(frozen.variables["params"]), _tree_bytes(frozen.variables["batch_stats"])
    assert stats_before, "the tiny EfficientNet has BatchNorm statistics"
    probe.run_probe(frozen, tone_task, tmp_path, evaluator=evaluators.Linear(seeds=1, recipe=FAST_RECIPE), progress=False)
    assert _tree_bytes(frozen.variables["params"]) == params_before
    assert _tree_bytes(frozen.variables["batch_stats"]) == stats_before
    # restored again from disk: still the same bits
    assert _tree_bytes(frozen_model.load_frozen_model(str(trained_run)).variables) == _tree_bytes(frozen.variables)
    # inference-mode BatchNorm: a segment's embedding does not depend on the rest of its batch
    embed = make_embed_fn(frozen)
    rng = np.random.default_rng(0)
    batch = rng.normal(scale=0.1, size=(4, 16000)).astype(np.float32)
    other = batch.copy()
    other[1:] = rng.normal(scale=0.5, size=(3, 16000))
    np.testing.assert_array_equal(np.asarray(embed(batch))[0], np.asarray(embed(other))[0])


@pytest.fixture(scope="module")
def supervised_tone_run(tone_task, tmp_path_factory):
    """The tiny LEAF model trained with the tone labels (the supervised baseline) for 30 steps."""
    root = tmp_path_factory.mktemp("supervised_tone_run")
    clips = list(tone_task.clips("train", tasks.SkipLog()))
    records.write_shards(((clip.id, clip.waveform, clip.labels) for clip in clips), root / "task", "train", 2)
    (root / "task" / "task.json").write_text(json.dumps({"name": "tones", "classes": tone_task.classes}))
    config = tiny_config("leaf,supervised")
    config.supervised.task_dir = str(root / "task")
    config.encoder.bn_momentum = 0.9  # 30 steps: running averages must forget their initial values
    config.model.freq_masks = config.model.time_masks = 0
    config.train.total_steps = 30
    config.train.log_every_steps = config.train.checkpoint_every_steps = 30
    loop.run(config, root / "run")
    return root / "run"


def test_trained_checkpoint_against_its_untrained_floor(supervised_tone_run, tone_task, tmp_path):
    """A model trained here on the task's labels and its floor (`random:<run>`) are probed on
    exactly the same clips, both well above chance, with different embeddings.

    That the trained model beats the floor is not asserted: measured here, the untrained tiny
    model already separates these tones (11 of 12 test clips), and 30-40 CPU steps (train
    accuracy about 40%) tie or lose against it."""
    trained = probe.run_probe(frozen_model.load_frozen_model(str(supervised_tone_run)), tone_task,
                              tmp_path / "trained", evaluator=evaluators.Linear(seeds=2, recipe=FAST_RECIPE), progress=False)
    floor = probe.run_probe(frozen_model.load_frozen_model(f"random:{supervised_tone_run}"), tone_task,
                            tmp_path / "floor", evaluator=evaluators.Linear(seeds=2, recipe=FAST_RECIPE), progress=False)
    assert trained["model"]["training"] == "supervised" and floor["model"]["training"] == "untrained"
    assert trained["model"]["step"] == 30 and floor["model"]["step"] == 0
    assert trained["counts"] == floor["counts"]
    assert trained["mean"] > 0.6 and floor["mean"] > 0.6  # chance: 1/3
    assert trained["embedding"]["cache"] != floor["embedding"]["cache"]


def test_checkpoint_given_as_a_relative_path_restores(trained_run, monkeypatch):
    monkeypatch.chdir(trained_run.parent)
    frozen = frozen_model.load_frozen_model(trained_run.name)
    assert frozen.step == 6 and frozen.source == str(trained_run / "checkpoints" / "6")


def test_random_floor_is_the_runs_initial_state(trained_run):
    """random:<config> = the variables a run of that config starts from (same seed, same key)."""
    from leaf_ssl.training import trainer
    from leaf_ssl.model import build
    from leaf_ssl.training import optim
    config = tiny_config("leaf")
    floor = frozen_model.load_frozen_model(f"random:{CONFIGS / 'tiny.py'}:leaf")
    model = build.build_model(config)
    optimizer, _ = optim.build_optimizer(config, model, floor.variables["params"], total_steps=4, warmup_steps=0)
    state = trainer.create_train_state(model, optimizer, seed=config.seed, crop_samples=build.crop_samples(config),
                                       mesh=trainer.make_mesh())
    assert _tree_bytes(state.params) == _tree_bytes(floor.variables["params"])


def test_a_class_without_test_clips_is_named_in_the_result(tmp_path, caplog):
    root = write_tone_task(tmp_path / "tones", train_per_class=3, test_per_class=1)
    shutil.rmtree(root / "test" / "high")
    frozen = frozen_model.load_frozen_model(f"random:{CONFIGS / 'tiny.py'}:mel")
    result = probe.run_probe(frozen, tasks.resolve_task(f"folder:{root}"), tmp_path / "out",
                             evaluator=evaluators.Linear(seeds=1, recipe=FAST_RECIPE), progress=False)
    assert result["task"]["classes_without_test_clips"] == ["high"]
    assert "no test clip of: high" in (tmp_path / "out" / "tones.md").read_text()
    assert "1 of 3 classes have no test clip" in caplog.text


@pytest.mark.parametrize("frontend", ["mel", "sincnet_plus"])
def test_probe_runs_on_other_frontends(frontend, tone_task, tmp_path):
    frozen = frozen_model.load_frozen_model(f"random:{CONFIGS / 'tiny.py'}:{frontend}")
    result = probe.run_probe(frozen, tone_task, tmp_path, evaluator=evaluators.Linear(seeds=1, recipe=FAST_RECIPE), progress=False)
    assert result["model"]["frontend"] == frontend and 0 <= result["mean"] <= 1


def test_missing_and_empty_checkpoint_paths_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        frozen_model.load_frozen_model(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        frozen_model.load_frozen_model(str(tmp_path))
    with pytest.raises(CheckpointError, match="config file .* does not exist"):
        frozen_model.load_frozen_model("random:configs/nonexistent.py")


def test_checkpoint_of_another_architecture_is_refused(trained_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(trained_run, other)
    for meta_file in (other / "checkpoints").glob("*/meta/metadata"):
        meta = json.loads(meta_file.read_text())
        meta["config"]["frontend"]["n_filters"] = 12
        meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"another architecture.*\[8\].*\[12\]|another architecture.*\[12\].*\[8\]"):
        frozen_model.load_frozen_model(str(other))


def test_unreadable_latest_step_falls_back_to_the_previous(trained_run, tmp_path, caplog):
    damaged = tmp_path / "damaged"
    shutil.copytree(trained_run, damaged)
    for data_file in (damaged / "checkpoints" / "6" / "state").rglob("*"):
        if data_file.is_file() and data_file.parent.name == "d":
            data_file.write_bytes(b"")
    frozen = frozen_model.load_frozen_model(str(damaged / "checkpoints"))
    assert frozen.step == 3 and "checkpoints/6" in caplog.text and "previous" in caplog.text
    with pytest.raises(CheckpointError, match="unreadable"):  # a step named explicitly does not fall back
        frozen_model.load_frozen_model(str(damaged / "checkpoints" / "6"))
    shutil.rmtree(damaged / "checkpoints" / "3" / "state")
    with pytest.raises(CheckpointError, match="no readable checkpoint|no checkpoint"):
        frozen_model.load_frozen_model(str(damaged))
