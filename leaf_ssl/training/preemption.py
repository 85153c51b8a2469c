"""Turning SIGTERM / SIGINT into a clean stop at the next step boundary.

TPU VMs and SLURM send SIGTERM before taking a machine away. The handler only sets a flag; the
train loop reads it after each step (a Python attribute read, no device sync), saves a
checkpoint that includes the data position, and exits with `EXIT_PREEMPTED`, which the
`launch/` scripts treat as "start me again".
"""
import os
import signal
import threading

EXIT_PREEMPTED = os.EX_TEMPFAIL  # 75: a temporary failure, retry
EXIT_NONFINITE = os.EX_DATAERR   # 65: the run diverged; restarting would not help
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PreemptionWatcher:
    """Context manager; `requested` becomes the signal's name once SIGTERM or SIGINT arrives."""

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        del frame
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> "PreemptionWatcher":
        # Signal handlers can only be installed from the main thread; elsewhere (e.g. a
        # notebook's worker thread) the run simply is not preemptible.
        if threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Preempted(RuntimeError):
    """Raised after the preemption checkpoint is on disk."""


class NonFiniteTraining(RuntimeError):
    """Raised when too many consecutive steps were non-finite; the message says where."""
