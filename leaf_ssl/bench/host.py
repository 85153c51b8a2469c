"""Host-CPU measurement helpers of the benchmarks: usable cores, pinning, and a CPU-time meter.

On a shared machine, wall-clock rates depend on what else runs. `CpuMeter` also reads, besides the
wall clock, this process's CPU time (all threads) and, on Linux, the time its threads spent ready to
run but waiting for a core (`/proc/self/task/*/schedstat`): busy cores and waiting cores together
tell a stage that cannot use more cores (little waiting) from one starved by other processes.
"""
from __future__ import annotations

import os
import statistics
import time
from typing import NamedTuple


def usable_cores() -> list[int]:
    """The CPUs this process may run on (all of them where affinity is not supported)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _thread_ids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except FileNotFoundError:  # no procfs: not Linux
        return []


def pin_process(cpus: set[int]) -> bool:
    """Restricts every thread of this process to `cpus` (threads started later inherit it from their
    creator); returns False where the OS offers no per-thread affinity (then nothing is pinned)."""
    thread_ids = _thread_ids()
    if not hasattr(os, "sched_setaffinity") or not thread_ids:
        return False
    for thread_id in thread_ids:
        try:
            os.sched_setaffinity(thread_id, cpus)
        except (ProcessLookupError, FileNotFoundError):  # the thread ended meanwhile
            pass
    return True


def _run_queue_seconds() -> float | None:
    """Seconds this process's live threads have spent runnable but not running; None without procfs.
    (Threads that already ended are not counted, which is why `CpuMeter` takes differences.)"""
    thread_ids = _thread_ids()
    if not thread_ids:
        return None
    waited_ns = 0
    for thread_id in thread_ids:
        try:
            with open(f"/proc/self/task/{thread_id}/schedstat") as stats:
                waited_ns += int(stats.read().split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return waited_ns / 1e9


class Usage(NamedTuple):
    """What one measured stretch used: wall seconds, CPU seconds of the whole process, and seconds its
    threads waited for a core (None where the OS does not tell)."""

    wall_s: float
    cpu_s: float
    wait_s: float | None


class CpuMeter:
    """`with CpuMeter() as meter: ...`, then `meter.usage`."""

    usage: Usage

    def __enter__(self) -> "CpuMeter":
        self._wait = _run_queue_seconds()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        wait = _run_queue_seconds()
        self.usage = Usage(wall, cpu, None if wait is None or self._wait is None else max(wait - self._wait, 0.0))


def busy_and_waiting(usages: list[Usage]) -> dict[str, float | None]:
    """Medians over repeats of cores kept busy (CPU s / wall s) and cores' worth of waiting threads."""
    waits = [usage.wait_s / usage.wall_s for usage in usages if usage.wait_s is not None]
    return {"cores_busy": statistics.median(usage.cpu_s / usage.wall_s for usage in usages),
            "cores_waiting": statistics.median(waits) if waits else None}
