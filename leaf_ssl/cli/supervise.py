r"""`python -m leaf_ssl.supervise [--max_restarts N] [--delay S] [--stop_file F] -- TRAIN_FLAGS...`

Runs `python -m leaf_ssl.train TRAIN_FLAGS` and starts it again each time it exits 75 (it received
SIGTERM or SIGINT, or another process of its run did, and saved a checkpoint): the same command
resumes from that checkpoint. It is not started again when this supervisor itself was signalled
(the signal is passed on to training, which saves and exits; the machine is going down or someone
asked to stop), when `--stop_file` exists, or after `--max_restarts` restarts. Any other exit code
ends the supervisor with that code (0 finished, 65 diverged, 2 a usage error).

    python -m leaf_ssl.supervise -- --config configs/demo.py --workdir runs/demo_leaf
    launch/local.sh and the workers of launch/tpu_pod.sh run training this way.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from leaf_ssl.training.preemption import EXIT_PREEMPTED


def supervise(command: list[str], *, max_restarts: int, delay: float, stop_file: Path | None = None,
              say: Callable[[str], None] = lambda line: print(f"[supervise] {line}", file=sys.stderr, flush=True)
              ) -> int:
    """Runs `command` until it exits with anything but 75, or a stop applies; returns the last exit code."""
    signalled: list[int] = []
    child: list[subprocess.Popen] = []

    def pass_on(signum, frame):
        signalled.append(signum)
        if child and child[0].poll() is None:
            child[0].send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for attempt in range(max_restarts + 1):
            child[:] = [subprocess.Popen(command)]
            code = child[0].wait()
            if code != EXIT_PREEMPTED:
                return code
            if signalled:
                say(f"stopped by signal {signal.Signals(signalled[0]).name} after saving a checkpoint (exit 75)")
                return code
            if stop_file is not None and stop_file.exists():
                say(f"stopped after saving a checkpoint (exit 75): {stop_file} asks not to restart")
                return code
            if attempt == max_restarts:
                break
            say(f"preempted (exit 75, checkpoint saved); restarting in {delay:g} s ({attempt + 1}/{max_restarts})")
            time.sleep(delay)
            if signalled:  # a signal during the delay stops too
                return code
        say(f"gave up after {max_restarts} restarts")
        return EXIT_PREEMPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.supervise", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max_restarts", type=int, default=100, help="restarts before giving up (default 100)")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds between a stop and the restart")
    parser.add_argument("--stop_file", type=Path, help="while this file exists, an exit 75 is not restarted")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs leaf_ssl.train")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: python -m leaf_ssl.train's flags")
    args = parser.parse_args(argv)
    flags = args.train_flags[1:] if args.train_flags[:1] == ["--"] else args.train_flags
    if not flags:
        parser.error("no training flags: python -m leaf_ssl.supervise -- --config ... --workdir ...")
    if args.max_restarts < 0:
        parser.error(f"--max_restarts must be >= 0, got {args.max_restarts}")
    # PYTHONUNBUFFERED: a log file (the pod's workers write one) shows each line as training prints it.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return supervise([args.python, "-m", "leaf_ssl.train", *flags], max_restarts=args.max_restarts,
                     delay=args.delay, stop_file=args.stop_file)
