"""Training entry point: COLA pretraining, or the supervised baseline for a supervised config.

    python -m leaf_ssl.train --config configs/pretrain_leaf.py:random --workdir runs/leaf_random \
        --config.data.train_shards=/data/audioset/pretrain --config.train.batch_size=512
    python -m leaf_ssl.train --config configs/supervised_leaf.py --workdir runs/leaf_supervised \
        --config.supervised.task_dir=/data/audioset/labelled

Resumes from the newest readable checkpoint in the workdir. Process 0 logs loss, learning
rate, throughput and ETA, writes TensorBoard events and `metrics.jsonl` in the workdir. The
workdir and the shards may be on cloud storage (gs://...).

Several processes (a TPU pod, a GPU cluster, `launch/local_multiprocess.sh`) run the same
command; see `leaf_ssl.distributed` for how they find each other (auto-detected on SLURM, Open
MPI and Cloud TPU; `--coordinator/--num_processes/--process_id` otherwise). Each reads its own
shards; all write the checkpoints together.

Exit codes: 0 done; 2 a usage error in one line (a bad config field or argument, missing
shards, a checkpoint of another architecture, a workdir another run holds: `workdir_lock`);
75 (EX_TEMPFAIL) stopped by SIGTERM/SIGINT after saving a checkpoint, run again to continue;
65 (EX_DATAERR) stopped after `train.max_consecutive_nonfinite` non-finite steps, with a message
naming the first non-finite input, activation or gradient.
"""
import contextlib
import json
import logging as std_logging
import sys
import os
import time

import jax
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from leaf_ssl import (checkpointing, configuration, diagnostics, distributed, experiment, preemption, trainer,
                      workdir_lock)
from leaf_ssl.data import pipeline, sharding
from leaf_ssl.progress import format_duration

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/pretrain_leaf.py:random.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, config.json, logs and TensorBoard events "
                                "(local or gs://; shared by all processes).")
_DISTRIBUTED = flags.DEFINE_enum("distributed", "auto", distributed.MODES,
                                 "auto: join a multi-process run when the flags below are given or SLURM, Open MPI "
                                 "or a Cloud TPU pod is detected; on: always call jax.distributed.initialize; off: never.")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0's coordinator, e.g. 10.0.0.2:1234.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run (with --coordinator).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")


class _MetricsLog:
    """Averages the steps' metrics over each logging interval; writes only on process 0.

    Metrics stay on device between log lines, so the loop never waits for a step to finish
    except once per interval.
    """

    def __init__(self, workdir, total_steps: int, crops_per_step: int, start_step: int):
        self.enabled = jax.process_index() == 0
        self.total_steps = total_steps
        self.crops_per_step = crops_per_step
        self.pending: list[dict] = []
        self.consecutive_nonfinite = 0  # non-finite steps at the end of what was fetched so far
        self.last_good_step: int | None = None  # the last step whose update was checked finite and applied
        self.history: list[dict] = []
        self.restart_interval()
        self.jsonl = None
        self.summary_writer = None
        if self.enabled:
            import tensorflow as tf  # for TensorBoard event files, and gfile appends to gs://
            path = str(workdir / "metrics.jsonl")
            _drop_records_after(path, start_step)
            self.jsonl = tf.io.gfile.GFile(path, "a")
            self.summary_writer = tf.summary.create_file_writer(str(workdir / "tensorboard"))

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
            self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
            import tensorflow as tf
            with self.summary_writer.as_default(step=step):
                for key in ("loss", "accuracy", "learning_rate", "grad_norm", "crops_per_second"):
                    if key in record:
                        tf.summary.scalar(key, record[key])
        self.restart_interval()
        return record

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.summary_writer.close()


def _drop_records_after(path: str, last_step: int) -> None:
    """Keeps only the records of steps <= last_step: those logged after the checkpoint a run
    resumes from are logged again by the resumed run, and each step is recorded once."""
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        return
    with tf.io.gfile.GFile(path) as file:
        lines = file.read().splitlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line torn by a kill mid-write
            pass
    if len(kept) < len(lines):
        with tf.io.gfile.GFile(path, "w") as file:
            file.write("".join(line + "\n" for line in kept))


def count_clips(train_shards: str) -> int:
    """Valid clips in all processes' shards: each process counts its own, then they add up."""
    local = pipeline.count_valid_records(pipeline.local_shards(train_shards))
    if jax.process_count() == 1:
        return local
    from jax.experimental import multihost_utils
    return int(np.sum(multihost_utils.process_allgather(np.asarray(local))))


def _abstract_state(state_fn, mesh):
    """ShapeDtypeStructs of the train state, replicated on the mesh: orbax's restore target."""
    shapes = jax.eval_shape(state_fn)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=trainer.replicated(mesh)), shapes)


def run_pretraining(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> list[dict]:
    """Trains to config's last step (resuming if possible); returns the logged metric records.

    With several processes, every process calls this with the same config and workdir.
    """
    # Watching from the start: a SIGTERM while restoring or compiling (minutes on a pod) then
    # stops the run cleanly after its first step instead of killing it.
    with preemption.PreemptionWatcher() as watcher:
        return _train(config, workdir, watcher)


def _train(config: ml_collections.ConfigDict, workdir: str | os.PathLike,
           watcher: preemption.PreemptionWatcher) -> list[dict]:
    workdir = checkpointing.resolve_dir(workdir)
    mesh = trainer.make_mesh()
    configuration.validate_config(config, num_devices=mesh.size, num_processes=jax.process_count())
    workdir.mkdir(parents=True, exist_ok=True)
    with _workdir_lock(workdir):
        return _train_locked(config, workdir, mesh, watcher)


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


def _train_locked(config: ml_collections.ConfigDict, workdir, mesh,
                  watcher: preemption.PreemptionWatcher) -> list[dict]:
    config = experiment.resolve_supervised_task(config)
    per_process_batch = config.train.batch_size // jax.process_count()
    crop = experiment.crop_samples(config)

    num_clips = config.data.num_clips or count_clips(config.data.train_shards)
    total_steps, warmup_steps = experiment.training_steps(config, num_clips)
    model = experiment.build_model(config)
    params_shape = jax.eval_shape(
        lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = experiment.build_optimizer(config, model, params_shape, total_steps=total_steps,
                                                     warmup_steps=warmup_steps)
    expected_shapes = checkpointing.param_shapes(params_shape)
    new_state = lambda: trainer.create_train_state(model, optimizer, seed=config.seed, crop_samples=crop, mesh=mesh)

    store = checkpointing.CheckpointStore(workdir / "checkpoints", keep=config.train.keep_checkpoints)
    restored = store.restore_latest_readable(_abstract_state(new_state, mesh), expected_shapes)
    if restored is None:
        state = new_state()
        logging.info("new run in %s: %d clips per epoch, %d steps (%d warm-up), global batch %d pairs on %d devices"
                     " of %d process(es)", workdir, num_clips, total_steps, warmup_steps, config.train.batch_size,
                     mesh.size, jax.process_count())
    else:
        state, _ = restored
        logging.info("resumed %s at step %d of %d", workdir, int(state.step), total_steps)
    if jax.process_index() == 0:
        checkpointing.write_config_json(workdir, config.to_dict())

    start_step = int(state.step)
    batches = experiment.input_batches(config, per_process_batch=per_process_batch, crop_samples=crop, start_batch=start_step)
    train_step = trainer.make_train_step(model, optimizer, schedule, mesh, experiment.train_objective(config))
    crops_per_example = 1 if experiment.is_supervised(config) else 2
    log = _MetricsLog(workdir, total_steps, crops_per_step=crops_per_example * config.train.batch_size,
                      start_step=start_step)
    meta = lambda step: {"config": config.to_dict(), "step": step, "data_position": step,
                         "param_shapes": expected_shapes}

    batch_iterator = iter(batches)
    run_start = time.perf_counter()
    try:
        for step in range(start_step, total_steps):
            batch = sharding.to_global_batch(next(batch_iterator), mesh)
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
        log.close()
    return log.history


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
    model = experiment.build_model(config, data_parallel=False)
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    where = diagnostics.describe_first_nonfinite(
        model, experiment.train_objective(config, data_parallel=False), jax.device_get(variables), diagnostics.host_batch(batch), jax.random.key(step))
    if log.last_good_step is None:
        good = "no step of this process's run was applied: the state is the one it started or resumed from"
    else:
        good = f"the state is that of step {log.last_good_step}, the last whose update was checked finite"
    return (f"{log.consecutive_nonfinite} consecutive non-finite steps up to step {step} "
            f"(limit config.train.max_consecutive_nonfinite={config.train.max_consecutive_nonfinite}); "
            f"replaying the last batch: {where}. No update of those steps was applied: {good}, and no "
            f"checkpoint holds a state that failed the check.")


def _quiet_orbax_info() -> None:
    """Orbax logs several INFO lines per save through absl; keep its warnings and errors only."""
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= std_logging.WARNING or "orbax" not in record.pathname)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad config file argument or override reported in one line
    (ml_collections would print a traceback) and exit status 2, as for any usage error."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = f"{lines[0]} {lines[-1]}" if len(lines) > 1 else lines[0]
    except (AttributeError, KeyError) as error:  # config_flags' override of a field the config lacks
        overrides = [arg.split("=")[0] for arg in argv[1:] if arg.startswith("--config.")]
        missing = str(error).strip('"')  # KeyError quotes its message
        reason = f"no such config field in {' / '.join(overrides)}: {missing}"
    print(f"error: {reason}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    _quiet_orbax_info()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _WORKDIR.value is None:
        raise app.UsageError("--workdir is required")
    try:
        distributed.initialize(_DISTRIBUTED.value, coordinator=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
    except ValueError as error:
        raise app.UsageError(str(error)) from error
    try:
        run_pretraining(_CONFIG.value, _WORKDIR.value)
    except (configuration.ConfigError, FileNotFoundError, checkpointing.CheckpointError,
            workdir_lock.WorkdirLocked) as error:
        logging.error("%s", error)
        sys.exit(2)
    except preemption.Preempted as stop:
        logging.warning("%s", stop)
        sys.exit(preemption.EXIT_PREEMPTED)
    except preemption.NonFiniteTraining as stop:
        logging.error("%s", stop)
        sys.exit(preemption.EXIT_NONFINITE)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=parse_flags)
