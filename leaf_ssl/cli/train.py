"""`python -m leaf_ssl.train`: the command line over `leaf_ssl.training.loop.run`.

    python -m leaf_ssl.train --config configs/pretrain_leaf.py:random --workdir runs/leaf_random \
        --config.data.train_shards=/data/audioset/pretrain --config.train.batch_size=512
    python -m leaf_ssl.train --config configs/supervised_leaf.py --workdir runs/leaf_supervised \
        --config.supervised.task_dir=/data/audioset/labelled

Several processes (a TPU pod, a GPU cluster, `launch/local_multiprocess.sh`) run the same
command; see `leaf_ssl.training.distributed` for how they find each other (auto-detected on
SLURM, Open MPI and Cloud TPU; `--coordinator/--num_processes/--process_id` otherwise).

Exit codes: 0 done; 2 a usage error in one line (a bad config field or argument, missing
shards, a checkpoint of another architecture, a workdir another run holds: `workdir_lock`);
75 (EX_TEMPFAIL) stopped by SIGTERM/SIGINT after saving a checkpoint, run again to continue;
65 (EX_DATAERR) stopped after `train.max_consecutive_nonfinite` non-finite steps, with a message
naming the first non-finite input, activation or gradient.
"""
import logging as std_logging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from leaf_ssl.cli import config_overrides
from leaf_ssl.model import configuration
from leaf_ssl.training import checkpointing, distributed, loop, preemption, workdir_lock

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/pretrain_leaf.py:random.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, config.json, logs and TensorBoard events "
                                "(local or gs://; shared by all processes).")
_DISTRIBUTED = flags.DEFINE_enum("distributed", "auto", distributed.MODES,
                                 "auto: join a multi-process run when the flags below are given or SLURM, Open MPI "
                                 "or a Cloud TPU pod is detected; on: always call jax.distributed.initialize; off: never.")
_COORDINATOR = flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0's coordinator, e.g. 10.0.0.2:1234.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run (with --coordinator).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")


def _quiet_orbax_info() -> None:
    """Orbax logs several INFO lines per save through absl; keep its warnings and errors only."""
    logging.get_absl_handler().addFilter(
        lambda record: record.levelno >= std_logging.WARNING or "orbax" not in record.pathname)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad config file argument or override reported in one line
    (ml_collections would print a traceback) and exit status 2, as for any usage error."""
    try:
        return flags.FLAGS(argv)
    except config_overrides.PARSE_ERRORS as error:
        print(f"error: {config_overrides.parse_error_reason(error, argv)}", file=sys.stderr)
        sys.exit(2)


def main(argv, *, batches: loop.BatchSource = loop.input_batches):
    """absl's main; `batches` is the loop's input seam (tests emulate several processes with it)."""
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
        loop.run(_CONFIG.value, _WORKDIR.value, batches=batches)
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


def run_command_line() -> None:
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run_command_line()
