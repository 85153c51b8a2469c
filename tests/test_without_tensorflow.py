"""Training, probing and embedding on a machine without TensorFlow: subprocesses for which `tensorflow` and
`tensorflow_datasets` do not import. The shards are read into memory (`data.in_memory`), TensorBoard's events
are written by TensorBoard's own writer, and the crops have the statistics of the tf.data path's."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.blocked_imports import without
from tests.tensorboard_events import read_events

pytestmark = pytest.mark.slow  # trains, probes and embeds in subprocesses

REPO = Path(__file__).resolve().parent.parent
ABSENT = ("tensorflow", "tensorflow_datasets")
CROP_STATS = """
import json, sys
import numpy as np
from leaf_ssl.data import streams
stream = streams.pretraining_stream(sys.argv[1], reader=sys.argv[2], per_process_batch=16, seed=int(sys.argv[3]),
                                    crop_samples=5120, process_index=0, process_count=1, noise_std=0.0, normalize=False)
crops = np.concatenate([next(stream)["anchor"] for _ in range(80)])
print(json.dumps({"rms": np.sqrt(np.mean(crops ** 2, axis=1)).tolist(), "zeros": np.mean(crops == 0, axis=1).tolist(),
                  "tensorflow": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None}))
"""


@pytest.fixture(scope="module")
def no_tf_env(tmp_path_factory):
    blocked = without(ABSENT, tmp_path_factory.mktemp("absent"))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([blocked, str(REPO)])}


def _run(env, cwd, *argv, check=True):
    result = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_train_probe_and_embed_run_without_tensorflow(tiny_corpus, tmp_path, no_tf_env):
    shards = f"--config.data.train_shards={tiny_corpus / 'pretrain'}"
    trained = _run(no_tf_env, tmp_path, "-m", "leaf_ssl.train", "--config", str(REPO / "configs/tiny.py"),
                   "--workdir", "run", shards)
    assert "step 4/4" in trained.stderr and "decoded into memory" in trained.stderr
    scalars, images, hparams = read_events(tmp_path / "run" / "tensorboard")  # TensorBoard's reader, here
    assert sorted(scalars["loss"]) == [2, 4] and np.all(np.isfinite(list(scalars["loss"].values())))
    assert "frontend/chirp" in images and hparams["frontend.name"] == "leaf"

    forced = _run(no_tf_env, tmp_path, "-m", "leaf_ssl.train", "--config", str(REPO / "configs/tiny.py"),
                  "--workdir", "forced", shards, "--config.data.reader=tf_data", check=False)
    assert forced.returncode != 0 and "reader 'tf_data' needs TensorFlow" in forced.stderr.strip().splitlines()[-1]

    _run(no_tf_env, tmp_path, "-m", "leaf_ssl.probe", "--ckpt", "run", "--task", f"demo:{tiny_corpus}/keyword",
         "--seeds", "1", "--epochs", "1", "--min_steps", "1", "--evaluator", "knn")
    result = json.loads((tmp_path / "probes" / "run" / "keyword_knn.json").read_text())
    assert result["model"]["step"] == 4 and result["metric"] == "accuracy" and 0.0 <= result["mean"] <= 1.0

    import soundfile
    (tmp_path / "audio").mkdir()
    soundfile.write(tmp_path / "audio" / "tone.wav", np.sin(np.arange(16000) * 0.2).astype(np.float32), 16000)
    _run(no_tf_env, tmp_path, "-m", "leaf_ssl.embed", "--ckpt", "run", str(tmp_path / "audio"), "--out", "embeddings")
    report = json.loads((tmp_path / "embeddings" / "embed_report.json").read_text())
    assert report["counts"]["embedded"] == 1
    assert np.load(tmp_path / "embeddings" / "tone.wav.npy").shape == (report["embedding_dim"],)


def test_in_memory_crops_have_the_statistics_of_tf_data_crops(tiny_corpus, tmp_path, no_tf_env):
    shards = str(tiny_corpus / "pretrain")
    in_memory = json.loads(_run(no_tf_env, tmp_path, "-c", CROP_STATS, shards, "auto", "0").stdout)
    assert not in_memory.pop("tensorflow")
    tf_data = json.loads(_run(os.environ, tmp_path, "-c", CROP_STATS, shards, "tf_data", "1").stdout)
    assert tf_data.pop("tensorflow")
    for name in ("rms", "zeros"):  # two independent samples of the same crop distribution
        a, b = np.asarray(in_memory[name]), np.asarray(tf_data[name])
        standard_error = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * standard_error + 1e-9, (name, a.mean(), b.mean(), standard_error)
