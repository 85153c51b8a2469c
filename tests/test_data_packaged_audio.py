"""Packaged pretraining audio (`--pretrain_hours`): real .deb files built here with dpkg-deb, so
the unpacking, selection, cutting and corpus wiring run as they do on Debian packages, offline."""
import json
import subprocess

import numpy as np
import pytest
import soundfile

from leaf_ssl.data import demo
from leaf_ssl.data.audio import SAMPLE_RATE
from leaf_ssl.data.demo_sources import packaged_audio
from leaf_ssl.data.demo_sources.common import MissingToolError
from leaf_ssl.data.records import read_clips


def _build_deb(cache, package, files):
    """A real .deb named like apt-get's downloads, holding `files` {relative path: seconds or bytes}."""
    tree = cache.parent / f"{package}_tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 1\nArchitecture: all\nMaintainer: test <t@t>\nDescription: test\n")
    rng = np.random.default_rng(len(package))
    for relative, content in files.items():
        path = tree / "usr" / "share" / package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:  # a tone at 22.05 kHz, so decoding also resamples
            samples = 0.3 * np.sin(np.arange(int(content * 22050)) * 0.05) + 0.01 * rng.normal(size=int(content * 22050))
            soundfile.write(path, samples, 22050, format="OGG" if relative.endswith(".ogg") else "WAV")
    cache.mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(cache / f"{package}_1_all.deb")],
                   check=True, capture_output=True)


@pytest.fixture()
def cache(tmp_path):
    cache = tmp_path / "cache"
    _build_deb(cache, "music-a", {"music/one.ogg": 25.0, "music/two.wav": 3.0, "notes.txt": b"not audio"})
    _build_deb(cache, "effects-b", {"snd/hit.wav": 1.0, "snd/boom.wav": 12.0, "snd/broken.wav": b"RIFF....WAVEjunk"})
    return cache


def test_files_are_taken_round_robin_and_cut_into_ten_second_clips(cache):
    roots = packaged_audio.fetch(cache, packages=("music-a", "effects-b"))
    assert all((root / ".unpacked").exists() for root in roots.values())
    files, unreadable = packaged_audio.select_files(roots, hours=1.0)
    # sorted within a package, alternating across packages; 1 s is shorter than a clip's minimum
    names = [path.rsplit("/", 1)[1] for _, path, _ in files]
    assert names == ["one.ogg", "boom.wav", "two.wav"]
    assert list(unreadable) == ["effects-b/usr/share/effects-b/snd/broken.wav"]
    jobs = packaged_audio.plan_jobs(files, cache)
    clips = jobs[0]()
    # 25 s: two 10 s clips and a 5 s tail (>= 2 s is kept), resampled from 22.05 to 16 kHz
    assert [len(clip.waveform) for clip in clips] == [10 * SAMPLE_RATE, 10 * SAMPLE_RATE, 5 * SAMPLE_RATE]
    assert [clip.id for clip in clips] == [f"music-a/usr/share/music-a/music/one.ogg#{k}" for k in range(3)]
    assert all(clip.label == packaged_audio.UNLABELLED and clip.split == "train" for clip in clips)
    assert [len(clip.waveform) for clip in jobs[1]()] == [10 * SAMPLE_RATE, 2 * SAMPLE_RATE]
    # the budget stops at the first file that reaches it
    files, _ = packaged_audio.select_files(roots, hours=20 / 3600)
    assert [path.rsplit("/", 1)[1] for _, path, _ in files] == ["one.ogg"]


def test_a_package_that_cannot_be_downloaded_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged_audio, "require_program", lambda program, package: "/bin/false")
    with pytest.raises(MissingToolError, match="could not download the Debian package no-such-pkg.*--pretrain_hours"):
        packaged_audio.fetch(tmp_path, packages=("no-such-pkg",))


def test_corpus_pretraining_shards_gain_the_packaged_hours(cache, tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(packaged_audio, "PACKAGES", ("music-a", "effects-b"))
    out = tmp_path / "corpus"
    manifest = demo.build_demo_corpus(out, "tiny", progress=False, pretrain_hours=1.0, package_cache=cache)
    plain = json.loads((tiny_corpus / demo.MANIFEST).read_text())
    packaged = manifest["pretrain"]["packaged_audio"]
    assert packaged == {"files": 3, "clips": 6, "seconds": 40.0, "undecodable_files": []}
    assert manifest["pretrain"]["clips"] == plain["pretrain"]["clips"] + 6
    assert manifest["pretrain"]["unreadable_package_files"].keys() == {"effects-b/usr/share/effects-b/snd/broken.wav"}
    pretrain_ids = {clip.id for clip in read_clips(str(out / "pretrain"))}
    assert sum(clip_id.startswith(("music-a/", "effects-b/")) for clip_id in pretrain_ids) == 6
    # packaged clips are in no task
    for task in manifest["tasks"]:
        assert not any(clip.id.startswith("music-a/") for clip in read_clips(str(out / "tasks" / task / "train-*")))
    assert len(list((out / "pretrain").glob("*.tfrecord"))) == demo.SHARDS_PER_PACKAGED_HOUR
    # asking for other hours is another corpus
    again = demo.build_demo_corpus(out, "tiny", progress=False, pretrain_hours=0.001, package_cache=cache)
    assert again["pretrain"]["packaged_audio"]["files"] == 1


def test_negative_hours_are_refused(tmp_path):
    with pytest.raises(ValueError, match="pretrain_hours must be a finite number >= 0"):
        demo.build_demo_corpus(tmp_path, "tiny", progress=False, pretrain_hours=-1.0)
