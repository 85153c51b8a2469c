"""The pretraining entry point end to end on the tiny demo corpus (real audio, 8 fake devices)."""
import contextlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from leaf_ssl.training import checkpointing
from leaf_ssl.model import configuration, validation
from leaf_ssl.inference import frozen_model as frozen_checkpoint
from leaf_ssl.training import loop
from tests.checkpoint_damage import flip_bytes_in_params
from tests.tensorboard_events import finite, read_events
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

REPO = Path(__file__).resolve().parent.parent


def _config(corpus, **train_overrides):
    config = tiny_config("leaf")
    config.data.train_shards = str(corpus / "pretrain")
    for key, value in train_overrides.items():
        config.train[key] = value
    return config


def _final_state_arrays(workdir: Path, step: int):
    """The params of checkpoint `step`, read back without building any model."""
    import orbax.checkpoint as ocp
    restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
    return restored["params"]


@pytest.fixture(scope="module")
def finished_run(tiny_corpus, tmp_path_factory):
    """configs/tiny.py as it stands: 4 steps, checkpoints at 2 and 4, logs at 2 and 4.

    Tests that rerun this config (resume, fallback, the CLI) compile the very same step, which
    the session's persistent compilation cache then serves.
    """
    workdir = tmp_path_factory.mktemp("run")
    return workdir, loop.run(_config(tiny_corpus), workdir)


def test_run_writes_checkpoints_config_and_metrics(finished_run):
    workdir, history = finished_run
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["frontend"]["name"] == "leaf" and saved["train"]["total_steps"] == 4
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4] == [h["step"] for h in history]
    run_id = json.loads((workdir / "run.json").read_text())["run_id"]
    assert [checkpointing.read_meta(workdir / "checkpoints" / str(step))["run_id"] for step in (2, 4)] == [run_id] * 2
    assert all(np.isfinite(line["loss"]) for line in lines)


def test_tensorboard_holds_the_config_the_curves_and_the_frontend_pictures(finished_run):
    workdir, history = finished_run
    scalars, images, hparams = read_events(workdir / "tensorboard")
    saved = json.loads((workdir / "config.json").read_text())
    assert hparams["train.batch_size"] == saved["train"]["batch_size"] and hparams["frontend.name"] == "leaf"
    assert hparams["data.train_shards"] == saved["data"]["train_shards"]
    for key in ("loss", "accuracy", "learning_rate", "grad_norm", "skipped", "steps_per_second"):
        assert scalars[key] == {h["step"]: pytest.approx(h[key]) for h in history if key in h}, key
    assert set(scalars["skipped"].values()) == {0.0}
    # filters drawn at the start and at the end (4 steps: fewer than the 20 log lines between)
    for tag in ("filters/centre_frequencies", "filters/bandwidths", "filters/frequency_responses", "frontend/chirp"):
        assert sorted(images[tag]) == [0, 4], tag
    n_filters, frames = saved["frontend"]["n_filters"], 32  # the tiny crop: 0.32 s at 10 ms per frame
    assert images["frontend/chirp"][4] == (n_filters, frames)
    # the mel-initialised LEAF starts on the mel scale: no filter has moved yet at step 0
    assert scalars["filters/moved_fraction"][0] == 0.0 and scalars["filters/median_shift"][0] < 1e-3
    assert finite(scalars["filters/coverage"].values())
    assert scalars["filters/channels_at_a_bound"][0] == 0.0  # the initial parameters lie inside their bounds


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(finished_run, tiny_corpus, tmp_path):
    workdir, _ = finished_run
    interrupted = tmp_path / "interrupted"
    shutil.copytree(workdir, interrupted)
    shutil.rmtree(interrupted / "checkpoints" / "4")  # as if stopped after the step-2 save
    history = loop.run(_config(tiny_corpus), interrupted)
    assert [h["step"] for h in history] == [4], "the resumed run starts after step 2"
    expected, resumed = _final_state_arrays(workdir, 4), _final_state_arrays(interrupted, 4)
    jax.tree.map(np.testing.assert_array_equal, resumed, expected)
    metrics = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert metrics == [2, 4], "the step logged before the interruption is replaced, not repeated"
    # a copied and resumed run is the same run: its readers key caches and rows by this id
    assert checkpointing.read_meta(interrupted / "checkpoints" / "4")["run_id"] == \
        checkpointing.read_meta(workdir / "checkpoints" / "4")["run_id"]
    frozen = frozen_checkpoint.load_frozen_model(str(interrupted))
    assert frozen.run_id == json.loads((workdir / "run.json").read_text())["run_id"]


def test_workdir_of_another_architecture_is_refused(finished_run, tiny_corpus, tmp_path):
    workdir, _ = finished_run
    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    config = _config(tiny_corpus)
    config.frontend.n_filters = 12
    with pytest.raises(checkpointing.CheckpointError, match=r"another architecture: parameter frontend/\S+ has shape \[8\] in the checkpoint but \[12\]"):
        loop.run(config, other)


def test_truncated_latest_checkpoint_falls_back_to_the_previous(finished_run, tiny_corpus, tmp_path):
    workdir, _ = finished_run
    damaged = tmp_path / "damaged"
    shutil.copytree(workdir, damaged)
    for path in (damaged / "checkpoints" / "4" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    history = loop.run(_config(tiny_corpus), damaged)
    assert [h["step"] for h in history] == [4], "resumed from step 2, not from the torn step 4"
    assert list((damaged / "unreadable_checkpoints").iterdir()), "the torn checkpoint is kept aside"


def test_every_checkpoint_unreadable_is_refused_and_nothing_is_lost(finished_run, tiny_corpus, tmp_path):
    workdir, _ = finished_run
    damaged = tmp_path / "damaged"
    shutil.copytree(workdir, damaged)
    curves = (damaged / "metrics.jsonl").read_text()
    events = sorted(p.name for p in (damaged / "tensorboard").rglob("*") if p.is_file())
    for step in (2, 4):
        flip_bytes_in_params(damaged / "checkpoints" / str(step))
    for attempt in range(2):  # the second finds the steps already set aside, and refuses too
        with pytest.raises(checkpointing.CheckpointError, match=r"no readable checkpoint .* 2 unreadable .*--start_over"):
            loop.run(_config(tiny_corpus), damaged)
        assert (damaged / "metrics.jsonl").read_text() == curves, attempt
    assert len(list((damaged / "unreadable_checkpoints").iterdir())) == 2
    history = loop.run(_config(tiny_corpus), damaged, start_over=True)
    assert [h["step"] for h in history] == [2, 4], "trained from step 0"
    [aside] = (damaged / "previous_runs").iterdir()
    assert (aside / "metrics.jsonl").read_text() == curves, "the earlier curves are moved, not deleted"
    assert json.loads((damaged / "run.json").read_text())["run_id"] != json.loads((aside / "run.json").read_text())[
        "run_id"], "a run started over is another run"
    assert sorted(p.name for p in (aside / "tensorboard").rglob("*") if p.is_file()) == events


def test_a_resume_from_an_older_step_keeps_a_copy_of_the_curves_it_cuts(finished_run, tiny_corpus, tmp_path):
    workdir, _ = finished_run
    older = tmp_path / "older"
    shutil.copytree(workdir, older)
    curves = (older / "metrics.jsonl").read_text()
    flip_bytes_in_params(older / "checkpoints" / "4")
    loop.run(_config(tiny_corpus), older)  # resumes from step 2 and logs step 4 again
    [aside] = (older / "previous_runs").iterdir()
    assert (aside / "metrics.jsonl").read_text() == curves


def test_loss_decreases_on_real_audio(tiny_corpus, tmp_path):
    config = _config(tiny_corpus, total_steps=40, log_every_steps=10, checkpoint_every_steps=40,
                     base_learning_rate=3e-3)
    history = loop.run(config, tmp_path / "long")
    losses = [h["loss"] for h in history]
    assert losses[-1] < losses[0] - 0.1, f"loss did not fall: {losses}"


def test_missing_data_is_a_clear_error(tmp_path):
    config = tiny_config("leaf")
    config.data.train_shards = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        loop.run(config, tmp_path / "run")


@pytest.mark.parametrize("field, value, message", [
    ("model.negatives", "everywhere", "model.negatives='everywhere' is not valid"),
    ("train.batch_norm", "none", "train.batch_norm"),
    ("train.batch_size", 12, "does not divide over 8 devices"),
    ("train.base_learning_rate", -1.0, "train.base_learning_rate must be > 0"),
    ("model.embedding_dim", 0, "model.embedding_dim must be > 0"),
    ("train.base_learning_rate", float("nan"), "config.train.base_learning_rate=nan is not a finite number"),
    ("train.weight_decay", float("inf"), "config.train.weight_decay=inf is not a finite number"),
    ("data.noise_std", float("-inf"), "config.data.noise_std=-inf is not a finite number"),
    ("frontend.pcen_alpha", float("nan"), "config.frontend.pcen_alpha=nan is not a finite number"),
])
def test_config_validation_names_the_field(field, value, message):
    config = tiny_config("leaf")
    config.data.train_shards = "somewhere"
    section, name = field.split(".")
    with config.unlocked():
        config[section][name] = value
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        validation.validate_config(config, num_devices=8)


def test_cli_overrides_and_bad_keys(tiny_corpus, tmp_path):
    def train(*flags):  # a relative workdir, as users type it
        return subprocess.run([sys.executable, "-m", "leaf_ssl.train", "--config", str(REPO / "configs/tiny.py"),
                               "--workdir", "cli", *flags],
                              capture_output=True, text=True, cwd=tmp_path, timeout=600)

    misspelt = train("--config.train.totl_steps=3")
    assert misspelt.returncode != 0 and "totl_steps" in misspelt.stderr
    bad_frontend = train(f"--config.data.train_shards={tiny_corpus / 'pretrain'}", "--config.frontend.name=leafy")
    assert bad_frontend.returncode != 0 and "leafy" in bad_frontend.stderr and "sincnet" in bad_frontend.stderr
    ok = train(f"--config.data.train_shards={tiny_corpus / 'pretrain'}", "--config.train.keep_checkpoints=1")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "step 4/4" in ok.stderr
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["train"]["keep_checkpoints"] == 1
    assert [p.name for p in (tmp_path / "cli" / "checkpoints").iterdir() if p.name.isdigit()] == ["4"]


def test_readers_skip_a_corrupt_latest_checkpoint(finished_run, tmp_path, caplog):
    """(Training's fallback past it: tests/test_checkpointing.py, through the same store.)"""
    workdir, _ = finished_run
    damaged = tmp_path / "damaged"
    shutil.copytree(workdir, damaged)
    flip_bytes_in_params(damaged / "checkpoints" / "4")
    with caplog.at_level("WARNING"):
        assert frozen_checkpoint.load_frozen_model(str(damaged)).step == 2
    assert "does not match the digest recorded at save" in caplog.text


def test_a_step_rotated_away_while_read_is_no_failure(finished_run, tmp_path, monkeypatch):
    """The trainer saves step 6 and its rotation deletes step 4 while a probe reads step 4."""
    workdir, _ = finished_run
    live = tmp_path / "live"
    shutil.copytree(workdir, live)
    real_restore = checkpointing.restore_step

    def restore_during_rotation(step_dir, *args):
        if step_dir.name == "4":
            shutil.copytree(step_dir, step_dir.parent / "6")
            shutil.rmtree(step_dir)
        return real_restore(step_dir, *args)

    monkeypatch.setattr(checkpointing, "restore_step", restore_during_rotation)
    assert frozen_checkpoint.load_frozen_model(str(live)).step == 6


def test_every_schema_field_is_in_every_config():
    """Any field of the schema can be overridden (--config.x=y) on any config file: each holds it."""
    def paths(config, prefix=""):
        for key, value in config.items():
            yield from paths(value, f"{prefix}{key}.") if hasattr(value, "items") else [f"{prefix}{key}"]

    schema = set(paths(configuration.pretraining_config())) - {p for p in paths(configuration.pretraining_config())
                                                               if p.startswith("frontend.")}
    for spec in ["demo.py", "demo.py:mel", "demo.py:sincnet,random", "tiny.py", "tiny.py:sincnet_plus",
                 "pretrain_leaf.py:random", "pretrain_mel.py", "pretrain_sincnet.py", "supervised_leaf.py",
                 "learning_parity.py"]:
        config = frozen_checkpoint.load_config_spec(str(REPO / "configs" / spec))
        assert schema <= set(paths(config)), (spec, schema - set(paths(config)))
        frontend = config.frontend.name
        for field in configuration.frontend_factory.compute_path_fields(frontend):
            assert field in config.frontend, (spec, field)


def test_command_line_errors_are_one_line(tmp_path):
    def train(*flags):
        result = subprocess.run([sys.executable, "-m", "leaf_ssl.train", "--workdir", str(tmp_path / "run"), *flags],
                                capture_output=True, text=True, cwd=REPO, timeout=600)
        return result.returncode, result.stderr.strip().splitlines()[-1]

    missing = str(tmp_path / "no_shards")
    code, line = train("--config", "configs/demo.py", "--config.encoder.drop_path_rate=0.0",
                       "--config.frontend.pooling_impl=passes", f"--config.data.train_shards={missing}")
    assert code == 2 and "no TFRecord shards found" in line and missing in line, "the overrides were accepted"
    code, line = train("--config", "configs/demo.py:leafy")
    assert code == 2 and line.startswith("error: ") and "frontend='leafy' is not valid" in line
    code, line = train("--config", "configs/tiny.py", "--config.encoder.drop_pth_rate=0.0")
    assert code == 2 and line.startswith("error: no such config field") and "drop_pth_rate" in line
    code, line = train("--config", "configs/tiny.py", "--config.train.base_learning_rate=nan",
                       f"--config.data.train_shards={missing}")
    assert code == 2 and "config.train.base_learning_rate=nan is not a finite number" in line
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    code, line = train("--config", str(broken))
    assert (code, line) == (2, "error: config file failed to load: SyntaxError: invalid syntax (broken.py, line 1)")
    code, line = train("--config", str(tmp_path / "absent.py"))
    assert code == 2 and line.startswith("error: config file: [Errno 2] No such file") and "absent.py" in line
    not_a_folder = tmp_path / "a_file"
    not_a_folder.write_text("a file where the workdir should be")
    code, line = train("--config", "configs/tiny.py", "--workdir", str(not_a_folder))  # the last --workdir counts
    assert (code, line) == (2, f"error: --workdir {not_a_folder} is a file, not a folder")


@contextlib.contextmanager
def _tmpfs(mount_point: Path, options: str):
    """A tmpfs mounted at `mount_point` for the block; skips the test where mounting is not allowed (not root)."""
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """10 MB: a tiny run's checkpoint is about 3 MB, so a few fit and a later one does not (where exactly depends
    on what else the run has written by then)."""
    with _tmpfs(tmp_path / "small_disk", "size=10m") as mount_point:
        yield mount_point


def test_a_read_only_workdir_is_one_line(tiny_corpus, tmp_path):
    with _tmpfs(tmp_path / "read_only", "ro,size=1m") as mount_point:
        result = subprocess.run([sys.executable, "-m", "leaf_ssl.train", "--config", "configs/tiny.py", "--workdir",
                                 str(mount_point / "run"), f"--config.data.train_shards={tiny_corpus / 'pretrain'}"],
                                capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        f"cannot write to --workdir {mount_point / 'run'}: [Errno 30] Read-only file system: '{mount_point / 'run'}'")


def test_a_full_disk_during_a_save_is_one_line_naming_the_safe_step(tiny_corpus, small_disk):
    workdir = small_disk / "run"
    result = subprocess.run([sys.executable, "-m", "leaf_ssl.train", "--config", "configs/tiny.py", "--workdir",
                             str(workdir), f"--config.data.train_shards={tiny_corpus / 'pretrain'}",
                             "--config.train.total_steps=16", "--config.train.keep_checkpoints=8"],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 1, result.stderr[-6000:]
    assert "Traceback" not in result.stderr and "Event loop is closed" not in result.stderr, result.stderr[-6000:]
    last = result.stderr.strip().splitlines()[-1]
    safe = re.search(r"failed: no space left on the device; the newest complete checkpoint is step (\d+): ", last)
    assert safe, last
    restored = _final_state_arrays(workdir, int(safe.group(1)))  # the safe step reads back whole
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(restored))


def test_help_lists_the_training_flags_and_exits_0():
    result = subprocess.run([sys.executable, "-m", "leaf_ssl.train", "--help"], capture_output=True, text=True,
                            cwd=REPO, timeout=600)
    assert result.returncode == 0
    for flag in ("--config", "--workdir", "--distributed", "--coordinator", "--num_processes", "--process_id"):
        assert f"  {flag}:" in result.stdout, flag
