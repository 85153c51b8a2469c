"""leaf_ssl.hear run by the HEAR tools themselves: hearvalidator's checks, and heareval's embedding
runner on a scene task and an event task in heareval's folder format.

Both tools declare old Pythons and pinned numpy/numba, so `launch/setup.sh` installs them without
their declared dependencies (plus the few they import); without them these tests fail.
"""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from leaf_ssl.inference import hear

pytestmark = pytest.mark.slow  # each tool starts its own process and compiles the model

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "configs/tiny.py"
RATE = 16000


def _run(*command, cwd=REPO):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_hearvalidator_passes_leaf_ssl_hear():
    importlib.import_module("hearvalidator.validate")  # launch/setup.sh installs the HEAR clients
    # a config file is the path form of random:<config>, which heareval's path check also accepts
    printed = _run(str(Path(sys.executable).with_name("hear-validator")), "leaf_ssl.hear", "--model", str(TINY))
    assert "Received torch Module: leaf_ssl.hear model of random:" in printed
    assert printed.rstrip().endswith("Looks good!"), printed[-2000:]


def _tone(frequency: float, seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


def _write_task(root: Path, name: str, embedding_type: str, labels: dict[str, dict[str, object]],
                audio: dict[str, np.ndarray]):
    """One task in heareval's layout: metadata, label vocabulary, a labels JSON and a 16 kHz audio folder
    per split."""
    task = root / name
    for split, split_labels in labels.items():
        (task / str(RATE) / split).mkdir(parents=True)
        for file in split_labels:
            soundfile.write(task / str(RATE) / split / file, audio[file], RATE)
        (task / f"{split}.json").write_text(json.dumps(split_labels))
    (task / "task_metadata.json").write_text(json.dumps({
        "task_name": name, "version": "test", "embedding_type": embedding_type,
        "prediction_type": "multiclass" if embedding_type == "scene" else "multilabel",
        "split_mode": "trainvaltest", "sample_duration": 1.5, "splits": list(labels)}))
    (task / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,high\n")


def test_heareval_runner_writes_the_api_s_embeddings_for_a_scene_and_an_event_task(tmp_path):
    importlib.import_module("heareval.embeddings.runner")  # launch/setup.sh installs the HEAR clients
    audio = {"low.wav": _tone(220, 1.5), "high.wav": _tone(1760, 1.5),
             "both.wav": np.concatenate([_tone(220, 0.75), _tone(1760, 0.75)])}
    tasks = tmp_path / "tasks"
    _write_task(tasks, "tones", "scene", {"train": {"low.wav": ["low"], "high.wav": ["high"]},
                                          "test": {"both.wav": ["high"]}}, audio)
    _write_task(tasks, "onsets", "event", {"train": {"both.wav": [{"start": 0.0, "end": 750.0, "label": "low"},
                                                                 {"start": 750.0, "end": 1500.0, "label": "high"}]}},
                audio)
    _run(sys.executable, "-m", "heareval.embeddings.runner", "leaf_ssl.hear", "--model", str(TINY), "--model-options",
         '{"config_args": "leaf"}', "--tasks-dir", str(tasks), "--embeddings-dir", str(tmp_path / "embeddings"),
         cwd=tmp_path)

    model = hear.load_model(str(TINY), config_args="leaf")
    out = tmp_path / "embeddings" / "leaf_ssl.hear-config-args=leaf"
    for task in ("tones", "onsets"):
        assert (out / task / ".done.embeddings").exists()
    for split, files in (("train", ["low.wav", "high.wav"]), ("test", ["both.wav"])):
        written = np.stack([np.load(out / "tones" / split / f"{file}.embedding.npy") for file in files])
        expected = hear.get_scene_embeddings(np.stack([audio[file] for file in files]), model)
        np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-6)
    frames = np.load(out / "onsets" / "train" / "both.wav.embedding.npy")
    timestamps = json.loads((out / "onsets" / "train" / "both.wav.timestamps.json").read_text())
    expected_frames, expected_times = hear.get_timestamp_embeddings(audio["both.wav"][None], model)
    np.testing.assert_allclose(frames, expected_frames[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(timestamps, expected_times[0])
    # heareval labels each timestamp from the events: the first low, the last high
    labels = json.loads((out / "onsets" / "train" / "both.wav.target-labels.json").read_text())
    assert labels[0] == ["low"] and labels[-1] == ["high"] and len(labels) == len(timestamps)
    assert json.loads((out / "tones" / "train.embedding-dimensions.json").read_text()) == [2, 320]
