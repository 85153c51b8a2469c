"""What the demo corpus's audio sources share: the clip record, tool checks, splits, trimming.

Nothing here imports TensorFlow: these modules run in worker processes that only make audio.
"""
from __future__ import annotations

import shutil
import subprocess
import zlib
from typing import Callable, NamedTuple, Sequence

import numpy as np

TRAIN, TEST = "train", "test"
SPLITS = (TRAIN, TEST)

SILENCE_LEVEL = 10 ** (-50 / 20)
"""Samples below -50 dBFS count as silence when trimming clip edges."""
EDGE_MARGIN_SAMPLES = 800
"""Silence kept before the first and after the last loud sample: 50 ms at 16 kHz."""


class LabelledClip(NamedTuple):
    """One rendered clip: 16 kHz mono float32 waveform, class index, 'train' or 'test'."""

    id: str
    waveform: np.ndarray
    label: int
    split: str


class TaskPlan(NamedTuple):
    """What a source will make at a given scale.

    Attributes:
      classes: class names; a clip's label indexes this list.
      jobs: independent zero-argument callables (picklable) returning lists of `LabelledClip`.
      settings: every parameter that shapes the output (a changed value forces a rebuild).
      split_rule: how clips are assigned to train and test, for task.json.
    """

    classes: list[str]
    jobs: list[Callable[[], list[LabelledClip]]]
    settings: dict
    split_rule: str


class MissingToolError(RuntimeError):
    """A program or data package the demo corpus needs is not installed."""


def require_program(program: str, apt_package: str) -> str:
    """The path of `program`, or MissingToolError naming the apt package that provides it."""
    path = shutil.which(program)
    if path is None:
        raise MissingToolError(f"{program!r} not found: install it with `sudo apt-get install {apt_package}`")
    return path


def run_program(command: Sequence[str]) -> None:
    """Runs a command, turning a failure into an error that shows its stderr."""
    result = subprocess.run(list(command), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")


def is_test_item(index: int) -> bool:
    """Whether the `index`-th item of a sorted list of split units goes to test (every 5th, from the 3rd).

    A fixed stride rather than a hash: any list of 3 or more units puts at least one in test.
    """
    return index % 5 == 2


def stable_hash(text: str) -> int:
    """A hash that is the same in every process and run (unlike Python's salted `hash`)."""
    return zlib.crc32(text.encode("utf-8"))


def trim_silence(waveform: np.ndarray) -> np.ndarray:
    """Cuts leading and trailing silence, keeping a short margin; all-silent input gives an empty array."""
    loud = np.flatnonzero(np.abs(waveform) > SILENCE_LEVEL)
    if loud.size == 0:
        return waveform[:0]
    start = max(loud[0] - EDGE_MARGIN_SAMPLES, 0)
    return waveform[start : loud[-1] + 1 + EDGE_MARGIN_SAMPLES]
