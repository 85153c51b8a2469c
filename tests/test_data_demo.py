"""The demo corpus: the tiny scale builds from the Debian packages, with the promised layout and labels."""
import collections
import json
import shutil

import numpy as np
import pytest

from leaf_ssl.cli import demo_corpus as demo_command
from leaf_ssl.data import demo
from leaf_ssl.data.demo_sources import instrument, keyword
from leaf_ssl.data.demo_sources.common import MissingToolError
from leaf_ssl.data.demo_sources.midi import Note, _variable_length, midi_file
from leaf_ssl.data.records import read_clips


@pytest.fixture(scope="module")
def tiny_corpus(tiny_corpus):
    """The session's tiny corpus (tests/conftest.py; launch/setup.sh installs its tools) and its manifest."""
    return tiny_corpus, json.loads((tiny_corpus / demo.MANIFEST).read_text())


def test_tiny_corpus_has_every_task_with_labelled_splits(tiny_corpus):
    out, manifest = tiny_corpus
    assert json.loads((out / "corpus.json").read_text()) == manifest
    expected_classes = {"keyword": ["yes", "no", "up"], "instrument": ["piano", "brass"],
                        "language": ["en", "es", "fr", "it", "ru"]}
    for task, classes in expected_classes.items():
        task_json = json.loads((out / "tasks" / task / "task.json").read_text())
        assert task_json["classes"] == classes
        for split in ("train", "test"):
            clips = list(read_clips(str(out / "tasks" / task / f"{split}-*.tfrecord")))
            assert len(clips) == task_json["splits"][split]["clips"] == manifest["tasks"][task][split] > 0
            per_class = collections.Counter(classes[int(clip.labels[0])] for clip in clips)
            assert per_class == {name: n for name, n in task_json["splits"][split]["clips_per_class"].items() if n}
            assert all(len(clip.labels) == 1 and clip.id.startswith(task + "/") for clip in clips)
            assert all(np.abs(clip.waveform).max() > 0.01 for clip in clips), "no silent clips"
        assert set(per_class) == set(classes)  # every class in the test split


def test_splits_hold_out_speakers_pitches_and_prompts(tiny_corpus):
    out, _ = tiny_corpus
    held_out_unit = {  # what each task's split keeps apart, read from the clip ids
        "keyword": lambda clip_id: clip_id.split("/")[1],  # keyword/<speaker>/<word>/<rendition>
        "instrument": lambda clip_id: clip_id.split("/")[2],  # instrument/<program>/<pitch>/<velocity>
        "language": lambda clip_id: clip_id.split("/", 2)[2],  # language/<language>/<prompt name>
    }
    for task, unit in held_out_unit.items():
        train, test = ({unit(clip.id) for clip in read_clips(str(out / "tasks" / task / f"{split}-*"))}
                       for split in ("train", "test"))
        assert train and test and not train & test, task


def test_pretrain_shards_hold_the_train_clips_unlabelled(tiny_corpus):
    out, manifest = tiny_corpus
    pretrain = list(read_clips(str(out / "pretrain")))
    train_ids = {clip.id for task in manifest["tasks"] for clip in read_clips(str(out / "tasks" / task / "train-*"))}
    assert {clip.id for clip in pretrain} == train_ids
    assert all(clip.labels.size == 0 for clip in pretrain)
    assert len(list((out / "pretrain").glob("*.tfrecord"))) == manifest["settings"]["pretrain_shards"]


def test_matching_corpus_is_not_rebuilt(tiny_corpus):
    out, manifest = tiny_corpus
    shard = next((out / "pretrain").iterdir())
    modified = shard.stat().st_mtime_ns
    assert demo.build_demo_corpus(out, "tiny", progress=False) == manifest
    assert shard.stat().st_mtime_ns == modified


def test_missing_tool_names_the_apt_package(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda program: None)
    with pytest.raises(MissingToolError, match="apt-get install espeak-ng"):
        keyword.check_available()
    monkeypatch.setattr(instrument, "SOUNDFONT", str(tmp_path / "absent.sf2"))
    monkeypatch.setattr(shutil, "which", lambda program: "/usr/bin/" + program)
    with pytest.raises(MissingToolError, match="apt-get install fluid-soundfont-gm"):
        instrument.check_available()
    assert demo_command.main(["--out", str(tmp_path / "corpus"), "--scale", "tiny"]) == 2
    assert not (tmp_path / "corpus").exists(), "nothing is built when a tool is missing"


def test_midi_variable_length_quantities_follow_the_standard():
    # Examples from the Standard MIDI File specification.
    for value, encoded in [(0, "00"), (0x40, "40"), (0x7F, "7F"), (0x80, "81 00"), (0x2000, "C0 00"),
                           (0x3FFF, "FF 7F"), (0x100000, "C0 80 00"), (0x0FFFFFFF, "FF FF FF 7F")]:
        assert _variable_length(value) == bytes.fromhex(encoded)


def test_midi_file_structure():
    data = midi_file([Note(program=5, pitch=60, velocity=100, onset_ms=0, duration_ms=500)], silence_after_ms=700)
    assert data[:14] == b"MThd" + bytes.fromhex("00000006 0000 0001 03E8")
    track_length = int.from_bytes(data[18:22], "big")
    assert data[14:18] == b"MTrk" and len(data) == 22 + track_length
    track = data[22:]
    assert bytes.fromhex("00 C0 05 00 90 3C 64") in track  # program change, then note on at time 0
    assert bytes.fromhex("83 74 80 3C 00") in track  # note off 500 ms later
    assert bytes.fromhex("81 48 B0 78 00") in track  # all sound off 200 ms after that
    assert track.endswith(bytes.fromhex("00 FF 2F 00"))
