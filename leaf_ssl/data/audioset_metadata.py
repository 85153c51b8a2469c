"""AudioSet's metadata: the ontology (class ids and names) and the segment CSVs (what to cut, with labels).

Label indexing: class index i is the i-th entry of ``ontology.json``, in the file's order, over
*every* entry (abstract and blacklisted ones included, so 632 classes for the official ontology).
The index depends on the ontology alone, never on which labels a segment CSV happens to use, so
the train and eval splits prepared from the same ontology always agree. Classes that no clip
carries (the abstract ones) cost a few unused outputs; mAP skips classes without positives.

Segment CSVs (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
``eval_segments.csv``): lines starting with ``#`` are comments (the header among them); every
other non-blank line is ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``, with a space after
each separating comma and the label list quoted because it holds commas.
"""
from __future__ import annotations

import csv
import json
import math
import os
import re
from typing import NamedTuple

YTID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
"""The characters of a YouTube id ('-' and '_' included, so ids are never split on them)."""


class AudioSetError(ValueError):
    """Unusable input to the AudioSet preparation: a missing file, a malformed row, a bad setting."""


class Label(NamedTuple):
    """One class: its index in the label vector, its ontology MID (e.g. '/m/09x0r') and its name."""

    index: int
    mid: str
    name: str


class Segment(NamedTuple):
    """One CSV row: a YouTube clip's segment and its label MIDs.

    Attributes:
      ytid: the YouTube id.
      start, end: the segment's bounds in seconds within the video.
      start_text, end_text: the bounds as the CSV spells them (e.g. '30.000'), which some
        downloaders copy into file names.
      mids: the label MIDs in the order the row lists them.
      where: 'file:line', for messages.
    """

    ytid: str
    start: float
    end: float
    start_text: str
    end_text: str
    mids: tuple[str, ...]
    where: str

    @property
    def clip_id(self) -> str:
        """The clip's id in the shards: '<ytid>_<start>', e.g. '--PJHxphWEs_30' or 'abc_12.5'."""
        return f"{self.ytid}_{compact_seconds(self.start)}"


def compact_seconds(seconds: float) -> str:
    """Seconds with at most millisecond precision and no trailing zeros: 30.0 -> '30', 12.50 -> '12.5'."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def read_ontology(path: str | os.PathLike) -> list[Label]:
    """Reads ``ontology.json`` (a list of objects with 'id' and 'name') into labels in file order.

    Raises:
      AudioSetError: the file is missing, is not such a list, or repeats an id.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioSetError(f"ontology file {path!r} does not exist (AudioSet's ontology.json)")
    try:
        with open(path, encoding="utf-8") as file:
            entries = json.load(file)
    except ValueError as error:
        raise AudioSetError(f"ontology file {path!r} is not valid JSON: {error}") from error
    if not isinstance(entries, list) or not entries:
        raise AudioSetError(f"ontology file {path!r} must hold a non-empty JSON list of classes")
    labels, seen = [], set()
    for position, entry in enumerate(entries):
        if not (isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("name"), str)):
            raise AudioSetError(f"ontology file {path!r}: entry {position} lacks a string 'id' and 'name'")
        if entry["id"] in seen:
            raise AudioSetError(f"ontology file {path!r}: id {entry['id']!r} appears twice")
        seen.add(entry["id"])
        labels.append(Label(position, entry["id"], entry["name"]))
    return labels


def read_segments(path: str | os.PathLike) -> list[Segment]:
    """Reads one segment CSV; rows keep the file's order.

    Raises:
      AudioSetError: the file is missing, or a row is malformed (the message names file and line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioSetError(f"segments CSV {path!r} does not exist")
    segments = []
    with open(path, encoding="utf-8", newline="") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            segments.append(_parse_row(line, f"{path}:{line_number}"))
    return segments


def _parse_row(line: str, where: str) -> Segment:
    # Each line is parsed on its own (not by one csv.reader over the file) so that errors carry
    # the physical line number; skipinitialspace handles the space before the quoted label list.
    fields = next(csv.reader([line], skipinitialspace=True), [])
    if len(fields) != 4:
        raise AudioSetError(f"{where}: expected 4 fields (YTID, start_seconds, end_seconds, \"labels\"), "
                            f"got {len(fields)}: {line.strip()!r}")
    ytid, start_text, end_text, label_field = (field.strip() for field in fields)
    if not YTID_PATTERN.fullmatch(ytid):
        raise AudioSetError(f"{where}: {ytid!r} is not a YouTube id (letters, digits, '-' and '_')")
    start, end = _seconds(start_text, where), _seconds(end_text, where)
    if not 0 <= start < end:
        raise AudioSetError(f"{where}: the segment [{start_text}, {end_text}] is not a non-empty range of seconds")
    mids = tuple(mid.strip() for mid in label_field.split(",") if mid.strip())
    return Segment(ytid, start, end, start_text, end_text, mids, where)


def _seconds(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise AudioSetError(f"{where}: {text!r} is not a number of seconds")
    return value


def labels_document(labels: list[Label]) -> dict:
    """The content of ``labels.json``: how indices were assigned and index -> mid -> name."""
    return {
        "ordering": "ontology.json order over every entry: index = position in the ontology",
        "num_classes": len(labels),
        "labels": [label._asdict() for label in labels],
    }
