"""Two processes on this machine (2 fake CPU devices each, coordinator on 127.0.0.1) train exactly
like one process with 4 devices fed the same global batches; stop together when one of them is
signalled; and their checkpoint resumes in a single process.

The reference run (tests/train_as_one_process.py) concatenates the two processes' data streams
in one process, so any difference in losses or parameters comes from the multi-process path:
global batch assembly, collectives across processes, checkpoints written by two processes.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leaf_ssl.data.records import write_shards
from leaf_ssl.inference.frozen_model import load_frozen_model

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

REPO = Path(__file__).resolve().parent.parent
TOTAL_STEPS = 4


def _env(devices: int | None = None) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    flags = "--xla_backend_optimization_level=0"
    env["XLA_FLAGS"] = flags if devices is None else f"--xla_force_host_platform_device_count={devices} {flags}"
    return env


def _config_flags(shards: Path, workdir: Path) -> list[str]:
    return ["--config", str(REPO / "configs/tiny.py"), "--workdir", str(workdir),
            f"--config.data.train_shards={shards}", f"--config.train.total_steps={TOTAL_STEPS}",
            "--config.train.log_every_steps=1", "--config.train.stop_check_every_steps=1"]


def _losses(workdir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = [record["step"] for record in records]
    assert len(steps) == len(set(steps)), f"a step was logged twice (by two processes?): {steps}"
    return {record["step"]: record["loss"] for record in records}


def _run_single_process_reference(shards: Path, workdir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "tests/train_as_one_process.py"), "--emulated_processes", "2",
               *_config_flags(shards, workdir)]
    return subprocess.run(command, cwd=REPO, env=_env(devices=4), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("multiprocess_shards")
    rng = np.random.default_rng(0)
    clips = [(f"clip{i}", (0.1 * rng.standard_normal(6000 + 97 * i)).astype(np.float32), []) for i in range(40)]
    write_shards(clips, out, "pretrain", num_shards=4)
    return out


def test_two_processes_stop_together_and_match_one_process(shards, tmp_path):
    two_processes = tmp_path / "two_processes"
    command = ["bash", str(REPO / "launch/local_multiprocess.sh"), "2", sys.executable, "-m", "leaf_ssl.train",
               *_config_flags(shards, two_processes)]
    launcher = subprocess.Popen(command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    output = []
    signalled = False
    for line in launcher.stdout:
        output.append(line)
        if not signalled and line.startswith("[p0]") and "new run in" in line:
            # Both processes are past start-up (creating the state is a joint computation) and
            # compiling the first step: SIGTERM to process 1 only; process 0 must stop with it.
            process_1 = subprocess.run(["pgrep", "-f", f"workdir {two_processes} .*--process_id 1"],
                                       capture_output=True, text=True).stdout.split()
            assert len(process_1) == 1, process_1
            os.kill(int(process_1[0]), signal.SIGTERM)
            signalled = True
    log = "".join(output)
    assert launcher.wait(timeout=600) == 75, log
    assert signalled, log
    assert "[p1]" in log and "SIGTERM received: saved step" in log
    assert "a stop request on another process received: saved step" in log
    assert "step 1/4" in log
    assert not [line for line in output if line.startswith("[p1] I") and "train.py" in line]  # warnings only
    stopped_at = max(_losses(two_processes))
    assert 1 <= stopped_at < TOTAL_STEPS

    # The 2-process checkpoint resumes in one process (4 devices), which finishes the run...
    resumed = _run_single_process_reference(shards, two_processes)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {stopped_at} of {TOTAL_STEPS}" in resumed.stderr

    # ...exactly as one process fed the same global batches from the start.
    reference = tmp_path / "one_process"
    result = _run_single_process_reference(shards, reference)
    assert result.returncode == 0, result.stderr[-3000:]
    expected, got = _losses(reference), _losses(two_processes)
    assert sorted(got) == sorted(expected) == list(range(1, TOTAL_STEPS + 1))
    np.testing.assert_allclose([got[s] for s in sorted(got)], [expected[s] for s in sorted(got)], rtol=1e-5)
    final, final_reference = load_frozen_model(str(two_processes)), load_frozen_model(str(reference))
    assert final.step == final_reference.step == TOTAL_STEPS
    flat, flat_reference = (np.concatenate([np.ravel(leaf) for leaf in _leaves(model.variables)])
                            for model in (final, final_reference))
    # The cross-process all-reduce adds in another order than the in-process one, and Adam turns
    # a gradient that is ~0 on both sides into a +-learning-rate step of either sign; so a few
    # parameters may differ by up to the summed learning rates, the rest agree to rounding.
    agree = np.isclose(flat, flat_reference, rtol=1e-4, atol=1e-6)
    assert agree.mean() > 0.98, f"{(~agree).sum()} of {agree.size} parameters differ"
    learning_rates = [json.loads(line)["learning_rate"] for line in (reference / "metrics.jsonl").open()]
    assert np.max(np.abs(flat - flat_reference)) <= 2 * sum(learning_rates)


def _leaves(tree) -> list[np.ndarray]:
    import jax
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]
