"""The probe task registry: folders, CSVs, demo tasks, TFDS, bad files and bad names."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from leaf_ssl.evaluation import tasks
from tests.probe_fixtures import TONE_CLASSES, tone_clip, write_tone_task


@pytest.fixture()
def messy_folder(tmp_path):
    """A tone task plus every kind of bad or unusual file."""
    root = write_tone_task(tmp_path / "tones", train_per_class=2, test_per_class=1)
    rng = np.random.default_rng(5)
    stereo = np.stack([tone_clip(1000.0, 1.0, rng, 44100)] * 2, axis=1)
    soundfile.write(root / "test" / "mid" / "stereo_44k.wav", stereo, 44100)
    soundfile.write(root / "test" / "low" / "mono_8k.flac", tone_clip(250.0, 1.0, rng, 8000), 8000)
    (root / "test" / "high" / "corrupt.wav").write_bytes(b"RIFF\x00\x00not really audio" * 10)
    soundfile.write(root / "test" / "high" / "empty.wav", np.zeros((0,), np.float32), 16000)
    (root / "train" / "low" / "notes.txt").write_text("not audio")
    soundfile.write(root / "train" / "loose.wav", tone_clip(250.0, 0.5, rng), 16000)
    (root / "test" / "unseen").mkdir()
    soundfile.write(root / "test" / "unseen" / "x.wav", tone_clip(250.0, 0.5, rng), 16000)
    return root


def test_folder_task_decodes_resamples_and_skips_with_reasons(messy_folder):
    task = tasks.resolve_task(f"folder:{messy_folder}")
    assert task.classes == sorted(TONE_CLASSES) and not task.multi_label
    train_skips, test_skips = tasks.SkipLog(), tasks.SkipLog()
    train = list(task.clips("train", train_skips))
    test = {clip.id: clip for clip in task.clips("test", test_skips)}
    assert len(train) == 6
    assert {item["item"]: item["reason"] for item in train_skips.items} == {
        "train/low/notes.txt": "not an audio file extension", "train/loose.wav": "not in a class sub-folder"}
    assert {item["item"]: item["reason"] for item in test_skips.items} == {
        "test/high/corrupt.wav": "unreadable", "test/high/empty.wav": "empty",
        "test/unseen/x.wav": "class 'unseen' not in the train split"}
    stereo, low_rate = test["test/mid/stereo_44k.wav"], test["test/low/mono_8k.flac"]
    assert stereo.waveform.ndim == 1 and abs(stereo.waveform.size - 16000) <= 1  # 1 s at 44.1 kHz -> 16 kHz mono
    assert abs(low_rate.waveform.size - 16000) <= 1
    assert stereo.labels == (task.classes.index("mid"),)
    # the resampled 1 kHz tone keeps its pitch: the spectrum peaks at 1 kHz
    spectrum = np.abs(np.fft.rfft(stereo.waveform))
    assert np.argmax(spectrum) * 16000 / stereo.waveform.size == pytest.approx(1000, abs=5)


def test_hash_split_is_deterministic_and_per_file(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for index in range(30):
            soundfile.write(tmp_path / name / f"{index}.wav", tone_clip(500.0, 0.2, rng), 16000)
    first = tasks.folder_task(tmp_path)
    splits = {entry.path.name + entry.path.parent.name: entry.split for entry in first.entries}
    assert 0 < sum(split == "test" for split in splits.values()) < len(splits) / 2
    (tmp_path / "a" / "0.wav").unlink()  # removing a file moves no other file between splits
    again = {entry.path.name + entry.path.parent.name: entry.split for entry in tasks.folder_task(tmp_path).entries}
    assert again == {key: split for key, split in splits.items() if key != "0.wava"}
    assert all(entry.split == tasks.hash_split(str(entry.path.relative_to(tmp_path))) for entry in first.entries)


def test_csv_task_with_several_labels_is_multi_label(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(4):
        soundfile.write(tmp_path / f"{index}.wav", tone_clip(500.0, 0.3, rng), 16000)
    (tmp_path / "labels.csv").write_text(
        "path,label,split\n0.wav,dog;bark,train\n1.wav,cat,train\n2.wav,dog,test\n3.wav,,test\n")
    task = tasks.resolve_task(f"csv:{tmp_path / 'labels.csv'}")
    assert task.multi_label and task.classes == ["bark", "cat", "dog"]
    skips = tasks.SkipLog()
    assert [clip.labels for clip in task.clips("train", skips)] == [(2, 0), (1,)]
    assert skips.by_reason == {"no label": 1}


def test_csv_with_byte_order_mark_extra_fields_and_missing_files(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(3):
        soundfile.write(tmp_path / f"{index}.wav", tone_clip(500.0, 0.3, rng), 16000)
    # As spreadsheet programs save it: a UTF-8 byte-order mark before the header.
    (tmp_path / "labels.csv").write_text("path,label,split\n0.wav,dog,train\n1.wav,cat,train\n2.wav,dog,test\n"
                                         "gone.wav,cat,train\n1.wav,cat,extra,train\n", encoding="utf-8-sig")
    assert (tmp_path / "labels.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    task = tasks.resolve_task(f"csv:{tmp_path / 'labels.csv'}")
    skips = tasks.SkipLog()
    assert [clip.id for clip in task.clips("train", skips)] == ["0.wav", "1.wav"]
    assert {item["item"]: item["reason"] for item in skips.items} == {
        "line 6: 1.wav": "more fields than the header (an unquoted comma?)", "gone.wav": "file not found"}


def test_a_task_with_one_class_is_refused_before_any_work(tmp_path):
    root = write_tone_task(tmp_path / "tones", train_per_class=2, test_per_class=1)
    for split in ("train", "test"):
        for name in ("mid", "high"):
            shutil.rmtree(root / split / name)
    with pytest.raises(tasks.TaskError, match="one class \\('low'\\); a probe task needs at least two"):
        tasks.resolve_task(f"folder:{root}")


def test_empty_class_folder_is_reported(tmp_path):
    root = write_tone_task(tmp_path / "tones", train_per_class=2, test_per_class=1)
    (root / "train" / "silent_class").mkdir()
    skips = tasks.SkipLog()
    list(tasks.resolve_task(f"folder:{root}").clips("train", skips))
    assert {item["item"]: item["reason"] for item in skips.items} == {"train/silent_class/": "empty class folder"}


def test_demo_task_by_prefix_or_data_dir(tiny_corpus):
    by_prefix = tasks.resolve_task(f"demo:{tiny_corpus}/keyword")
    by_data_dir = tasks.resolve_task("keyword", data_dir=str(tiny_corpus))
    assert by_prefix.spec == by_data_dir.spec and by_prefix.classes[:2] == ["yes", "no"]
    skips = tasks.SkipLog()
    clips = list(by_prefix.clips("test", skips))
    assert len(clips) == by_prefix.num_clips("test") > 0 and skips.count == 0


def test_unknown_task_lists_the_valid_ones(tiny_corpus):
    with pytest.raises(tasks.TaskError, match=r"unknown task 'nope'.*speech_commands.*keyword"):
        tasks.resolve_task("nope", data_dir=str(tiny_corpus))
    with pytest.raises(tasks.TaskError, match="no demo task"):
        tasks.resolve_task(f"demo:{tiny_corpus}/nope")
    with pytest.raises(tasks.TaskError, match="does not exist"):
        tasks.resolve_task("folder:/nonexistent/folder")


@pytest.mark.parametrize("name", ["speech_commands", "tfds:nsynth_pitch", "voxceleb"])
def test_absent_tfds_dataset_fails_at_once_saying_how_to_prepare_it(tmp_path, name):
    started = time.perf_counter()
    with pytest.raises(tasks.TaskError, match=r"tfds build .* --data_dir"):
        tasks.resolve_task(name, tfds_data_dir=str(tmp_path))
    assert time.perf_counter() - started < 5, "no network look-up"


@pytest.mark.slow  # a fresh interpreter that builds a model and probes
def test_a_folder_task_is_probed_without_tensorflow(tmp_path):
    root = write_tone_task(tmp_path / "tones", train_per_class=2, test_per_class=1)
    code = ("import sys; sys.modules['tensorflow'] = sys.modules['tensorflow_datasets'] = None\n"
            "from leaf_ssl.cli import probe\n"
            f"probe.main(['--ckpt', 'random:configs/tiny.py:mel', '--task', 'folder:{root}', '--workdir', "
            f"'{tmp_path / 'out'}', '--seeds', '1', '--epochs', '2', '--min_steps', '0'])")
    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "tones.json").exists()


def test_a_second_task_of_the_same_name_is_refused_not_overwritten(tmp_path):
    from leaf_ssl.evaluation import probe
    first = tasks.resolve_task(f"folder:{write_tone_task(tmp_path / 'a' / 'audio', train_per_class=1, test_per_class=1)}")
    second = tasks.resolve_task(f"folder:{write_tone_task(tmp_path / 'b' / 'audio', train_per_class=1, test_per_class=1)}")
    assert first.name == second.name == "audio"
    out = tmp_path / "probes"
    out.mkdir()
    (out / "audio.json").write_text(json.dumps({"task": {"spec": first.spec}, "mean": 0.9}))
    with pytest.raises(tasks.TaskError, match=f"holds the results of folder:{tmp_path / 'a' / 'audio'}, another task"):
        probe.run_probe(None, second, out)  # refused before the model is touched
    assert json.loads((out / "audio.json").read_text())["mean"] == 0.9
