"""`launch/device_prepare.sh` then `launch/device_tables.sh --smoke` on the CPU, as on the accelerator machine:
TensorFlow and tensorflow_datasets not installed, soundfile only from the carried wheels. The grid of
configs/grids/device.py (the gpu grid's configs and overrides) trains, probes each run and its floor on the
Opus corpus, and writes the table with its claims and throughput, so the first device call cannot fail on a
typo."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.blocked_imports import shadowed, without

pytestmark = pytest.mark.slow  # downloads wheels, packs a corpus, trains and probes: the full suite only

REPO = Path(__file__).resolve().parent.parent


def test_prepare_then_smoke_runs_the_device_grid_without_tensorflow(tiny_corpus, tmp_path):
    payload, out = tmp_path / "payload", tmp_path / "out"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    prepared = subprocess.run(["bash", str(REPO / "launch" / "device_prepare.sh")], cwd=REPO, capture_output=True,
                              text=True, timeout=900, env=dict(os.environ, PAYLOAD=str(payload), CORPUS=str(tiny_corpus),
                                                               PYTHON=sys.executable, PYTHON_VERSION=version))
    assert prepared.returncode == 0, prepared.stdout[-3000:] + prepared.stderr[-3000:]
    assert sorted(p.name.split("-")[0] for p in (payload / "wheels").glob("*.whl")) == [
        "cffi", "ml_collections", "pycparser", "soundfile"]
    assert (payload / "corpus" / "corpus.json").is_file()

    blocked = os.pathsep.join([without(("tensorflow", "tensorflow_datasets"), tmp_path / "absent"),
                               shadowed(("soundfile",), tmp_path / "shadowed")])
    # one variant of the three keeps the suite short; the others differ only in their config file
    completed = subprocess.run(
        ["bash", str(REPO / "launch" / "device_tables.sh"), "--smoke", "--grid.variants=leaf_random"], cwd=REPO,
        capture_output=True, text=True, timeout=900,
        env=dict(os.environ, PAYLOAD=str(payload), OUT=str(out), PYTHON=sys.executable, PYTHONPATH=blocked))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = (out / "device_tables" / "table.md").read_text().splitlines()
    assert table[0] == ("| frontend | init | training | instrument (accuracy) | keyword (accuracy) | "
                        "language (accuracy) | average |")
    rows = [line.split(" | ")[:3] for line in table[2:table.index("")]]
    assert rows == [["| leaf", "random", "untrained"], ["| leaf", "random", "self-supervised"]]
    assert all(line.split(" | ")[-1] != " |" for line in table[2:4]), "every row has all three tasks"
    assert "## Claims" in table and "## Training throughput" in table
    [throughput] = [line for line in table if line.startswith("| leaf_random_s0_ssl | 2 | ")]
    assert float(throughput.split(" | ")[2]) > 0
    run = out / "device_tables" / "leaf_random_s0_ssl"
    config = json.loads((run / "config.json").read_text())
    assert config["frontend"]["name"] == "leaf" and config["frontend"]["init"] == "random"
    assert config["data"]["reader"] == "in_memory" and config["data"]["train_shards"] == f"{payload}/corpus/pretrain"
    assert "decoded into memory" in completed.stderr
    assert not config["train"]["tensorboard"] and not (run / "analysis").exists()
