"""Hours of unlabelled real audio for pretraining: the music, sound effects and voices of Debian
game packages (`python -m leaf_ssl.data.demo --pretrain_hours H`).

The packages are fetched with `apt-get download` (no root, nothing installed) into a cache
folder and unpacked there with `dpkg-deb -x`; a folder of the .deb files copied from elsewhere
works as the cache too. Files are taken round-robin across packages, in a fixed order, until
their duration reaches the hours asked for, so any budget mixes music, effects and voices. Each
file becomes consecutive clips of `CLIP_SECONDS` (AudioSet's length); a tail shorter than
`MIN_CLIP_SECONDS` is dropped. The clips go to the pretraining shards only, never to a task.

Not used: ktuberling, klettres and hydrogen, kept out as audio for an independent check of
what the demo learns.
"""
from __future__ import annotations

import functools
import glob
import itertools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from leaf_ssl.data.audio import SAMPLE_RATE, BadAudioError, decode_audio
from leaf_ssl.data.demo_sources.common import TRAIN, LabelledClip, MissingToolError, require_program

PACKAGES = (
    "wesnoth-1.16-music",     # orchestral soundtrack (2.1 h)
    "warzone2100-music",      # electronic soundtrack (4.1 h)
    "hedgewars-data",         # music, effects, cartoon voice packs in several languages (1.8 h)
    "supertux-data",          # chiptune / ambient music and effects (1.7 h)
    "freedroidrpg-data",      # music, effects, voice samples (0.9 h)
    "lincity-ng-data",        # city ambience and effects (0.3 h)
    "frozen-bubble-data",     # effects (0.2 h)
    "extremetuxracer-data",   # music and effects (0.2 h)
)
"""Debian package names, in the order their files are interleaved (durations as of Debian 12)."""

AUDIO_SUFFIXES = (".ogg", ".opus", ".wav", ".flac")
CLIP_SECONDS = 10.0
MIN_CLIP_SECONDS = 2.0
UNLABELLED = -1
"""The label of a packaged clip: it has none and is written to no task."""


def fetch(cache_dir: str | os.PathLike, packages: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Each package's unpacked root in `cache_dir` (default packages: `PACKAGES`), downloading and
    unpacking what is missing.

    Raises:
      MissingToolError: apt-get or dpkg-deb is missing, or a package cannot be downloaded.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    roots = {}
    for package in PACKAGES if packages is None else packages:
        root = cache_dir / package
        if not (root / ".unpacked").exists():
            _unpack(_download(cache_dir, package), root)
        roots[package] = root
    return roots


def _download(cache_dir: Path, package: str) -> Path:
    debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    if not debs:
        apt_get = require_program("apt-get", "apt")
        result = subprocess.run([apt_get, "download", package], cwd=cache_dir, capture_output=True, text=True)
        debs = sorted(cache_dir.glob(f"{package}_*.deb"))
        if result.returncode != 0 or not debs:
            raise MissingToolError(
                f"could not download the Debian package {package} (`apt-get download {package}` said: "
                f"{result.stderr.strip()[-300:] or result.returncode}); copy its .deb into {cache_dir} "
                "or build without --pretrain_hours")
    return debs[-1]


def _unpack(deb: Path, root: Path) -> None:
    dpkg_deb = require_program("dpkg-deb", "dpkg")
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = subprocess.run([dpkg_deb, "-x", str(deb), str(partial)], capture_output=True, text=True)
    if result.returncode != 0:
        raise MissingToolError(f"{deb} is not a readable .deb ({result.stderr.strip()[-300:]}); delete it to download it again")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    (root / ".unpacked").touch()


def select_files(roots: dict[str, Path], hours: float) -> tuple[list[tuple[str, str, float]], dict]:
    """(package, path, seconds) of the files to use, round-robin across packages until `hours`,
    and the skipped files by reason (a header soundfile cannot read)."""
    per_package, unreadable = [], {}
    for package, root in roots.items():
        files = []
        for path in sorted(p for p in glob.glob(str(root / "**" / "*"), recursive=True)
                           if p.lower().endswith(AUDIO_SUFFIXES)):
            try:
                files.append((package, path, soundfile.info(path).duration))
            except (soundfile.LibsndfileError, RuntimeError, OSError) as error:
                unreadable[os.path.relpath(path, root.parent)] = str(error)
        per_package.append(files)
    chosen, total = [], 0.0
    for entry in itertools.chain.from_iterable(itertools.zip_longest(*per_package)):
        if total >= hours * 3600:
            break
        if entry is not None and entry[2] >= MIN_CLIP_SECONDS:
            chosen.append(entry)
            total += entry[2]
    return chosen, unreadable


def plan_jobs(files: list[tuple[str, str, float]], cache_dir: str | os.PathLike) -> list:
    """One picklable job per file, returning its clips."""
    return [functools.partial(read_clips, path, os.path.relpath(path, cache_dir)) for _, path, _ in files]


def read_clips(path: str, clip_id: str) -> list[LabelledClip]:
    """The file cut into consecutive clips; [] when it cannot be decoded (the caller counts it:
    every selected file is at least one clip long)."""
    try:
        waveform = decode_audio(path)
    except BadAudioError:
        return []
    clip, shortest = int(CLIP_SECONDS * SAMPLE_RATE), int(MIN_CLIP_SECONDS * SAMPLE_RATE)
    return [LabelledClip(f"{clip_id}#{start // clip}", np.asarray(waveform[start:start + clip]), UNLABELLED, TRAIN)
            for start in range(0, len(waveform), clip) if len(waveform) - start >= shortest]
