"""Evaluation of a run's live parameters while it trains: `config.evals`, run by the training loop.

Each entry of `config.evals` is a dict {"evaluator": a name of `evaluators.EVALUATORS`, "task": a task
as the probe's --task takes it, "every_steps": N, and optionally "max_clips": the clips kept per
split (evenly spaced over the split; 0: all), "data_dir": the demo corpus of a bare demo task name
(by default the corpus the run trains on: the folder above `data.train_shards` when it holds the
demo corpus's corpus.json)}. At step 0, every N steps and at the last step, process 0 embeds the
kept clips with the current weights (inference mode, the probe's windows and features) and runs
the evaluator; the loop writes `eval/<task>/<evaluator>/<metric>` to metrics.jsonl and TensorBoard.
Tasks and evaluator names are resolved when the run starts, before anything compiles; the kept
clips are decoded once, at the first evaluation, and held in memory.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time

import jax
import ml_collections
from etils import epath
import numpy as np

from leaf_ssl.evaluation import cache, evaluators, tasks
from leaf_ssl.inference.features import make_variables_embed_fn
from leaf_ssl.model import build
from leaf_ssl.model.configuration import ConfigError

logger = logging.getLogger(__name__)

EVAL_FIELDS = ("evaluator", "task", "every_steps", "max_clips", "data_dir")


@dataclasses.dataclass(frozen=True)
class _Scheduled:
    evaluator: evaluators.Evaluator
    task: tasks.Task
    every_steps: int
    max_clips: int


class _HeldTask(tasks.Task):
    """Up to `max_clips` clips per split of `task`, evenly spaced over it, decoded once and held in memory;
    what the task itself skipped is counted in its log at that first read."""

    def __init__(self, task: tasks.Task, max_clips: int):
        self.name, self.spec, self.multi_label = task.name, task.spec, task.multi_label
        self.held, self.skips = {}, {}
        for split in tasks.SPLITS:
            self.skips[split] = tasks.SkipLog()
            clips = list(task.clips(split, self.skips[split]))
            keep = len(clips) if not max_clips else min(max_clips, len(clips))
            self.held[split] = [clips[i * len(clips) // keep] for i in range(keep)] if keep else []
        self.classes = list(task.classes)  # read after the splits: a dense-label task learns them from train

    def clips(self, split: str, skips: tasks.SkipLog):
        yield from self.held[split]

    def num_clips(self, split: str) -> int:
        return len(self.held[split])


class TrainingEvaluations:
    """The evaluations of `config.evals`: `resolve` finds their tasks (the loop calls it once the config and
    the shards are checked, before compiling), `due(step)` says which run after `step`, `run` runs them."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.scheduled: list[_Scheduled] = []

    def resolve(self) -> None:
        """Raises ConfigError naming the entry whose evaluator or task cannot be used."""
        corpus = _training_corpus(self.config.data.train_shards)
        self.scheduled = [_scheduled(entry, index, corpus) for index, entry in enumerate(self.config.get("evals", ()))]
        self.held: dict[tuple[str, int], _HeldTask] = {}

    @functools.cached_property
    def embed(self):
        """The model's embedding program, built at the first evaluation: after the loop has checked the config."""
        return make_variables_embed_fn(build.build_model(build.resolve_supervised_task(self.config),
                                                         data_parallel=False))

    def due(self, step: int, last_step: int) -> list[_Scheduled]:
        return [entry for entry in self.scheduled if step % entry.every_steps == 0 or step == last_step]

    def run(self, step: int, last_step: int, params, batch_stats) -> dict[str, float]:
        """{'eval/<task>/<evaluator>/<metric>': score, ..., 'eval_seconds': s} of the evaluations due."""
        due = self.due(step, last_step)
        if not due or jax.process_index() != 0:
            return {}
        started = time.perf_counter()
        # This process's copy of the replicated state, left on its device: every batch reuses it.
        variables = jax.tree.map(lambda x: x.addressable_data(0), {"params": params, "batch_stats": batch_stats})
        embed_batch = lambda waveforms: np.asarray(self.embed(variables, waveforms))
        embedded = {}  # a task evaluated twice at one step is embedded once
        record = {}
        for entry in due:
            key = (entry.task.spec, entry.max_clips)
            if key not in self.held:
                self.held[key] = _HeldTask(entry.task, entry.max_clips)
                held = self.held[key]
                logger.info("eval task %s: clips held: %s", entry.task.name, ", ".join(
                    f"{split} {len(clips)} ({held.skips[split].count} skipped)" for split, clips in held.held.items()))
            if key not in embedded:
                embedded[key] = cache.embed_task_with(embed_batch, self.held[key],
                                                      segment_samples=build.crop_samples(self.config), progress=False)
            evaluation = entry.evaluator.evaluate(embedded[key], entry.task.multi_label)
            record[f"eval/{entry.task.name}/{entry.evaluator.name}/{evaluation.metric}"] = float(
                np.mean(evaluation.scores))
        record["eval_seconds"] = time.perf_counter() - started
        logger.info("step %d | %s | %.1f s", step, " | ".join(
            f"{key[len('eval/'):]} {value:.3f}" for key, value in record.items() if key.startswith("eval/")),
                    record["eval_seconds"])
        return record


def _training_corpus(train_shards: str) -> str | None:
    """The demo corpus whose pretraining shards `train_shards` names (`<corpus>/pretrain`), if it is one."""
    folder = epath.Path(train_shards.split("*")[0].rstrip("/")) if train_shards else None
    for candidate in (folder, folder.parent if folder else None):
        if candidate is not None and (candidate / "corpus.json").exists():
            return str(candidate)
    return None


def _scheduled(entry, index: int, corpus: str | None) -> _Scheduled:
    entry = dict(entry)
    where = f"config.evals[{index}]"
    unknown = set(entry) - set(EVAL_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {list(EVAL_FIELDS)}")
    missing = {"evaluator", "task", "every_steps"} - set(entry)
    if missing:
        raise ConfigError(f"{where}: missing {sorted(missing)}")
    for field, least in (("every_steps", 1), ("max_clips", 0)):
        value = entry.get(field, least)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ConfigError(f"{where}.{field} must be an integer >= {least}, got {value!r}")
    try:
        evaluator = evaluators.make_evaluator(entry["evaluator"])
        task = tasks.resolve_task(entry["task"], data_dir=entry.get("data_dir") or corpus)
    except (ValueError, tasks.TaskError) as error:
        raise ConfigError(f"{where}: {error} (--config.evals='()' trains without evaluations)") from error
    return _Scheduled(evaluator, task, entry["every_steps"], entry.get("max_clips", 0))
