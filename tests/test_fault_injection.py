"""Fault injection: a run killed (SIGKILL) at random points and its checkpoints damaged at random between
attempts (bytes flipped in one step or in all of them, a step's meta/ deleted), then run to the end. Asserts
that no metrics line ever written is lost (it is in metrics.jsonl or moved to previous_runs/), that the run
finishes, and that no reader ever writes a non-finite embedding. The points and damages come from a seeded
generator, so a failure repeats."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from etils import epath

from leaf_ssl.training import checkpointing
from tests.checkpoint_damage import flip_bytes_in_params

pytestmark = pytest.mark.slow  # trains in subprocesses, killed and restarted

REPO = Path(__file__).resolve().parent.parent
TOTAL_STEPS = 12
DAMAGES = ("none", "flip newest", "flip all", "drop meta")


def _train(workdir: Path, corpus: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "leaf_ssl.train", "--config", "configs/tiny.py", "--workdir", str(workdir),
         f"--config.data.train_shards={corpus / 'pretrain'}", f"--config.train.total_steps={TOTAL_STEPS}",
         "--config.train.checkpoint_every_steps=2", "--config.train.log_every_steps=2",
         "--config.train.keep_checkpoints=3",
         # what is killed and damaged is the run's state, not its input or its TensorBoard: each restart
         # then starts without TensorFlow
         "--config.data.reader=in_memory", "--config.train.tensorboard=False", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _lines_kept(workdir: Path) -> set[str]:
    """Every metrics line the workdir holds, in metrics.jsonl or moved aside."""
    files = [workdir / "metrics.jsonl", *workdir.glob("previous_runs/*/metrics.jsonl")]
    return {line for path in files if path.exists() for line in path.read_text().splitlines() if line.strip()}


def _steps(workdir: Path) -> list[Path]:
    """The workdir's step folders, oldest first."""
    return checkpointing.step_folders(epath.Path(workdir / "checkpoints"))[::-1]


def _damage(workdir: Path, kind: str, rng: random.Random) -> None:
    steps = [Path(step) for step in _steps(workdir)]
    if kind == "none" or not steps:
        return
    if kind == "drop meta":
        shutil.rmtree(rng.choice(steps) / "meta", ignore_errors=True)
        return
    for step in (steps if kind == "flip all" else steps[-1:]):
        try:
            flip_bytes_in_params(step)
        except Exception:  # a torn step (killed mid-save) has no data file whose flip stays silent
            pass


def test_kills_and_damage_lose_no_metrics_line_and_write_no_non_finite_embedding(tiny_corpus, tmp_path):
    rng = random.Random(20261206)
    workdir = tmp_path / "run"
    seen: set[str] = set()
    history = []  # (exit code, steps on disk after it, damage then): what the attempts did, for a failure's message
    start_over = False
    for attempt in range(6):
        before = [step.name for step in _steps(workdir)]
        process = _train(workdir, tiny_corpus, *(["--start_over"] if start_over else []))
        # kill at a random point after the run wrote a new step (compilation comes first)
        deadline, wait_for = time.monotonic() + 600, rng.uniform(0.0, 2.0)
        while process.poll() is None and [s.name for s in _steps(workdir)] == before and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(wait_for)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        start_over = process.returncode == 2 and "--start_over" in stderr
        seen |= _lines_kept(workdir)
        damage = rng.choice(DAMAGES)
        history.append((process.returncode, [step.name for step in _steps(workdir)], damage))
        _damage(workdir, damage, rng)
        assert seen <= _lines_kept(workdir), f"attempt {attempt}: a metrics line was lost ({history})"
    assert sum(code == -signal.SIGKILL for code, _, _ in history) >= 2, f"too few attempts were killed: {history}"
    for _ in range(3):  # to the end: refused only when every checkpoint was unreadable, then --start_over
        finished = _train(workdir, tiny_corpus)
        _, stderr = finished.communicate(timeout=900)
        if finished.returncode == 2 and "--start_over" in stderr:
            finished = _train(workdir, tiny_corpus, "--start_over")
            _, stderr = finished.communicate(timeout=900)
        if finished.returncode == 0:
            break
        assert finished.returncode == 0, (history, stderr[-3000:])
    assert seen <= _lines_kept(workdir), f"a metrics line was lost on the way to the end ({history})"
    print("attempts (exit code, steps on disk, damage):", history)
    final = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert final[-1] == TOTAL_STEPS and final == sorted(set(final)), "each step recorded once"
    clip = tmp_path / "clip.wav"
    soundfile.write(clip, (0.1 * np.random.default_rng(0).normal(size=16000)).astype(np.float32), 16000)
    embedded = subprocess.run([sys.executable, "-m", "leaf_ssl.embed", str(clip), "--ckpt", str(workdir),
                               "--out", str(tmp_path / "embeddings")], cwd=REPO, capture_output=True, text=True,
                              timeout=600)
    written = list((tmp_path / "embeddings").rglob("*.npy"))
    assert all(np.isfinite(np.load(path)).all() for path in written), "a non-finite embedding was written"
    assert embedded.returncode == 0 and written, embedded.stderr[-2000:]
