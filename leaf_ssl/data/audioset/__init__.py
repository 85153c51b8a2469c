"""Prepares AudioSet clips you have downloaded as labelled 16 kHz shards, with a report.

    python -m leaf_ssl.data.audioset --segments balanced_train_segments.csv [unbalanced_train_segments.csv ...] \\
        --ontology ontology.json --audio_dir DIR --out DIR --num_shards N \\
        [--workers K] [--split_name train] [--min_seconds 1.0]
    python -m leaf_ssl.data.audioset --segments eval_segments.csv --split_name test ... (same --out)

1. Labels: class index = position in ontology.json over every entry (`audioset_metadata`), so
   train and eval prepared from the same ontology share one indexing; OUT/labels.json lists
   index, mid and name. A row's MIDs missing from the ontology are dropped and counted.
2. Rows: the CSVs' rows in the order given; a row whose clip (YTID and start) came before is a
   duplicate and is dropped (the first one is kept).
3. Files: one walk of --audio_dir indexes every audio file (wav, flac, ogg; m4a, opus, webm through ffmpeg); each row looks up the names a
   downloader may have given its clip (`audioset_files`: <ytid>, <ytid>_<start>,
   <ytid>_<start>_<end>, each optionally with a 'Y' prefix). Rows without a file are missing.
4. Shards: the k-th clip found (in row order) goes to shard k mod N, and one worker process
   writes one whole shard (`audioset_shards`), so the shards' bytes do not depend on --workers.
   Each clip is decoded, downmixed and resampled to 16 kHz mono and cut to its segment when the
   file holds the whole video. Unreadable, empty or NaN files are counted as corrupt; clips
   shorter than --min_seconds (default 1 s: at least one 0.96 s COLA crop and one 1 s probe
   segment without padding) as too short.
5. Resuming: a shard is written under a temporary name and renamed, then its report
   (OUT/reports/<shard>.json) marks it done; a rerun with the same rows, files and settings skips
   finished shards and rebuilds missing or damaged ones.

Layout of OUT (a local folder or a gs:// path):

* ``{split}-XXXXX-of-NNNNN.tfrecord``: clips as in `leaf_ssl.data.records`, id '<ytid>_<start>',
  labels = class indices; each with its ``.count`` sidecar;
* ``labels.json``: the class list (the same for every split);
* ``{split}_report.json``: counts of rows, duplicates, clips found, missing, corrupt (with files
  and reasons), too short, written, per label; ``{split}_missing_ytids.txt``: one missing YTID a line;
* ``task.json``: the folder as a labelled task, in the demo corpus's task format (name
  'audioset', classes = the ontology's names by index, multi_label true, one entry per split
  prepared so far with its clips and shard pattern). It is rebuilt from every
  ``{split}_report.json`` in OUT after each run, so splits prepared by separate runs, in any
  order, all appear in it. With splits named ``train`` and ``test`` (eval_segments.csv with
  ``--split_name test``) the folder is a probe task, ``python -m leaf_ssl.probe --task demo:OUT``
  (the probe reads local folders), and a supervised task folder
  (``--config.supervised.task_dir=OUT``, local or gs://);
* ``reports/``: one report per shard (the done-markers).

Shards of the same split with another shard count, and leftovers of interrupted writes, are
deleted at the start, so that ``OUT/{split}-*.tfrecord`` always names one consistent set.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from typing import Sequence

import tensorflow as tf

from leaf_ssl.data.audio import AUDIO_EXTENSIONS, SAMPLE_RATE
from leaf_ssl.data.audioset_files import AudioFileIndex
from leaf_ssl.data.audioset_metadata import (AudioSetError, Label, Segment, labels_document, read_ontology,
                                             read_segments)
from leaf_ssl.data.audioset_shards import (REPORTS_FOLDER, ClipPlan, build_or_reuse_shards, delete_stale_shards,
                                           merge_shard_reports, plan_shard, read_json, write_json)
from leaf_ssl.data.records import SHARD_SUFFIX, shard_name

logger = logging.getLogger(__name__)

DEFAULT_MIN_SECONDS = 1.0
LABELS_FILE = "labels.json"
TASK_FILE = "task.json"
TASK_NAME = "audioset"
REPORT_SUFFIX = "_report.json"
PROBE_SPLITS = ("train", "test")  # the split names the probe's task reader (DemoTask) looks for
SPLIT_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_LISTED_UNKNOWN_MIDS = 20


def prepare_audioset(
    segment_csvs: Sequence[str | os.PathLike],
    ontology: str | os.PathLike,
    audio_dir: str | os.PathLike,
    out_dir: str,
    num_shards: int,
    *,
    workers: int | None = None,
    split_name: str = "train",
    min_seconds: float = DEFAULT_MIN_SECONDS,
    progress: bool = True,
) -> dict:
    """Writes the split's shards, labels.json and report into `out_dir`; returns the report.

    Args:
      segment_csvs: AudioSet segment CSVs, read in this order.
      ontology: AudioSet's ontology.json; it alone decides the label indices.
      audio_dir: the downloaded clips, at any depth.
      out_dir: output folder (created; local or gs://).
      num_shards: shards of this split (use at least as many as training processes).
      workers: processes writing shards; default: the CPUs this process may use.
      split_name: shard file prefix and report name, e.g. 'train' or 'eval'.
      min_seconds: clips shorter than this are skipped as too short.
      progress: print a progress line with ETA to stderr.

    Raises:
      AudioSetError: a missing input, a malformed CSV row or ontology, a bad setting, an output
        folder prepared with another ontology, or no clip found at all.
    """
    _check_settings(num_shards, workers, split_name, min_seconds)
    labels = read_ontology(ontology)
    segments, rows_per_csv = [], {}
    for path in segment_csvs:
        rows = read_segments(path)
        rows_per_csv[os.fspath(path)] = len(rows)
        segments.extend(rows)
    if not segments:
        raise AudioSetError(f"the segment CSVs {list(rows_per_csv)} hold no rows")
    audio_dir = os.fspath(audio_dir)
    if not os.path.isdir(audio_dir):
        raise AudioSetError(f"audio folder {audio_dir!r} does not exist")

    unique_segments, duplicate_rows = _drop_duplicates(segments)
    index_of_mid = {label.mid: label.index for label in labels}
    unknown_mids = Counter(mid for segment in unique_segments for mid in segment.mids if mid not in index_of_mid)
    rows_with_unknown_mids = sum(any(mid not in index_of_mid for mid in segment.mids) for segment in unique_segments)
    files = AudioFileIndex(audio_dir)
    found, missing, rows_with_several_files = _find_clips(unique_segments, files, index_of_mid)
    if not found:
        raise AudioSetError(_nothing_found_message(files, unique_segments))
    if len(found) < num_shards:
        logger.warning("%d clips for %d shards: some shards will be empty", len(found), num_shards)

    _prepare_out_dir(out_dir, split_name, num_shards, labels)
    jobs = [plan_shard(shard_name(split_name, i, num_shards), out_dir, os.path.abspath(audio_dir),
                       found[i::num_shards], min_seconds)
            for i in range(num_shards)]
    shard_reports, shards = build_or_reuse_shards(jobs, workers, f"AudioSet {split_name}", progress)

    report = {
        "split": split_name,
        "settings": {"num_shards": num_shards, "min_seconds": min_seconds, "sample_rate": SAMPLE_RATE,
                     "audio_dir": os.path.abspath(audio_dir)},
        "rows": len(segments),
        "rows_per_csv": rows_per_csv,
        "duplicate_rows": duplicate_rows,
        "unknown_label_mids": {"occurrences": sum(unknown_mids.values()), "rows": rows_with_unknown_mids,
                               "mids": dict(unknown_mids.most_common())},
        "clips_found": len(found),
        "rows_with_several_files": rows_with_several_files,
        "missing": {"count": len(missing), "list": f"{split_name}_missing_ytids.txt"},
        **merge_shard_reports(shard_reports, labels),
        "shards": shards,
        "other_files_in_audio_dir": dict(files.other_extensions.most_common()),
    }
    missing_ytids = "".join(f"{ytid}\n" for ytid in dict.fromkeys(segment.ytid for segment in missing))
    with tf.io.gfile.GFile(os.path.join(out_dir, report["missing"]["list"]), "w") as file:
        file.write(missing_ytids)
    write_json(os.path.join(out_dir, split_name + REPORT_SUFFIX), report)
    write_task_json(out_dir, labels)
    return report


def _check_settings(num_shards, workers, split_name, min_seconds) -> None:
    if num_shards < 1:
        raise AudioSetError(f"--num_shards must be at least 1, got {num_shards}")
    if workers is not None and workers < 1:
        raise AudioSetError(f"--workers must be at least 1, got {workers}")
    if not SPLIT_NAME_PATTERN.fullmatch(split_name):
        raise AudioSetError(f"--split_name {split_name!r} must be letters, digits, '_', '.' or '-'")
    if not min_seconds >= 0:
        raise AudioSetError(f"--min_seconds must be >= 0, got {min_seconds}")


def _drop_duplicates(segments: list[Segment]) -> tuple[list[Segment], int]:
    """The rows whose clip id was not seen before (first wins), and the number dropped."""
    first_rows = {}
    for segment in segments:
        first_rows.setdefault(segment.clip_id, segment)
    return list(first_rows.values()), len(segments) - len(first_rows)


def _find_clips(segments: list[Segment], files: AudioFileIndex,
                index_of_mid: dict[str, int]) -> tuple[list[ClipPlan], list[Segment], int]:
    """The clips to write (in row order), the segments without a file, and the rows with several files."""
    found, missing, rows_with_several_files = [], [], 0
    for segment in segments:
        paths = files.find(segment)
        if not paths:
            missing.append(segment)
            continue
        rows_with_several_files += len(paths) > 1
        labels = tuple(sorted({index_of_mid[mid] for mid in segment.mids if mid in index_of_mid}))
        found.append(ClipPlan(segment.clip_id, os.path.relpath(paths[0], files.root), labels,
                              segment.start, segment.end, os.path.getsize(paths[0])))
    return found, missing, rows_with_several_files


def _nothing_found_message(files: AudioFileIndex, segments: list[Segment]) -> str:
    example = segments[0]
    message = (
        f"no file under {files.root!r} matches any of the {len(segments)} segments. Clips must be named after "
        f"their YouTube id, e.g. for {example.ytid} at {example.start_text} s: {example.ytid}.wav, "
        f"{example.ytid}_{example.start_text}.flac, {example.ytid}_{example.start_text}_{example.end_text}.ogg "
        f"or Y{example.ytid}.wav (extensions {', '.join(sorted(AUDIO_EXTENSIONS))}). The folder holds {files.num_files} "
        f"audio file(s) with other names"
    )
    if files.other_extensions:
        others = ", ".join(f"{count} {extension}" for extension, count in files.other_extensions.most_common(5))
        message += f", and files that are not read: {others} (convert audio to .flac or .wav, e.g. with ffmpeg)"
    return message + "."


def _prepare_out_dir(out_dir: str, split_name: str, num_shards: int, labels: list[Label]) -> None:
    """Creates `out_dir`, writes or checks labels.json, and deletes this split's stale files."""
    tf.io.gfile.makedirs(os.path.join(out_dir, REPORTS_FOLDER))
    labels_path = os.path.join(out_dir, LABELS_FILE)
    document, existing = labels_document(labels), read_json(labels_path)
    if existing is not None and existing.get("labels") != document["labels"]:
        raise AudioSetError(f"{labels_path} holds another label list: {out_dir!r} was prepared with a different "
                            f"ontology. Use another --out, or delete it to start over")
    if existing != document:
        write_json(labels_path, document)
    delete_stale_shards(out_dir, split_name, num_shards)


def write_task_json(out_dir: str, labels: list[Label]) -> None:
    """Writes OUT/task.json, the folder as a labelled task, from the split reports in it.

    The format is the demo corpus's (`leaf_ssl.data.demo`), read by the probe's task registry and
    the supervised baseline: name, classes, multi_label, and per split its clip count and seconds,
    plus where its shards are. Every split whose ``{split}_report.json`` is in OUT is listed, so
    the file is complete whichever split was prepared last.
    """
    splits = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(out_dir, "*" + REPORT_SUFFIX))):
        report = read_json(path)
        if report is None:
            continue  # torn by a crash while being written: its split is rebuilt (and listed) by a rerun
        split = report["split"]
        splits[split] = {
            "clips": report["written"]["clips"],
            "seconds": report["written"]["seconds"],
            "shards": f"{split}-*{SHARD_SUFFIX}",
            "num_shards": report["shards"]["count"],
            "segment_csvs": [os.path.basename(csv_path) for csv_path in report["rows_per_csv"]],
        }
    task = {
        "name": TASK_NAME,
        "classes": [label.name for label in labels],
        "num_classes": len(labels),
        "multi_label": True,
        "sample_rate": SAMPLE_RATE,
        "split_rule": "AudioSet's own: each split holds the clips of the segment CSVs it was prepared from "
                      "(eval_segments.csv for test)",
        "splits": splits,
    }
    write_json(os.path.join(out_dir, TASK_FILE), task)


def summary_lines(report: dict, out_dir: str) -> list[str]:
    """The report in a few printed lines."""
    split = report["split"]
    lines = [
        f"AudioSet {split}: {report['rows']} rows ({report['duplicate_rows']} duplicate), "
        f"{report['clips_found']} clips found, {report['missing']['count']} missing "
        f"(listed in {os.path.join(out_dir, report['missing']['list'])})",
        f"written: {report['written']['clips']} clips ({report['written']['hours']:.2f} h) in "
        f"{report['shards']['count']} shards ({report['shards']['built']} built, {report['shards']['reused']} reused); "
        f"corrupt: {report['corrupt']['count']}{_by_reason(report['corrupt']['by_reason'])}; too short "
        f"(< {report['settings']['min_seconds']} s): {report['too_short']['count']}; cut from whole videos: "
        f"{report['cut_to_segment']}",
    ]
    unknown = report["unknown_label_mids"]
    if unknown["occurrences"]:
        listed = ", ".join(list(unknown["mids"])[:MAX_LISTED_UNKNOWN_MIDS])
        lines.append(f"label MIDs not in the ontology (dropped): {unknown['occurrences']} in {unknown['rows']} rows: "
                     f"{listed}")
    top = sorted(report["label_counts"], key=lambda label: -label["clips"])[:10]
    if top:
        lines.append("most frequent labels: " + ", ".join(f"{label['name']} {label['clips']}" for label in top))
    lines.append(f"report: {os.path.join(out_dir, split + '_report.json')}")
    return lines


def task_lines(task: dict, out_dir: str) -> list[str]:
    """What task.json makes of the folder: a probe task once both of the probe's splits are there."""
    prepared = sorted(task["splits"])
    missing = [split for split in PROBE_SPLITS if split not in task["splits"]]
    if missing:
        return [f"{os.path.join(out_dir, TASK_FILE)}: splits {prepared}; to probe on AudioSet, also prepare "
                f"{' and '.join(repr(split) for split in missing)} here (eval_segments.csv as --split_name test)"]
    return [f"{os.path.join(out_dir, TASK_FILE)}: splits {prepared}; probe task: python -m leaf_ssl.probe "
            f"--task demo:{out_dir}; supervised: --config.supervised.task_dir={out_dir}"]


def _by_reason(counts: dict) -> str:
    return " (" + ", ".join(f"{reason} {count}" for reason, count in counts.items()) + ")" if counts else ""
