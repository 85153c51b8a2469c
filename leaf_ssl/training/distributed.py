"""Joining a multi-process JAX run: `jax.distributed.initialize`, once, before any computation.

A pod or cluster runs the same command in every process; each process drives its local
devices, and collectives inside the jitted step span all of them. Three ways to say how
processes find each other:

* explicit: ``--coordinator HOST:PORT --num_processes N --process_id I`` (what
  `launch/local_multiprocess.sh` passes; also any launcher without auto-detection);
* detected: SLURM (``srun``, more than one task), Open MPI (``mpirun``), Cloud TPU pod
  slices, or ``JAX_COORDINATOR_ADDRESS`` in the environment: JAX reads the rest itself;
* none of those: a single process, and nothing is initialised.

Logging: after joining, processes other than 0 log warnings and errors only, so a 64-host
run prints one progress line per interval, not 64.
"""
from __future__ import annotations

import itertools
import os

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

MODES = ("auto", "on", "off")
# Long enough for the slowest process to compile the training step on a busy host: a barrier
# that times out kills a run that would have gone on.
BARRIER_TIMEOUT_S = 30 * 60
_barriers = itertools.count()  # every process passes the same barriers in the same order


def detected_launcher(environ: dict[str, str] | None = None) -> str | None:
    """The multi-process launcher this process was started by, or None for a lone process.

    Only launchers that start more than one process count: a one-task SLURM job is a lone
    process.
    """
    environ = os.environ if environ is None else environ
    if environ.get("JAX_COORDINATOR_ADDRESS"):
        return "JAX_COORDINATOR_ADDRESS"
    if environ.get("SLURM_JOB_ID") and _as_int(environ.get("SLURM_STEP_NUM_TASKS", environ.get("SLURM_NTASKS"))) > 1:
        return "slurm"
    if _as_int(environ.get("OMPI_COMM_WORLD_SIZE")) > 1:
        return "openmpi"
    # Cloud TPU VMs list every worker of the slice; a single-host slice lists one.
    if "," in environ.get("TPU_WORKER_HOSTNAMES", ""):
        return "tpu"
    return None


def _as_int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def initialize(mode: str = "auto", *, coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
    """Joins the multi-process run if there is one; returns whether `jax.distributed` was initialised.

    Args:
      mode: 'auto' joins when explicit arguments are given or a launcher is detected; 'on'
        always calls `jax.distributed.initialize` (JAX auto-detects what is not given, and
        says what is missing); 'off' never does.
      coordinator, num_processes, process_id: the explicit form; all three or none.

    Raises:
      ValueError: an unknown mode, or only some of the explicit arguments.
    """
    if mode not in MODES:
        raise ValueError(f"distributed mode {mode!r} is not one of {MODES}")
    explicit = (coordinator, num_processes, process_id)
    given = [value is not None for value in explicit]
    if any(given) and not all(given):
        raise ValueError("--coordinator, --num_processes and --process_id go together: got "
                         f"coordinator={coordinator!r}, num_processes={num_processes}, process_id={process_id}")
    if mode == "off" or (mode == "auto" and not all(given) and detected_launcher() is None):
        return False
    if all(given):
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id={process_id} is not in [0, --num_processes={num_processes})")
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    else:
        jax.distributed.initialize()
    if jax.process_index() != 0:
        logging.set_verbosity(logging.WARNING)
    logging.warning("process %d of %d joined: %d local and %d global devices", jax.process_index(),
                    jax.process_count(), jax.local_device_count(), jax.device_count())
    return True


def any_process(flag: bool) -> bool:
    """True on every process when `flag` is true on at least one; all processes must call it together."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def wait_for_all(what: str, timeout_s: int = BARRIER_TIMEOUT_S) -> None:
    """Every process waits here until all have arrived; a no-op for a lone process.

    Through the coordination service, not a collective: the first collective on a set of devices
    gives up when a peer is 30 s late (Gloo's rendezvous on CPU), so processes meet here first
    wherever one may be far behind (compiling, or process 0 writing files the others then read).
    """
    if jax.process_count() == 1:
        return
    from orbax.checkpoint import multihost
    multihost.get_barrier_sync_fn()(key=f"leaf_ssl {next(_barriers)}: {what}", timeout_ms=timeout_s * 1000)
