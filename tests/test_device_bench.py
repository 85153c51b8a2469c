"""`launch/device_bench.sh --smoke` on the CPU: the one-call device benchmark runs every section, so that
the first call on an accelerator cannot fail on a typo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from leaf_ssl.bench import peer
from tests.blocked_imports import without

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # compiles a dozen steps and frontends


# What an accelerator machine with JAX and torch but not this package's data stack lacks: the device
# script must not need them (TensorFlow's wheel alone is larger than what such a machine can be sent).
ABSENT_ON_DEVICE = ("tensorflow", "tensorflow_datasets", "soundfile")


def test_smoke_runs_every_section_and_writes_its_rows(tmp_path):
    blocked = without(ABSENT_ON_DEVICE, tmp_path / "absent")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable,
           "PYTHONPATH": os.pathsep.join([blocked, str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
           # one CPU device, as on a one-GPU machine (the suite's 8 fake devices are for sharding tests)
           "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    result = subprocess.run(["bash", str(ROOT / "launch" / "device_bench.sh"), "--smoke"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    report = json.loads((tmp_path / "device_bench.json").read_text())
    assert report["smoke"] and report["failed"] == []
    assert "tensorflow" not in report["environment"]  # it ran without the data stack
    titles = [section["title"] for section in report["sections"]]
    assert len(titles) == 7 and result.stdout.count("\n## ") == 7
    assert all(section["rows"] for section in report["sections"])
    for title in titles:  # each section printed as a markdown table
        assert f"## {title}\n" in result.stdout

    rows = {row["case"] if "part" not in row else row["part"]: row
            for section in report["sections"] for row in section["rows"]}
    for case in ("leaf_fft", "leaf_direct", "mel", "step_leaf_float32", "step_leaf_bfloat16",
                 "step_leaf_bfloat16_pool_passes", "step_leaf_bfloat16_pool_matmul", "step_leaf_bfloat16_remat",
                 "step_leaf_bfloat16_depthwise_shifts",
                 "encoder backward", "whole step"):
        assert case in rows, (case, sorted(rows))
    assert rows["step_leaf_float32"]["crops_per_s"] > 0
    try:  # the step's peer with LEAF is SpeechBrain's Leaf in the torch COLA step: it runs where that loads
        peer.speechbrain_leaf_step(np.zeros((1, 400), np.float32), 8, "cpu", threads=1)
    except peer.PeerUnavailable as error:
        assert "peer_torch_leaf_float32" not in rows
        assert f"peer torch (float32) skipped: {error}" in result.stderr
    else:
        assert rows["peer_torch_leaf_float32"]["crops_per_s"] > 0
        assert rows["step_leaf_float32"]["vs_peer"] == pytest.approx(
            rows["step_leaf_float32"]["crops_per_s"] / rows["peer_torch_leaf_float32"]["crops_per_s"])
