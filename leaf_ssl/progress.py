"""The one way long-running jobs report progress: throttled lines on stderr, one duration format."""
from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """H:MM:SS to the nearest second, negative times as 0:00:00."""
    seconds = round(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressLine:
    """`<label>: <done>/<total> <unit>[, details], elapsed H:MM:SS, ETA H:MM:SS` at most every
    `every_seconds` (and always at `finish`).

    The ETA extrapolates the rate at which the fraction of the work done grows (`done / total`, unless
    `update` is given a better measure, `fraction=`, e.g. bytes read of all bytes for files of unequal
    length), measured from the first `update`: the work before it carries the start-up costs
    (compilation, first reads) that the rest does not, so until a second update the line says
    "ETA estimating".
    """

    def __init__(self, label: str, total: int | None, unit: str, *, enabled: bool = True,
                 every_seconds: float = 5.0):
        self.label, self.total, self.unit, self.enabled, self.every = label, total, unit, enabled, every_seconds
        self.started = self.last = time.perf_counter()
        self._rate_from: tuple[float, float] | None = None  # (time, fraction) of the first update

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def update(self, done: int, details: str = "", *, fraction: float | None = None) -> None:
        now = time.perf_counter()
        if fraction is None and self.total:
            fraction = done / self.total
        if self._rate_from is None and fraction is not None:
            self._rate_from = (now, fraction)
        if not self.enabled or now - self.last < self.every:
            return
        self.last = now
        eta = ""
        if fraction is not None and fraction < 1:
            since, fraction_then = self._rate_from
            eta = (f", ETA {format_duration((now - since) * (1 - fraction) / (fraction - fraction_then))}"
                   if fraction > fraction_then else ", ETA estimating")
        count = f"{done}/{self.total}" if self.total else f"{done}"
        self._print(f"{count} {self.unit}{_joined(details)}, elapsed {format_duration(self.elapsed)}{eta}")

    def finish(self, done: int, details: str = "") -> None:
        if self.enabled:
            self._print(f"{done} {self.unit}{_joined(details)} in {format_duration(self.elapsed)}")

    def _print(self, text: str) -> None:
        print(f"{self.label}: {text}", file=sys.stderr, flush=True)


def _joined(details: str) -> str:
    return f", {details}" if details else ""
