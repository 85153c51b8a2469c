r"""`python -m leaf_ssl.train`: the command line over `leaf_ssl.training.loop.run`.

    python -m leaf_ssl.train --config configs/pretrain_leaf.py:random --workdir runs/leaf_random \
        --config.data.train_shards=/data/audioset/pretrain --config.train.batch_size=512
    python -m leaf_ssl.train --config configs/supervised_leaf.py --workdir runs/leaf_supervised \
        --config.supervised.task_dir=/data/audioset/labelled

Several processes (a TPU pod, a GPU cluster, `launch/local_multiprocess.sh`) run the same
command; see `leaf_ssl.training.distributed` for how they find each other (auto-detected on
SLURM, Open MPI and Cloud TPU; `--coordinator/--num_processes/--process_id` otherwise).

Exit codes (`leaf_ssl.cli.exits`): 0 done; 2 a usage error in one line (a bad config field, file
or argument, missing shards, a checkpoint of another architecture, a workdir that is a file or
that another run holds: `workdir_lock`); 1 a workdir that cannot be written;
75 (EX_TEMPFAIL) stopped by SIGTERM/SIGINT after saving a checkpoint, run again to continue;
65 (EX_DATAERR) stopped after `train.max_consecutive_nonfinite` non-finite steps, with a message
naming the first non-finite input, activation or gradient.
"""
import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from leaf_ssl.cli import config_overrides, exits, quiet
from leaf_ssl.evaluation import during_training
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
_START_OVER = flags.DEFINE_bool("start_over", False, "Train from step 0 in a workdir whose checkpoints were all "
                                "unreadable (refused without it); the earlier metrics.jsonl and TensorBoard events "
                                "are moved to previous_runs/, never deleted.")
quiet.define_absl_verbose_flag()
TRAIN_FLAGS = ("config", "workdir", "start_over", "verbose", "distributed", "coordinator", "num_processes",
               "process_id")


def parse_flags(argv: list[str]) -> list[str]:
    return config_overrides.parse_absl_flags(argv, _CONFIG)


def main(argv, *, batches: loop.BatchSource = loop.input_batches):
    """absl's main; `batches` is the loop's input seam (tests emulate several processes with it)."""
    if len(argv) > 1:
        exits.usage_error(f"unexpected arguments: {' '.join(argv[1:])}")
    if _WORKDIR.value is None:
        exits.usage_error("--workdir is required")
    if "://" not in _WORKDIR.value and Path(_WORKDIR.value).exists() and not Path(_WORKDIR.value).is_dir():
        exits.usage_error(f"--workdir {_WORKDIR.value} is a file, not a folder")
    try:
        distributed.initialize(_DISTRIBUTED.value, coordinator=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
    except ValueError as error:
        exits.usage_error(str(error))
    try:
        evaluations = during_training.TrainingEvaluations(_CONFIG.value) if _CONFIG.value.get("evals") else None
        loop.run(_CONFIG.value, _WORKDIR.value, batches=batches, start_over=_START_OVER.value, evaluations=evaluations)
    except (configuration.ConfigError, FileNotFoundError, checkpointing.CheckpointError,
            workdir_lock.WorkdirLocked) as error:
        logging.error("%s", error)
        sys.exit(exits.EXIT_USAGE)
    except preemption.Preempted as stop:
        logging.warning("%s", stop)
        sys.exit(preemption.EXIT_PREEMPTED)
    except preemption.NonFiniteTraining as stop:
        logging.error("%s", stop)
        sys.exit(preemption.EXIT_NONFINITE)
    except checkpointing.CheckpointSaveError as error:  # a full disk: the cause and the step that is safe
        logging.error("%s", error)
        sys.exit(exits.EXIT_FAILURE)
    except OSError as error:  # the workdir cannot be written: read-only storage, no permission
        logging.error("cannot write to --workdir %s: %s", _WORKDIR.value, error)
        sys.exit(exits.EXIT_FAILURE)


def run_command_line() -> None:
    """`python -m leaf_ssl.train` and the `leaf-ssl-train` script: absl's --help prints the main module's
    docstring and key flags, and the main module is either one, so both are given this module's."""
    sys.modules["__main__"].__doc__ = __doc__
    for name in TRAIN_FLAGS:
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])
    flags.mark_flags_as_required(["config"])
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run_command_line()
