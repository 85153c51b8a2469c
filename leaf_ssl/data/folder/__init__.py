"""Shards a folder of your own audio (or a list of files) for pretraining, with a report.

    python -m leaf_ssl.data.folder --audio_dir /data/my_audio --out /data/my_shards [--num_shards 64]
    python -m leaf_ssl.data.folder --file_list files.csv --out gs://bucket/my_shards [--workers 8]

Every audio file below --audio_dir (any depth; wav, flac, ogg, and through ffmpeg m4a, opus,
webm, mp3...; hidden files left out), or every path in --file_list (one per line, or a CSV with a
`path` column; relative paths are taken from the list's folder), becomes one unlabelled clip:
decoded, downmixed and resampled to 16 kHz mono, id = its path relative to the folder without
extension. The files are sorted by path and dealt round-robin to the shards, so the shards' bytes
do not depend on --workers or on the order of the walk.

Nothing is lost silently: a file that cannot be decoded (corrupt, empty, NaN samples, a format
neither libsndfile nor ffmpeg reads) or is shorter than --min_seconds is skipped, counted and
listed with its reason in ``{split}_report.json``; the run goes on. Shards are written by worker
processes, with progress and ETA, and resumed as the AudioSet tool's are: a rerun with the same
files and settings reuses every finished shard and rebuilds the rest (`audioset_shards`).

Train on the result with ``--config.data.train_shards=OUT``.
"""
from __future__ import annotations

import csv
import math
import os

from leaf_ssl.data.audio import AUDIO_EXTENSIONS, SAMPLE_RATE
from leaf_ssl.data.audioset_shards import (ClipPlan, build_or_reuse_shards, delete_stale_shards,
                                           merge_shard_reports, plan_shard, write_json)
from leaf_ssl.data.records import shard_name

DEFAULT_MIN_SECONDS = 0.96  # one COLA crop
REPORT_SUFFIX = "_report.json"


class FolderError(ValueError):
    """An input that cannot be sharded at all (missing folder or list, no audio, a bad setting)."""


def find_audio_files(audio_dir: str) -> list[str]:
    """Every audio file below `audio_dir` (hidden files and folders left out), sorted."""
    if not os.path.isdir(audio_dir):
        raise FolderError(f"audio folder {audio_dir!r} does not exist")
    found = []
    for folder, subfolders, names in os.walk(audio_dir):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(os.path.join(folder, name) for name in names
                     if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS)
    return sorted(found)


def read_file_list(path: str) -> list[str]:
    """The paths of a file list: one per line, or the `path` column of a CSV with a header."""
    if not os.path.isfile(path):
        raise FolderError(f"file list {path!r} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as file:
        rows = [row for row in csv.reader(file) if row and row[0].strip()]
    if rows and "path" in [cell.strip() for cell in rows[0]]:
        column = [cell.strip() for cell in rows[0]].index("path")
        rows = rows[1:]
    else:
        column = 0
    base = os.path.dirname(os.path.abspath(path))
    return sorted(os.path.normpath(os.path.join(base, row[column].strip())) for row in rows if len(row) > column)


def prepare_folder(files: list[str], root: str, out_dir: str, *, num_shards: int, workers: int | None = None,
                   split_name: str = "pretrain", min_seconds: float = DEFAULT_MIN_SECONDS,
                   progress: bool = True) -> dict:
    """Writes `files` as unlabelled clips into `num_shards` shards in `out_dir`; returns the report.

    Args:
      files: audio file paths; ids are their paths relative to `root`, without extension.
      root: the folder ids are relative to (the audio folder, or the file list's folder).
    """
    if num_shards < 1:
        raise FolderError(f"--num_shards must be at least 1, got {num_shards}")
    if workers is not None and workers < 1:
        raise FolderError(f"--workers must be at least 1, got {workers}")
    if not files:
        raise FolderError(f"no audio file found under {root!r} (extensions {', '.join(sorted(AUDIO_EXTENSIONS))})")
    clips, missing = [], []
    for path in files:
        if not os.path.isfile(path):
            missing.append(path)
            continue
        relative = os.path.relpath(path, root)
        # A whole file is one clip: an infinite segment end is never cut (`read_segment`).
        clips.append(ClipPlan(os.path.splitext(relative)[0], relative, (), 0.0, math.inf, os.path.getsize(path)))
    if not clips:
        raise FolderError(f"none of the {len(files)} listed files exists (first: {files[0]!r})")

    delete_stale_shards(out_dir, split_name, num_shards)
    jobs = [plan_shard(shard_name(split_name, i, num_shards), out_dir, os.path.abspath(root),
                       clips[i::num_shards], min_seconds) for i in range(num_shards)]
    shard_reports, shards = build_or_reuse_shards(jobs, workers, f"{os.path.basename(root) or root} {split_name}",
                                                  progress)
    merged = merge_shard_reports(shard_reports, labels=())
    report = {
        "split": split_name,
        "settings": {"num_shards": num_shards, "min_seconds": min_seconds, "sample_rate": SAMPLE_RATE,
                     "root": os.path.abspath(root)},
        "files_listed": len(files),
        "missing": missing,
        **{key: merged[key] for key in ("corrupt", "too_short", "written")},  # unlabelled whole files
        "shards": shards,
    }
    write_json(os.path.join(out_dir, split_name + REPORT_SUFFIX), report)
    return report


def summary_lines(report: dict, out_dir: str) -> list[str]:
    skipped = report["corrupt"]["count"] + report["too_short"]["count"] + len(report["missing"])
    lines = [f"{report['written']['clips']} clips ({report['written']['hours']:.2f} h) written in "
             f"{report['shards']['count']} shards ({report['shards']['built']} built, {report['shards']['reused']} "
             f"reused) of {report['files_listed']} files; skipped {skipped}: "
             f"{report['corrupt']['count']} undecodable, {report['too_short']['count']} shorter than "
             f"{report['settings']['min_seconds']} s, {len(report['missing'])} missing"]
    for item in report["corrupt"]["files"][:5]:
        lines.append(f"  undecodable: {item['file']}: {item['reason']}")
    lines.append(f"report: {os.path.join(out_dir, report['split'] + REPORT_SUFFIX)}; train with "
                 f"--config.data.train_shards={out_dir}")
    return lines
