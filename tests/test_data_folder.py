"""Sharding a user's own audio: decode errors are counted skips, ffmpeg formats, resume, the command."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from leaf_ssl.data import audio, folder
from leaf_ssl.data.audio import BadAudioError, decode_audio
from leaf_ssl.data.records import read_clips, write_shards

REPO = Path(__file__).resolve().parent.parent


def _tone(seconds: float, frequency: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture()
def user_folder(tmp_path):
    """Audio as users have it: good files at two rates and depths, an m4a, and broken ones."""
    root = tmp_path / "my_audio"
    (root / "day1").mkdir(parents=True)
    soundfile.write(root / "a.wav", np.stack([_tone(2.0, rate=22050)] * 2, axis=1), 22050)
    soundfile.write(root / "day1" / "b.flac", _tone(1.5, 660.0), 16000)
    soundfile.write(root / "day1" / "short.wav", _tone(0.3), 16000)
    (root / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (root / "empty.flac").write_bytes(b"")
    (root / "notes.txt").write_text("not audio")
    (root / ".hidden.wav").write_bytes(b"")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=500:duration=1.5",
                    "-c:a", "aac", str(root / "day1" / "c.m4a")], check=True)  # ffmpeg: from launch/setup.sh
    return root


def test_write_shards_counts_decoding_errors_of_each_clip(user_folder, tmp_path):
    files = sorted(p for p in user_folder.rglob("*.*") if p.suffix in (".wav", ".flac"))
    clips = ((path.stem, lambda path=path: decode_audio(path), ()) for path in files)
    writer = write_shards(clips, tmp_path / "shards", "pretrain", num_shards=2)
    assert writer.written == 3 and sum(writer.skipped.values()) == 3, writer.skipped  # .hidden, corrupt, empty
    assert sorted(clip.id for clip in read_clips(tmp_path / "shards")) == ["a", "b", "short"]
    assert not list((tmp_path / "shards").glob("*.partial"))


def test_m4a_decodes_through_ffmpeg(user_folder):
    waveform = decode_audio(user_folder / "day1" / "c.m4a")
    assert abs(waveform.size - 24000) < 2000  # 1.5 s at 16 kHz, give or take the codec's padding
    spectrum = np.abs(np.fft.rfft(waveform))
    assert np.argmax(spectrum) * 16000 / waveform.size == pytest.approx(500, abs=5)


def test_without_ffmpeg_the_error_names_the_package(user_folder, monkeypatch):
    (user_folder / "x.m4a").write_bytes(b"\0" * 100)
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(BadAudioError, match=r"ffmpeg.*is not installed \(apt-get install ffmpeg\)"):
        decode_audio(user_folder / "x.m4a")


def test_folder_shards_skip_and_count_bad_files_and_resume(user_folder, tmp_path):
    out = tmp_path / "shards"
    files = folder.find_audio_files(str(user_folder))
    report = folder.prepare_folder(files, str(user_folder), str(out), num_shards=2, workers=1, progress=False)
    good = ["a", "day1/b", "day1/c"]
    assert sorted(clip.id for clip in read_clips(out)) == good
    assert report["written"]["clips"] == len(good) and report["files_listed"] == len(good) + 3
    assert {item["file"] for item in report["corrupt"]["files"]} == {"corrupt.wav", "empty.flac"}
    assert [item["file"] for item in report["too_short"]["clips"]] == ["day1/short.wav"]
    assert json.loads((out / "pretrain_report.json").read_text()) == report
    again = folder.prepare_folder(files, str(user_folder), str(out), num_shards=2, workers=1, progress=False)
    assert again["shards"] == {**report["shards"], "built": 0, "reused": 2, "build_seconds": again["shards"]
                               ["build_seconds"]}
    assert sorted(clip.id for clip in read_clips(out)) == good


@pytest.mark.slow
def test_file_list_and_the_command(user_folder, tmp_path):
    listing = tmp_path / "files.csv"
    listing.write_text("\ufeffpath,comment\n" + f"{user_folder / 'a.wav'},x\n" + f"{user_folder / 'gone.wav'},y\n")
    out = tmp_path / "shards"
    result = subprocess.run([sys.executable, "-m", "leaf_ssl.data.folder", "--file_list", str(listing),
                             "--out", str(out), "--num_shards", "1", "--workers", "1"],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 clips" in result.stdout and "1 missing" in result.stdout
    assert [clip.id for clip in read_clips(out)] == [os.path.relpath(user_folder / "a", tmp_path)]
    empty = tmp_path / "nothing"
    empty.mkdir()
    failed = subprocess.run([sys.executable, "-m", "leaf_ssl.data.folder", "--audio_dir", str(empty), "--out",
                             str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert failed.returncode == 2 and failed.stderr.splitlines()[-1].startswith("error: no audio file found under")
