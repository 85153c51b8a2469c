"""Preemption, non-finite steps and their diagnosis, on the tiny config and the tiny corpus."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from leaf_ssl.model import build
from leaf_ssl.training import diagnostics, loop, preemption, trainer, workdir_lock
from leaf_ssl.training.batches import input_batches
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

REPO = Path(__file__).resolve().parent.parent
STEPS = 14


def _config(corpus, **train):
    config = tiny_config("leaf")
    config.data.train_shards = str(corpus / "pretrain")
    config.train.update({"total_steps": STEPS, "checkpoint_every_steps": STEPS, "log_every_steps": 2, **train})
    return config


def _params_at(workdir: Path, step: int):
    return ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")["params"]


def _poisoned_from(first_bad_step: int, last_bad_step: int):
    """The loop's input with a NaN sample in the batches of 0-based steps [first, last]."""
    def batches(config, *, start_batch, **options):
        for step, batch in enumerate(input_batches(config, start_batch=start_batch, **options), start_batch):
            if first_bad_step <= step <= last_bad_step:
                batch = dict(batch, anchor=np.array(batch["anchor"]))
                batch["anchor"][0, 7] = np.nan
            yield batch
    return batches


def test_one_nan_batch_is_skipped_counted_and_training_goes_on(tiny_corpus, tmp_path):
    history = loop.run(_config(tiny_corpus, total_steps=6), tmp_path / "run", batches=_poisoned_from(3, 3))
    assert [h["skipped"] for h in history] == [0, 1, 0]
    assert all(np.isfinite(h["loss"]) for h in history if h["skipped"] == 0)
    state = ocp.StandardCheckpointer().restore(tmp_path / "run" / "checkpoints" / "6" / "state")
    assert int(state["skipped_steps"]) == 1 and int(state["step"]) == 6


def test_repeated_nan_batches_stop_the_run_naming_the_cause(tiny_corpus, tmp_path):
    workdir = tmp_path / "run"
    config = _config(tiny_corpus, total_steps=20, checkpoint_every_steps=2, max_consecutive_nonfinite=3)
    with pytest.raises(preemption.NonFiniteTraining, match=r"4 consecutive non-finite steps up to step 6 .*"
                                                           r"input batch\['anchor'\] holds NaN.*"
                                                           r"the state is that of step 2, the last whose update"):
        loop.run(config, workdir, batches=_poisoned_from(2, 10**6))
    assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]
    good = _params_at(workdir, 2)
    jax.tree.map(np.testing.assert_array_equal, _params_at(workdir, 4), good)
    jax.tree.map(lambda leaf: np.testing.assert_equal(np.isfinite(leaf).all(), True), good)


def test_diagnosis_names_the_first_non_finite_activation():
    config = tiny_config("leaf")
    model = build.build_model(config, data_parallel=False)
    objective = build.train_objective(config, data_parallel=False)
    crop = build.crop_samples(config)
    fresh_variables = lambda: jax.tree.map(np.array, trainer.init_variables(model, jax.random.key(0), crop))
    variables = fresh_variables()
    variables["params"]["projection"]["kernel"][3, 2] = np.inf
    rng = np.random.default_rng(0)
    batch = {"anchor": rng.standard_normal((4, crop)).astype(np.float32), "positive": rng.standard_normal((4, crop)).astype(np.float32)}
    message = diagnostics.describe_first_nonfinite(model, objective, variables, batch, jax.random.key(0))
    assert message == "variables['params']['projection']['kernel'] holds Inf"
    variables = fresh_variables()
    batch["positive"][1] *= 1e30  # finite, but its energy overflows inside the frontend
    message = diagnostics.describe_first_nonfinite(model, objective, variables, batch, jax.random.key(0))
    assert message.startswith("activation ['frontend']"), message


def test_interrupted_every_way_the_resumed_run_ends_bit_identical(tiny_corpus, tmp_path):
    """SIGKILL inside a save, SIGTERM after new progress (the run saves the step it reached and exits
    75), then SIGKILL at a random moment (a step, a log line or a save), resuming each time: the final
    state equals an uninterrupted run's and metrics.jsonl records each step once. While the first
    trainer runs, a second one on its workdir is refused at once, naming it; each resumed run after a
    SIGKILL takes over the lock its killed predecessor left."""
    steps = 8
    config = _config(tiny_corpus, total_steps=steps, checkpoint_every_steps=3, log_every_steps=1, keep_checkpoints=2)
    reference = tmp_path / "reference"
    loop.run(config, reference)
    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "leaf_ssl.train", "--config", str(REPO / "configs/tiny.py"),
               "--workdir", str(interrupted), f"--config.data.train_shards={tiny_corpus / 'pretrain'}",
               f"--config.train.total_steps={steps}", "--config.train.checkpoint_every_steps=3",
               "--config.train.log_every_steps=1", "--config.train.keep_checkpoints=2"]
    rng = np.random.default_rng(17)
    def progressed(workdir, saved, logged, started):  # this process logged a step beyond what was saved
        metrics = workdir / "metrics.jsonl"
        return metrics.exists() and metrics.stat().st_mtime > started and _logged(workdir) > logged
    interruptions = [(_saving, signal.SIGKILL), (progressed, signal.SIGTERM), (progressed, signal.SIGKILL)]
    stderrs = []
    for run in range(len(interruptions) + 1):
        saved, logged, started = _committed(interrupted), max(_committed(interrupted), default=0), time.time()
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if run == len(interruptions):
            stderrs.append(process.communicate(timeout=600)[1])
            assert process.returncode == 0, stderrs[-1][-3000:]
            break
        condition, sent = interruptions[run]
        deadline = time.time() + 300
        while not condition(interrupted, saved, logged, started):
            assert process.poll() is None and time.time() < deadline, process.communicate()[1][-3000:]
            time.sleep(0.005)
        if run == 0:
            with pytest.raises(workdir_lock.WorkdirLocked, match=rf"in use by another run \(host \S+, pid {process.pid},"):
                loop.run(config, interrupted)
        elif sent == signal.SIGKILL:
            time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(sent)
        stderrs.append(process.communicate(timeout=300)[1])
        if sent == signal.SIGTERM:
            assert process.returncode == preemption.EXIT_PREEMPTED, stderrs[-1][-3000:]
            reached = max(_committed(interrupted))
            assert reached > logged and f"saved step {reached}" in stderrs[-1], stderrs[-1][-3000:]
    assert all("taking over the stale lock" in stderrs[run] for run in (1, 3)), stderrs[-1][-3000:]
    assert "taking over the stale lock" not in stderrs[2], "a preempted run releases its lock"
    jax.tree.map(np.testing.assert_array_equal, _params_at(interrupted, steps), _params_at(reference, steps))
    recorded = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert recorded == list(range(1, steps + 1))
    assert not (interrupted / workdir_lock.LOCK_FILE).exists(), "the finished run released its lock"


def _logged(workdir: Path) -> int:
    """The last step in metrics.jsonl (0 before the first)."""
    metrics = workdir / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.exists() else []
    try:
        return json.loads(lines[-1])["step"] if lines else 0
    except (ValueError, KeyError):  # a line being written
        return 0


def _committed(workdir: Path) -> set[int]:
    folder = workdir / "checkpoints"
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.exists() else set()


def _saving(workdir: Path, saved: set[int], logged: int, started: float) -> bool:
    """An orbax save is under way: its temporary step folder exists."""
    folder = workdir / "checkpoints"
    return folder.exists() and any("tmp" in p.name for p in folder.iterdir())
