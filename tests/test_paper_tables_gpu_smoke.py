"""`launch/paper_tables.sh gpu` at a smoke size on the CPU: the one-GPU reproduction's script runs
end to end (corpus check, the paper's configs with its overrides, training, probes of each run and
its floor, the table), so its first device call cannot fail on a typo."""
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


def test_gpu_preset_trains_probes_and_tables_at_smoke_size(tiny_corpus, tmp_path):
    out = tmp_path / "tables"
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(out), DEMO_CORPUS=str(tiny_corpus), CORPUS_SCALE="tiny",
               PRETRAIN_HOURS="0", STEPS="2", BATCH="8", SEEDS="1", VARIANTS="leaf,random",
               EXTRA_FLAGS=SMOKE_FLAGS, PROBE_FLAGS="--epochs 1 --min_steps 1")
    # one variant of the three keeps the suite short; the others differ only in their config file
    completed = subprocess.run(["bash", str(REPO / "launch" / "paper_tables.sh"), "gpu"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    table = (out / "table.md").read_text().splitlines()
    assert table[0] == ("| frontend | init | training | instrument (accuracy) | keyword (accuracy) | "
                        "language (accuracy) | average |")
    rows = [line.split(" | ")[:3] for line in table[2:]]
    assert rows == [["| leaf", "random", "untrained"], ["| leaf", "random", "self-supervised"]]
    assert all(line.split(" | ")[-1] != " |" for line in table[2:]), "every row has all three tasks"
    # the paper's configs, at the preset's size
    config = json.loads((out / "leaf_random_ssl" / "config.json").read_text())
    assert config["frontend"]["name"] == "leaf" and config["frontend"]["init"] == "random"
    assert config["train"]["batch_size"] == 8 and config["train"]["total_steps"] == 2
    assert config["data"]["num_clips"] == 0 and config["data"]["train_shards"] == f"{tiny_corpus}/pretrain"
    assert not (out / "leaf_random_supervised").exists() and not (out / "leaf_random_untrained_bn").exists()
