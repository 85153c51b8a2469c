"""A run on cloud storage, end to end: trained into a gs:// workdir, then probed, embedded and
analysed from it, through a GCS emulator on 127.0.0.1 (gcp-storage-emulator).

The commands reach the emulator through the clients a pod run uses for gs://: orbax's
tensorstore for the arrays (TENSORSTORE_GCS_HTTP_URL), etils.epath for every other file
(through fsspec's gcsfs, which honours STORAGE_EMULATOR_HOST; EPATH_USE_TF=false, since
TensorFlow's GCS filesystem, epath's default when TensorFlow is installed, cannot be pointed at
an emulator). TensorBoard events are the one writer left on TensorFlow's filesystems, so the
run here has them off (`train.tensorboard=False`).

The emulator answers object downloads without the `x-goog-generation` header that Cloud Storage
sends, which tensorstore needs for its conditional reads ("Malformed StorageGeneration"); the
fixture adds it. The emulator also ignores write preconditions, so this test shows that every
tool reads and writes through gs://, not how concurrent writers race there.
"""
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
BUCKET = "leaf-ssl-test"
pytestmark = pytest.mark.slow


def _send_generations(server_module, objects):
    """Routes the emulator's downloads through a handler that adds the object's generation header."""
    plain = objects.download

    def download(request, response, storage, *args, **kwargs):
        plain(request, response, storage, *args, **kwargs)
        if response.status < 300:
            stored = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
            response["x-goog-generation"] = str(stored["generation"])

    objects.download = download  # `objects.get(alt=media)` calls the module's download
    server_module.HANDLERS = tuple((route, {method: download if handler is plain else handler
                                            for method, handler in handlers.items()})
                                   for route, handlers in server_module.HANDLERS)


@pytest.fixture
def gcs_environment(monkeypatch):
    # The test extra installs both: missing is a failure, not a skip.
    server_module = importlib.import_module("gcp_storage_emulator.server")
    importlib.import_module("gcsfs")
    from gcp_storage_emulator.handlers import objects
    monkeypatch.setattr(objects, "download", objects.download)  # restored after the test
    monkeypatch.setattr(server_module, "HANDLERS", server_module.HANDLERS)
    _send_generations(server_module, objects)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    url = f"http://127.0.0.1:{port}"
    yield {**os.environ, "STORAGE_EMULATOR_HOST": url, "TENSORSTORE_GCS_HTTP_URL": url,
           "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator", "EPATH_USE_TF": "false"}
    server.stop()


def _run(environment, cwd, *argv):
    result = subprocess.run([sys.executable, "-m", *argv], cwd=cwd, env=environment, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _read(environment, *code):
    """Reads from the emulator through epath, in a process with the emulator's environment."""
    script = "from etils import epath; " + "; ".join(code)
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                          check=True).stdout


def test_a_run_written_to_gs_is_resumed_probed_embedded_and_analysed_from_gs(tiny_corpus, tmp_path,
                                                                            gcs_environment):
    run = f"gs://{BUCKET}/runs/tiny"

    def train(total_steps):
        return _run(gcs_environment, REPO, "leaf_ssl.train", "--config", str(REPO / "configs/tiny.py"),
                    "--workdir", run, f"--config.data.train_shards={tiny_corpus / 'pretrain'}",
                    f"--config.train.total_steps={total_steps}", "--config.train.checkpoint_every_steps=2",
                    "--config.train.log_every_steps=2", "--config.train.tensorboard=False")

    train(2)
    resumed = train(4)  # the preempted pod's restart: same command, longer run
    assert f"resumed {run} at step 2 of 4" in resumed.stderr
    listing = _read(gcs_environment, f"print(sorted(p.name for p in epath.Path('{run}/checkpoints').iterdir()))",
                    "import json",
                    f"print([json.loads(r)['step'] for r in epath.Path('{run}/metrics.jsonl').read_text().splitlines()])")
    assert listing.split("\n")[:2] == ["['2', '4']", "[2, 4]"], listing
    assert not (REPO / "gs:").exists(), "a gs:// path must never become a local folder"

    # Probe from the bucket: results default to a local probes/<run name> folder.
    _run(gcs_environment, tmp_path, "leaf_ssl.probe", "--ckpt", run, "--task",
         f"demo:{tiny_corpus}/keyword", "--seeds", "1", "--epochs", "1", "--min_steps", "1")
    result = json.loads((tmp_path / "probes" / "tiny" / "keyword.json").read_text())
    assert result["model"]["step"] == 4 and result["model"]["checkpoint"] == f"{run}/checkpoints/4"

    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "tone.npy").write_bytes(b"")  # not audio: passed over
    import soundfile
    soundfile.write(audio / "tone.wav", np.sin(np.arange(16000) * 0.2).astype(np.float32), 16000)
    _run(gcs_environment, tmp_path, "leaf_ssl.embed", "--ckpt", f"{run}/checkpoints/2", str(audio),
         "--out", str(tmp_path / "embeddings"))
    report = json.loads((tmp_path / "embeddings" / "embed_report.json").read_text())
    assert report["step"] == 2 and report["counts"]["embedded"] == 1
    assert np.load(tmp_path / "embeddings" / "tone.wav.npy").shape == (report["embedding_dim"],)

    _run(gcs_environment, tmp_path, "leaf_ssl.analyze", "--ckpt", run, "--out", str(tmp_path / "analysis"))
    analysis = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert analysis["checkpoints"][0]["source"] == f"{run}/checkpoints/4"
