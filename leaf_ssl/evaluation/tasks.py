"""The probe task registry: where labelled clips come from, split into train and test.

Task names (`--task`):

* ``demo:<corpus>/<task>`` or ``demo:<corpus>/tasks/<task>``: a task of the demo corpus
  (`python -m leaf_ssl.data.demo`); a bare ``<task>`` with ``--data_dir <corpus>`` means the same.
* ``folder:<dir>``: audio files in one sub-folder per class (the folder name is the label), at any
  depth below it. If ``<dir>/train`` and ``<dir>/test`` exist, they are the splits (each with class
  sub-folders; the classes are the train split's); otherwise each file goes to test when the first
  8 hex digits of the SHA-1 of its path relative to ``<dir>`` are 0 mod 5 (about 20%): a split that
  never changes for a file when others are added or removed.
* ``csv:<file.csv>``: a header row with ``path`` and ``label`` columns and optionally ``split``
  (train | test; otherwise the hash split above). Paths are relative to the CSV's folder. Several
  labels separated by ``;`` make the task multi-label (scored by mAP).
* a TFDS task (``speech_commands``, ``crema_d``, ``nsynth_instrument``, ``nsynth_pitch``,
  ``voxforge``, ``voxceleb``, ``librispeech_speaker``; ``tfds:`` prefix optional), read from
  ``--tfds_data_dir`` with ``download=False``: nothing is ever fetched from the network.

Files of any format libsndfile reads, any rate and channel count are decoded to 16 kHz mono
(`leaf_ssl.data.audio`); unreadable, empty or non-finite files are skipped and counted, as are
files without an audio extension, clips without a label and test clips of classes the train split
lacks. Every skip is listed in the probe's report.
"""
from __future__ import annotations

import abc
import csv
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from leaf_ssl.data.audio import AUDIO_EXTENSIONS, BadAudioError, decode_audio, prepare_waveform

SPLITS = ("train", "test")
MAX_LISTED_SKIPS = 200


class TaskError(ValueError):
    """A task name that does not exist, or a task whose data is absent or unusable."""


class LabelledClip(NamedTuple):
    """A decoded clip: id, 16 kHz mono float32 waveform, class indices."""
    id: str
    waveform: np.ndarray
    labels: tuple[int, ...]


class SkipLog:
    """Clips left out of a split: counted by reason, the first `MAX_LISTED_SKIPS` listed by name."""

    def __init__(self):
        self.by_reason: Counter[str] = Counter()
        self.items: list[dict] = []

    def add(self, item: str, reason: str) -> None:
        self.by_reason[reason] += 1
        if len(self.items) < MAX_LISTED_SKIPS:
            self.items.append({"item": item, "reason": reason})

    @property
    def count(self) -> int:
        return sum(self.by_reason.values())

    def summary(self) -> dict:
        return {"count": self.count, "by_reason": dict(self.by_reason), "items": self.items}


class Task(abc.ABC):
    """A labelled task with a train and a test split.

    Attributes:
      name: short name for reports and file names, e.g. 'keyword'.
      spec: the full, resolved task name (absolute paths), part of the embedding cache key.
      classes: class names; index i is label i.
      multi_label: clips may have several labels (scored by mAP instead of accuracy).
    """

    name: str
    spec: str
    classes: list[str]
    multi_label: bool

    @abc.abstractmethod
    def clips(self, split: str, skips: SkipLog) -> Iterator[LabelledClip]:
        """The split's usable clips, in a fixed order; what is left out goes to `skips`."""

    def num_clips(self, split: str) -> int | None:
        """The split's clip count when known without reading it (for progress ETAs)."""
        return None

    def fingerprint(self) -> str:
        """Changes when the task's data changes (part of the embedding cache key)."""
        return ""


class DemoTask(Task):
    """A task of the demo corpus: `<task_dir>/{train,test}-*.tfrecord` and `task.json`."""

    def __init__(self, task_dir: Path):
        info_path = task_dir / "task.json"
        if not info_path.is_file():
            raise TaskError(f"{task_dir} is not a demo corpus task (no task.json); build the corpus with "
                            f"python -m leaf_ssl.data.demo --out DIR")
        self.info = json.loads(info_path.read_text())
        self.task_dir = task_dir.resolve()
        self.name = self.info["name"]
        self.spec = f"demo:{self.task_dir}"
        self.classes = list(self.info["classes"])
        self.multi_label = bool(self.info.get("multi_label", False))

    def clips(self, split, skips):
        from leaf_ssl.data import records  # TensorFlow is loaded only for the tasks that need it
        reasons: Counter[str] = Counter()
        for clip in records.read_clips(str(self.task_dir / f"{split}-*{records.SHARD_SUFFIX}"), skipped=reasons):
            labels = tuple(int(label) for label in clip.labels)
            if not labels:
                skips.add(clip.id, "no label")
                continue
            yield LabelledClip(clip.id, clip.waveform, labels)
        for reason, count in reasons.items():
            for _ in range(count):
                skips.add(f"{self.task_dir}/{split}", f"corrupt record: {reason}")

    def num_clips(self, split):
        return self.info.get("splits", {}).get(split, {}).get("clips")

    def fingerprint(self):
        return _files_fingerprint(sorted(self.task_dir.glob("*")), self.task_dir)


class _Entry(NamedTuple):
    path: Path
    labels: tuple[str, ...]
    split: str


class AudioFilesTask(Task):
    """Labelled audio files (from a folder tree or a CSV), decoded on the fly."""

    def __init__(self, name: str, spec: str, root: Path, entries: list[_Entry], ignored: list[tuple[str, str]]):
        train_classes = sorted({label for entry in entries if entry.split == "train" for label in entry.labels})
        if not train_classes:
            raise TaskError(f"task {spec}: no labelled audio file in the train split")
        if len(train_classes) < 2:
            raise TaskError(f"task {spec}: the train split has one class ({train_classes[0]!r}); "
                            f"a probe task needs at least two")
        if not any(entry.split == "test" for entry in entries):
            raise TaskError(f"task {spec}: no audio file in the test split")
        self.name, self.spec, self.root = name, spec, root
        self.classes = train_classes
        self.multi_label = any(len(entry.labels) > 1 for entry in entries)
        self.entries = entries
        self.ignored = ignored  # files seen but never decoded: (path, reason), reported in train's skips

    def clips(self, split, skips):
        if split == "train":
            for item, reason in self.ignored:
                skips.add(item, reason)
        index = {name: i for i, name in enumerate(self.classes)}
        for entry in self.entries:
            if entry.split != split:
                continue
            relative = str(entry.path.relative_to(self.root)) if entry.path.is_relative_to(self.root) else str(entry.path)
            unknown = [label for label in entry.labels if label not in index]
            if unknown:
                skips.add(relative, f"class {unknown[0]!r} not in the train split")
                continue
            if not entry.path.is_file():  # a CSV row naming a file that is not there
                skips.add(relative, "file not found")
                continue
            try:
                waveform = decode_audio(entry.path)
            except BadAudioError as error:
                skips.add(relative, error.reason.split(":")[0])  # 'unreadable', 'empty', 'non-finite samples'
                continue
            yield LabelledClip(relative, waveform, tuple(index[label] for label in entry.labels))

    def num_clips(self, split):
        return sum(entry.split == split for entry in self.entries)

    def fingerprint(self):
        return _files_fingerprint([entry.path for entry in self.entries], self.root,
                                  extra=[(str(e.path), e.labels, e.split) for e in self.entries])


def folder_task(root: Path) -> AudioFilesTask:
    """`folder:<dir>`: class sub-folders, explicit train/test or the hash split."""
    root = root.resolve()
    if not root.is_dir():
        raise TaskError(f"task folder {root} does not exist")
    explicit_splits = all((root / split).is_dir() for split in SPLITS)
    split_roots = {split: root / split for split in SPLITS} if explicit_splits else {None: root}
    entries, ignored = [], []
    for split, split_root in split_roots.items():
        for folder in sorted(p for p in split_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not any(p.is_file() for p in folder.rglob("*")):
                ignored.append((str(folder.relative_to(root)) + os.sep, "empty class folder"))
        for path in sorted(p for p in split_root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            relative = path.relative_to(split_root)
            if len(relative.parts) < 2:
                ignored.append((str(path.relative_to(root)), "not in a class sub-folder"))
            elif path.suffix.lower() not in AUDIO_EXTENSIONS:
                ignored.append((str(path.relative_to(root)), "not an audio file extension"))
            else:
                entries.append(_Entry(path, (relative.parts[0],), split or hash_split(str(path.relative_to(root)))))
    if not entries:
        raise TaskError(f"task folder {root} holds no audio files in class sub-folders "
                        f"(expected {root}/<class>/<file> or {root}/{{train,test}}/<class>/<file>)")
    return AudioFilesTask(root.name, f"folder:{root}", root, entries, ignored)


def csv_task(csv_path: Path) -> AudioFilesTask:
    """`csv:<file>`: rows of path, label (';'-separated for several), optional split."""
    csv_path = csv_path.resolve()
    if not csv_path.is_file():
        raise TaskError(f"task CSV {csv_path} does not exist")
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: a byte-order mark is no header
        rows = list(csv.DictReader(handle))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise TaskError(f"task CSV {csv_path} needs a header row with 'path' and 'label' columns (and optionally 'split')")
    entries, ignored = [], []
    for line, row in enumerate(rows, start=2):
        if None in row:  # DictReader files the cells past the header under None: its columns are shifted
            ignored.append((f"line {line}: {row['path']}", "more fields than the header (an unquoted comma?)"))
            continue
        path = csv_path.parent / row["path"].strip()
        labels = tuple(label.strip() for label in (row["label"] or "").split(";") if label.strip())
        split = (row.get("split") or "").strip() or hash_split(row["path"].strip())
        if split not in SPLITS:
            raise TaskError(f"{csv_path} line {line}: split {split!r} is not one of {SPLITS}")
        if not labels:
            ignored.append((row["path"], "no label"))
        else:
            entries.append(_Entry(path, labels, split))
    return AudioFilesTask(csv_path.stem, f"csv:{csv_path}", csv_path.parent, entries, ignored)


def hash_split(relative_path: str) -> str:
    """'test' for about one file in five, decided by the file's own path only."""
    digest = hashlib.sha1(relative_path.replace(os.sep, "/").encode("utf-8")).hexdigest()
    return "test" if int(digest[:8], 16) % 5 == 0 else "train"


class TfdsTaskSpec(NamedTuple):
    dataset: str              # TFDS name, with config: 'nsynth/full'
    label_key: str            # feature path, '/'-separated for nested features
    train_split: str
    test_split: str
    manual_download: bool = False  # the dataset needs files fetched by hand first
    dense_labels: bool = False     # raw ids (e.g. speaker ids): mapped to 0..n-1 in train order


TFDS_TASKS = {
    "speech_commands": TfdsTaskSpec("speech_commands", "label", "train", "test"),
    "crema_d": TfdsTaskSpec("crema_d", "label", "train", "test"),
    "nsynth_instrument": TfdsTaskSpec("nsynth/full", "instrument/family", "train", "test"),
    "nsynth_pitch": TfdsTaskSpec("nsynth/full", "pitch", "train", "test"),
    "voxforge": TfdsTaskSpec("voxforge", "label", "train", "test", manual_download=True),
    "voxceleb": TfdsTaskSpec("voxceleb", "label", "train", "test", manual_download=True),
    "librispeech_speaker": TfdsTaskSpec("librispeech", "speaker_id", "train_clean100[:80%]",
                                        "train_clean100[80%:]", dense_labels=True),
}


class TfdsTask(Task):
    """A TFDS dataset already prepared in `data_dir` (never downloaded here).

    With `dense_labels`, `classes` is complete only after the train split has been read; test
    clips of ids the train split lacks are skipped.
    """

    def __init__(self, name: str, spec: TfdsTaskSpec, data_dir: str | None):
        self.name, self.task_spec = name, spec
        self.data_dir = _prepared_tfds_dir(name, spec, data_dir)
        import tensorflow_datasets as tfds
        self.builder = tfds.builder(spec.dataset, data_dir=str(self.data_dir), try_gcs=False)
        self.spec = f"tfds:{name}@{self.data_dir}"
        self.multi_label = False
        feature = self._feature(self.builder.info.features, spec.label_key)
        self.classes = [] if spec.dense_labels else list(getattr(feature, "names", None) or
                                                        [str(i) for i in range(feature.num_classes)])
        self._dense_index: dict[int, int] = {}

    @staticmethod
    def _feature(features, key_path: str):
        for key in key_path.split("/"):
            features = features[key]
        return features

    def clips(self, split, skips):
        import tensorflow_datasets as tfds
        audio_feature = self.builder.info.features["audio"]
        sample_rate = int(getattr(audio_feature, "sample_rate", None) or 16000)
        split_name = self.task_spec.train_split if split == "train" else self.task_spec.test_split
        dataset = self.builder.as_dataset(split=split_name, shuffle_files=False)
        for index, example in enumerate(tfds.as_numpy(dataset)):
            clip_id = f"{split_name}/{index}"
            label = int(self._feature(example, self.task_spec.label_key))
            if self.task_spec.dense_labels:
                if label not in self._dense_index:
                    if split != "train":
                        skips.add(clip_id, "label id not in the train split")
                        continue
                    self._dense_index[label] = len(self.classes)
                    self.classes.append(str(label))
                label = self._dense_index[label]
            samples = np.asarray(example["audio"])
            if np.issubdtype(samples.dtype, np.integer):  # TFDS stores 16-bit PCM in int64
                samples = samples.astype(np.float32) / 32768.0
            try:
                yield LabelledClip(clip_id, prepare_waveform(samples, sample_rate, source=clip_id), (label,))
            except BadAudioError as error:
                skips.add(clip_id, error.reason)

    def num_clips(self, split):
        split_name = self.task_spec.train_split if split == "train" else self.task_spec.test_split
        try:
            return self.builder.info.splits[split_name].num_examples
        except (KeyError, ValueError):
            return None

    def fingerprint(self):
        return str(self.builder.info.version)


def _prepared_tfds_dir(name: str, spec: TfdsTaskSpec, data_dir: str | None) -> Path:
    """`data_dir` if it holds a prepared copy of the dataset; otherwise a TaskError saying how to
    prepare it. Checked on disk, before TFDS runs at all, because TFDS looks for absent data on
    the network and can hang for minutes where there is none."""
    base = Path(data_dir or "~/tensorflow_datasets").expanduser()
    dataset_dir = base / spec.dataset
    if list(dataset_dir.glob("*/dataset_info.json")):
        return base
    manual = (" It needs files downloaded by hand first: see https://www.tensorflow.org/datasets/catalog/"
              f"{spec.dataset.split('/')[0]} (put them in <tfds_data_dir>/downloads/manual).") if spec.manual_download else ""
    raise TaskError(
        f"TFDS task {name!r} needs the dataset {spec.dataset!r} prepared in {base}, and it is not "
        f"there (no {dataset_dir}/<version>/dataset_info.json). Prepare it once on a machine with network access:\n"
        f"  tfds build {spec.dataset} --data_dir {base}\n"
        f"then pass --tfds_data_dir {base}.{manual}")


def resolve_task(name: str, *, data_dir: str | None = None, tfds_data_dir: str | None = None) -> Task:
    """The task `name` names (see the module docstring); TaskError listing the valid names otherwise."""
    kind, separator, argument = name.partition(":")
    if separator and kind == "demo":
        path = Path(argument).expanduser()
        for candidate in (path, path.parent / "tasks" / path.name):  # a task folder, or <corpus>/<task>
            if (candidate / "task.json").is_file():
                return DemoTask(candidate)
        raise TaskError(f"no demo task at {path}: expected {path}/task.json or {path.parent}/tasks/{path.name}/task.json")
    if separator and kind == "folder":
        return folder_task(Path(argument).expanduser())
    if separator and kind == "csv":
        return csv_task(Path(argument).expanduser())
    tfds_name = argument if separator and kind == "tfds" else name
    if tfds_name in TFDS_TASKS:
        return TfdsTask(tfds_name, TFDS_TASKS[tfds_name], tfds_data_dir)
    if not separator and data_dir and (Path(data_dir) / "tasks" / name / "task.json").is_file():
        return DemoTask(Path(data_dir) / "tasks" / name)
    demo_tasks = sorted(p.parent.name for p in Path(data_dir).glob("tasks/*/task.json")) if data_dir else []
    raise TaskError(
        f"unknown task {name!r}. Valid: demo:<corpus>/<task>, folder:<dir>, csv:<file.csv>, "
        f"TFDS tasks {sorted(TFDS_TASKS)}"
        + (f", or a demo task of --data_dir {data_dir}: {demo_tasks}" if data_dir else
           ", or a demo task name with --data_dir <corpus>"))


def _files_fingerprint(paths, root: Path, extra=()) -> str:
    digest = hashlib.sha256()
    for path in paths:
        stat = path.stat() if path.exists() else None
        digest.update(f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}\n".encode())
    digest.update(json.dumps(list(extra), default=str).encode())
    return digest.hexdigest()
