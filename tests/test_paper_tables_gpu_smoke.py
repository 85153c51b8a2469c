"""`launch/paper_tables.sh gpu` at a smoke size on the CPU: the one-GPU reproduction's grid runs
end to end (corpus check, the paper's configs with its overrides, training, probes of each run and
its floor, the filter analysis, the table and its claims), so its first device call cannot fail on a typo."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains and probes three runs: the full suite only

REPO = Path(__file__).resolve().parent.parent
SMOKE_FLAGS = ("--config.encoder.name=efficientnet_tiny --config.data.crop_seconds=0.32 "
               "--config.model.embedding_dim=16 --config.model.freq_mask_width=2 --config.model.time_mask_width=4 "
               "--config.data.shuffle_buffer=64")


def _gpu_grid():
    spec = importlib.util.spec_from_file_location("grid_gpu", REPO / "configs" / "grids" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def test_gpu_preset_trains_probes_and_tables_at_smoke_size(tiny_corpus, tmp_path):
    out = tmp_path / "tables"
    gpu_train_flags = _gpu_grid().train_flags.replace("batch_size=256", "batch_size=8").replace(
        "total_steps=500", "total_steps=2")
    # one variant of the three keeps the suite short; the others differ only in their config file
    completed = subprocess.run(
        ["bash", str(REPO / "launch" / "paper_tables.sh"), "gpu", f"--out={out}", f"--grid.corpus={tiny_corpus}",
         "--grid.variants=leaf_random", "--grid.probe_seeds=1", "--grid.probe_flags=--epochs 1 --min_steps 1",
         f"--grid.train_flags={gpu_train_flags} {SMOKE_FLAGS}"],
        cwd=REPO, env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = (out / "table.md").read_text().splitlines()
    assert table[0] == ("| frontend | init | training | instrument (accuracy) | keyword (accuracy) | "
                        "language (accuracy) | average |")
    rows = [line.split(" | ")[:3] for line in table[2:table.index("")]]
    assert rows == [["| leaf", "random", "untrained"], ["| leaf", "random", "self-supervised"]]
    assert all(line.split(" | ")[-1] != " |" for line in table[2:4]), "every row has all three tasks"
    assert "## Claims" in table and any(line.startswith("| leaf (random init) | ") for line in table), \
        "claim 3 reads the run's filter analysis"
    # the paper's configs, at the preset's size
    config = json.loads((out / "leaf_random_s0_ssl" / "config.json").read_text())
    assert config["frontend"]["name"] == "leaf" and config["frontend"]["init"] == "random"
    assert config["train"]["batch_size"] == 8 and config["train"]["total_steps"] == 2
    assert config["data"]["num_clips"] == 0 and config["data"]["train_shards"] == f"{tiny_corpus}/pretrain"
    assert not (out / "leaf_random_s0_supervised").exists() and not (out / "leaf_random_s0_untrained_bn").exists()
