"""What a workdir keeps of earlier runs, and the one way it is ever set aside: moved, never deleted.

    <workdir>/metrics.jsonl, tensorboard/   the run's curves
    <workdir>/unreadable_checkpoints/       steps that failed to restore (`checkpointing`)
    <workdir>/previous_runs/<UTC time>/     what a fresh start or a resume moved out of the way
    <workdir>/run.json                      the run's identity: {"run_id": ...}, made when it starts

The run id is also in every checkpoint's meta, so results and caches of a run's step are keyed by
what the run is, not by where its folder lies (a copied or moved run keeps its cache and its row).

A run that finds no readable checkpoint but unreadable ones refuses to start from step 0 unless
asked (`--start_over`): training afresh would quietly replace what those checkpoints held. A
fresh start moves the earlier curves aside; a resume from an older step keeps a copy of the curves
it cuts (the steps after that one, which it logs again).
"""
from __future__ import annotations

import json
import time
import uuid

from etils import epath

from leaf_ssl.training.checkpointing import UNREADABLE_DIR, CheckpointError

RUN_FILE = "run.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
PREVIOUS_RUNS = "previous_runs"


def _aside_folder(workdir: epath.Path) -> epath.Path:
    folder = workdir / PREVIOUS_RUNS / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def records_up_to(path: epath.Path, last_step: int) -> list[str]:
    """The metrics lines of steps <= last_step in `path` (none if it does not exist): those logged after
    the checkpoint a run resumes from are logged again by the resumed run, and each step is recorded once."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line torn by a kill mid-write
            pass
    return kept


def refuse_silent_restart(workdir: epath.Path) -> None:
    """Raises CheckpointError when checkpoints of this workdir were unreadable and none is left."""
    folder = workdir / UNREADABLE_DIR
    lost = sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []
    if lost:
        raise CheckpointError(
            f"no readable checkpoint in {workdir / 'checkpoints'}, and {len(lost)} unreadable one(s) in "
            f"{folder} ({', '.join(lost)}): not starting over silently. To train from step 0 "
            f"in this workdir, run again with --start_over (the earlier metrics.jsonl and TensorBoard events "
            f"are then moved to {PREVIOUS_RUNS}/, not deleted)")


def move_earlier_curves_aside(workdir: epath.Path) -> epath.Path | None:
    """For a run starting at step 0: moves an earlier run's metrics.jsonl and TensorBoard events into
    previous_runs/<time>/; returns that folder, or None when there was nothing to move."""
    present = [workdir / name for name in (METRICS, TENSORBOARD, RUN_FILE) if (workdir / name).exists()]
    if not present:
        return None
    aside = _aside_folder(workdir)
    for path in present:
        path.rename(aside / path.name)
    return aside


def keep_curves_a_resume_cuts(workdir: epath.Path, resumed_step: int) -> epath.Path | None:
    """Copies metrics.jsonl into previous_runs/<time>/ when it holds steps after `resumed_step` (the
    resumed run logs those again); returns the copy's folder, or None when nothing is cut."""
    path = workdir / METRICS
    if not path.exists():
        return None
    text = path.read_text()
    if len(records_up_to(path, resumed_step)) == len(text.splitlines()):
        return None
    aside = _aside_folder(workdir)
    (aside / METRICS).write_text(text)
    return aside


def run_id(workdir: epath.Path) -> str:
    """The run's id from run.json, made (a random UUID) when the run has none: a new run, or one
    written before ids existed."""
    path = workdir / RUN_FILE
    if path.exists():
        return json.loads(path.read_text())["run_id"]
    identity = uuid.uuid4().hex
    path.write_text(json.dumps({"run_id": identity, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    return identity
