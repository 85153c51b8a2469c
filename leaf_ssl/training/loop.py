"""The training loop as a library call: `run(config, workdir)`.

COLA pretraining, or the supervised baseline for a supervised config, through the same step.
Resumes from the newest readable checkpoint in the workdir. Process 0 logs loss, learning rate,
throughput and ETA, writes TensorBoard events and `metrics.jsonl` in the workdir. The workdir
and the shards may be on cloud storage (gs://...). Every process of a multi-process run calls
`run` with the same arguments; each reads its own shards and all write the checkpoints together.
The command line over it is `leaf_ssl.cli.train` (`python -m leaf_ssl.train`).
"""
import contextlib
from collections.abc import Callable, Iterable
import json
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from leaf_ssl.data import sharding, shards
from leaf_ssl.model import build, validation
from leaf_ssl.model.objectives import objective_of
from leaf_ssl.progress import format_duration
from leaf_ssl.training import (checkpointing, diagnostics, distributed, optim, preemption, run_history, trainer,
                               workdir_lock)
from leaf_ssl.training.batches import input_batches
from leaf_ssl.training.summaries import FILTER_EVERY_LOG_LINES, TrainingSummaries
# (config, *, per_process_batch, crop_samples, start_batch) -> iterable of NumPy batches
BatchSource = Callable[..., Iterable[dict]]


class _MetricsLog:
    """Averages the steps' metrics over each logging interval; writes only on process 0.

    Metrics stay on device between log lines, so the loop never waits for a step to finish
    except once per interval.
    """

    def __init__(self, workdir, total_steps: int, crops_per_step: int, start_step: int,
                 summaries: TrainingSummaries):
        self.enabled = jax.process_index() == 0
        self.total_steps = total_steps
        self.crops_per_step = crops_per_step
        self.pending: list[dict] = []
        self.consecutive_nonfinite = 0  # non-finite steps at the end of what was fetched so far
        self.last_good_step: int | None = None  # the last step whose update was checked finite and applied
        self.history: list[dict] = []
        self.restart_interval()
        self.jsonl = workdir / "metrics.jsonl"
        self.lines = run_history.records_up_to(self.jsonl, start_step) if self.enabled else []
        self.summaries = summaries

    def restart_interval(self) -> None:
        """Starts timing afresh, e.g. after the first step, which includes compilation."""
        self.interval_start = time.perf_counter()
        self.timed_steps = 0

    def add(self, metrics: dict) -> None:
        self.pending.append(metrics)
        self.timed_steps += 1

    def flush(self, step: int) -> dict | None:
        if not self.pending:
            return None
        fetched = jax.device_get(self.pending)
        for offset, metrics in enumerate(fetched):
            if metrics["finite"]:
                self.consecutive_nonfinite = 0
                self.last_good_step = step - len(fetched) + offset + 1
            else:
                self.consecutive_nonfinite += 1
        record = {key: float(np.mean([m[key] for m in fetched])) for key in fetched[0]}
        record["skipped"] = int(sum(m["finite"] == 0 for m in fetched))
        record["step"] = step
        # No rate when the interval held only the first step (timed apart: it includes compilation).
        speed = "rate not measured yet"
        if self.timed_steps:
            steps_per_second = self.timed_steps / max(time.perf_counter() - self.interval_start, 1e-9)
            record.update(steps_per_second=steps_per_second, crops_per_second=steps_per_second * self.crops_per_step)
            eta = format_duration((self.total_steps - step) / steps_per_second)
            speed = f"{steps_per_second:.2f} steps/s | {record['crops_per_second']:.0f} crops/s | ETA {eta}"
        self.history.append(record)
        self.pending = []
        if self.enabled:
            logging.info("step %d/%d | loss %.4f | acc %.3f | lr %.3g | grad %.3g | skipped %d | %s", step,
                         self.total_steps, record["loss"], record["accuracy"], record["learning_rate"],
                         record["grad_norm"], record["skipped"], speed)
            self._write(record)
            self.summaries.scalars(step, record)
        self.restart_interval()
        return record

    def evaluations(self, step: int, scores: dict) -> None:
        """A line of `eval/...` scores (`evaluation.during_training`), beside the training's; its time
        is left out of the throughput."""
        if self.enabled and scores:
            self._write({"step": step, **scores})
            self.summaries.scalars(step, scores, keys=tuple(scores))
        self.restart_interval()

    def _write(self, record: dict) -> None:
        self.lines.append(json.dumps(record))
        # The whole file, written anew (object stores, gs://, have no append; the file is small: one
        # line per log interval), beside it and then renamed, so that a kill mid-write loses no line.
        partial = self.jsonl.parent / (self.jsonl.name + ".partial")
        partial.write_text("".join(line + "\n" for line in self.lines))
        partial.replace(self.jsonl)


def count_clips(train_shards: str) -> int:
    """Valid clips in all processes' shards: each process counts its own, then they add up."""
    local = shards.count_valid_records(shards.local_shards(train_shards))
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils
    return int(np.sum(multihost_utils.process_allgather(np.asarray(local))))


def _abstract_state(state_fn, mesh):
    """ShapeDtypeStructs of the train state, replicated on the mesh: orbax's restore target."""
    shapes = jax.eval_shape(state_fn)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=trainer.replicated(mesh)), shapes)


def run(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
        batches: BatchSource = input_batches, start_over: bool = False, evaluations=None) -> list[dict]:
    """Trains to config's last step (resuming if possible); returns the logged metric records.

    With several processes, every process calls this with the same config and workdir.
    `batches(config, per_process_batch=, crop_samples=, start_batch=)` gives this process's
    stream of NumPy batches: the pipeline of the config's shards unless a caller (a test, an
    emulation of several processes) passes another.

    A workdir whose checkpoints all failed to restore is refused (`run_history`), unless
    `start_over`, which trains from step 0 there; the earlier curves are moved aside, never deleted.

    `evaluations` (`evaluation.during_training.TrainingEvaluations`, built by the caller: evaluation
    sits above training) is resolved once the config and shards are checked, then evaluates the live
    parameters at the steps it says are due, from step 0.
    """
    # Watching from the start: a SIGTERM while restoring or compiling (minutes on a pod) then
    # stops the run cleanly after its first step instead of killing it.
    with preemption.PreemptionWatcher() as watcher:
        return _train(config, workdir, watcher, batches, start_over, evaluations)


def _train(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
           watcher: preemption.PreemptionWatcher, batches: BatchSource, start_over: bool, evaluations) -> list[dict]:
    workdir = checkpointing.resolve_dir(workdir)
    mesh = trainer.make_mesh()
    validation.validate_config(config, num_devices=mesh.size, num_processes=jax.process_count())
    workdir.mkdir(parents=True, exist_ok=True)
    with _workdir_lock(workdir):
        return _train_locked(config, workdir, mesh, watcher, batches, start_over, evaluations)


@contextlib.contextmanager
def _workdir_lock(workdir):
    """Process 0 holds the workdir's lock for the run; every process stops if it cannot."""
    lock = workdir_lock.WorkdirLock(workdir) if jax.process_index() == 0 else None
    refused = None
    if lock is not None:
        try:
            lock.acquire()
        except workdir_lock.WorkdirLocked as error:
            refused = error
    if jax.process_count() > 1 and distributed.any_process(refused is not None) and refused is None:
        refused = workdir_lock.WorkdirLocked(f"process 0 could not lock {workdir}: see its log")
    if refused is not None:
        raise refused
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _train_locked(config: ml_collections.ConfigDict, workdir, mesh, watcher: preemption.PreemptionWatcher,
                  batches: BatchSource, start_over: bool, evaluations) -> list[dict]:
    config = build.resolve_supervised_task(config)
    per_process_batch = config.train.batch_size // jax.process_count()
    crop = build.crop_samples(config)

    num_clips = config.data.num_clips or count_clips(config.data.train_shards)
    if evaluations is not None:
        evaluations.resolve()  # its tasks found (or refused) before anything compiles
    total_steps, warmup_steps = optim.training_steps(config, num_clips)
    model = build.build_model(config)
    params_shape = jax.eval_shape(
        lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = optim.build_optimizer(config, model, params_shape, total_steps=total_steps,
                                                     warmup_steps=warmup_steps)
    expected_shapes = checkpointing.param_shapes(params_shape)
    new_state = lambda: trainer.create_train_state(model, optimizer, seed=config.seed, crop_samples=crop, mesh=mesh)

    store = checkpointing.CheckpointStore(workdir / "checkpoints", keep=config.train.keep_checkpoints)
    try:
        state = _initial_state(store, workdir, new_state, mesh, expected_shapes, start_over,
                               f"{num_clips} clips per epoch, {total_steps} steps ({warmup_steps} warm-up), global "
                               f"batch {config.train.batch_size} pairs on {mesh.size} devices of "
                               f"{jax.process_count()} process(es)", total_steps)
    except BaseException:
        store.close()
        raise
    _on_process_0(lambda: run_history.run_id(workdir), "run id made")  # the others read the one it made
    identity = run_history.run_id(workdir)
    if jax.process_index() == 0:
        checkpointing.write_config_json(workdir, config.to_dict())

    start_step = int(state.step)
    stream = batches(config, per_process_batch=per_process_batch, crop_samples=crop, start_batch=start_step)
    train_step = trainer.make_train_step(model, optimizer, schedule, mesh, build.train_objective(config))
    crops_per_example = objective_of(config).crops_per_example
    summaries = TrainingSummaries(workdir, config, model, enabled=config.train.tensorboard and jax.process_index() == 0,
                                  crop_samples=crop)
    log = _MetricsLog(workdir, total_steps, crops_per_step=crops_per_example * config.train.batch_size,
                      start_step=start_step, summaries=summaries)
    filter_every = FILTER_EVERY_LOG_LINES * config.train.log_every_steps
    meta = lambda step: {"config": config.to_dict(), "step": step, "data_position": step,
                         "param_shapes": expected_shapes, "run_id": identity}

    batch_iterator = iter(stream)
    run_start = time.perf_counter()
    try:
        summaries.frontend(start_step, state.params, state.batch_stats)
        evaluate = lambda step: log.evaluations(step, evaluations.run(step, total_steps, state.params, state.batch_stats))
        if evaluations is not None and start_step == 0:
            evaluate(0)  # the untrained weights: where the curve starts
        for step in range(start_step, total_steps):
            batch = sharding.to_global_batch(next(batch_iterator), mesh)
            if step == start_step:
                # Compiled ahead, then met: processes start the step's collectives together.
                train_step = train_step.lower(state, batch).compile()
                distributed.wait_for_all("training step compiled")
            state, metrics = train_step(state, batch)
            log.add(metrics)
            if step == start_step:
                jax.block_until_ready(metrics)
                log.restart_interval()
                logging.info("first step compiled and ran in %.1f s", time.perf_counter() - run_start)
            done = step + 1
            if done % config.train.log_every_steps == 0 or done == total_steps:
                log.flush(done)
                if 0 < config.train.max_consecutive_nonfinite <= log.consecutive_nonfinite:
                    raise preemption.NonFiniteTraining(_nonfinite_message(config, log, state, batch, done))
            if done % filter_every == 0 or done == total_steps:
                summaries.frontend(done, state.params, state.batch_stats)
            if evaluations is not None and evaluations.due(done, total_steps):
                evaluate(done)
            preempted = done < total_steps and _stop_agreed(watcher, done, config.train.stop_check_every_steps)
            if done % config.train.checkpoint_every_steps == 0 or done == total_steps or preempted:
                store.save(done, state, meta(done))
            if preempted:
                store.wait()
                signal = watcher.requested or "a stop request on another process"
                raise preemption.Preempted(f"{signal} received: saved step {done} in {store.directory}; "
                                           "run the same command again to continue")
        store.wait()
    finally:
        store.close()
        summaries.close()
    return log.history


def _initial_state(store: checkpointing.CheckpointStore, workdir, new_state, mesh, expected_shapes: dict,
                   start_over: bool, run_summary: str, total_steps: int):
    """The newest readable checkpoint's state, or a new one where the run may start from step 0."""
    restored = None if start_over else store.restore_latest_readable(_abstract_state(new_state, mesh),
                                                                      expected_shapes)
    if restored is not None:
        state, _ = restored
        logging.info("resumed %s at step %d of %d", workdir, int(state.step), total_steps)
        aside = _on_process_0(lambda: run_history.keep_curves_a_resume_cuts(workdir, int(state.step)),
                              "cut curves kept")
        if aside is not None:
            logging.info("metrics.jsonl held steps after %d, which this run logs again: a copy is in %s",
                         int(state.step), aside)
        return state
    if store.all_steps():  # only with start_over: readable steps are restored otherwise
        raise checkpointing.CheckpointError(
            f"--start_over in {workdir}, which holds checkpoints {store.all_steps()}: move or delete them "
            "first (they would be overwritten), or leave out --start_over to resume")
    if not start_over:
        run_history.refuse_silent_restart(workdir)
    aside = _on_process_0(lambda: run_history.move_earlier_curves_aside(workdir), "earlier curves set aside")
    if aside is not None:
        logging.warning("an earlier run's metrics.jsonl and TensorBoard events moved to %s", aside)
    logging.info("new run in %s: %s", workdir, run_summary)
    return new_state()


def _on_process_0(action: Callable[[], object], what: str):
    """Runs `action` on process 0 (the one that writes the run's curves); every process waits for it."""
    result = action() if jax.process_index() == 0 else None
    distributed.wait_for_all(what)
    return result


def _stop_agreed(watcher: preemption.PreemptionWatcher, step: int, check_every: int) -> bool:
    """Whether all processes stop after `step`: a lone process whenever it got a signal; several
    processes only at agreed steps, so that all of them save the same step and exit together."""
    if jax.process_count() == 1:
        return watcher.requested is not None
    return step % check_every == 0 and distributed.any_process(watcher.requested is not None)


def _nonfinite_message(config, log: "_MetricsLog", state, batch, step: int) -> str:
    """Why the run stops: the count, and the first non-finite input, activation or gradient.

    `state` holds the last good parameters: the non-finite steps were not applied.
    """
    model = build.build_model(config, data_parallel=False)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    where = diagnostics.describe_first_nonfinite(
        model, build.train_objective(config, data_parallel=False), jax.device_get(variables), diagnostics.host_batch(batch), jax.random.key(step))
    if log.last_good_step is None:
        good = "no step of this process's run was applied: the state is the one it started or resumed from"
    else:
        good = f"the state is that of step {log.last_good_step}, the last whose update was checked finite"
    return (f"{log.consecutive_nonfinite} consecutive non-finite steps up to step {step} "
            f"(limit config.train.max_consecutive_nonfinite={config.train.max_consecutive_nonfinite}); "
            f"replaying the last batch: {where}. No update of those steps was applied: {good}, and no "
            f"checkpoint holds a state that failed the check.")
