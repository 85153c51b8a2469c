"""One trainer per workdir: `<workdir>/lock.json`, held for the whole run.

Two trainers on one workdir would interleave their metrics and overwrite each other's
checkpoints. The run's process 0 creates the lock before anything is restored or compiled; a
second run finds it and stops at once, naming the holder (host, pid, start time). The holder
refreshes a heartbeat in the file from a background thread, so a lock whose holder is gone is
recognised and taken over with a warning: on the holder's own host when its pid no longer runs,
anywhere when the heartbeat is older than `stale_after_s`.

Local folders get an atomic create (O_EXCL) and an atomic takeover (rename). Cloud storage
(gs://) is reached through etils.epath, which offers neither: there the lock is written, then
read back, so two runs starting within the same second can both believe they hold it. It still
stops every later start, which is the common mistake (a job re-submitted while still running).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid

from etils import epath

logger = logging.getLogger(__name__)

LOCK_FILE = "lock.json"
HEARTBEAT_S = 30.0
STALE_AFTER_S = 300.0


class WorkdirLocked(RuntimeError):
    """Another live run holds the workdir."""


def _describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"host {holder.get('host')}, pid {holder.get('pid')}, started {started}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class WorkdirLock:
    """Use as a context manager around a run (on process 0 only; see `leaf_ssl.training.loop`)."""

    def __init__(self, workdir: epath.Path, stale_after_s: float = STALE_AFTER_S,
                 heartbeat_s: float = HEARTBEAT_S):
        self.path = epath.Path(workdir) / LOCK_FILE
        self.local = "://" not in str(self.path)
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.record = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                       "token": uuid.uuid4().hex}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict | None:
        """The lock file's record, or None when there is none (or it is unreadable: torn by a kill)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return {}

    def is_stale(self, holder: dict) -> bool:
        if not holder:  # unreadable: its writer died mid-write
            return True
        if time.time() - holder.get("heartbeat", 0) > self.stale_after_s:
            return True
        return holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", -1)))

    def acquire(self) -> None:
        """Takes the lock, or raises WorkdirLocked naming the live holder."""
        for _ in range(3):  # a takeover can race another starter's; each retry re-reads the file
            holder = self.holder()
            if holder is not None:
                if not self.is_stale(holder):
                    raise WorkdirLocked(f"workdir {self.path.parent} is in use by another run ({_describe(holder)}; "
                                        f"lock {self.path}); stop it first, or delete the lock if it is gone")
                if not self._set_aside(holder):
                    continue
                logger.warning("taking over the stale lock of %s (%s)", self.path.parent, _describe(holder))
            if self._create():
                self._thread = threading.Thread(target=self._beat, name="workdir-lock-heartbeat", daemon=True)
                self._thread.start()
                return
        raise WorkdirLocked(f"workdir {self.path.parent}: another run took the lock {self.path} while this one "
                            f"started")

    def _contents(self) -> str:
        return json.dumps({**self.record, "heartbeat": time.time()})

    def _write(self, target: str) -> None:
        """Writes the record to `target` whole: readers never see a half-written lock."""
        if not self.local:
            epath.Path(target).write_text(self._contents())  # an object store replaces objects whole
            return
        temporary = f"{target}.{self.record['token']}.tmp"
        with open(temporary, "w") as file:
            file.write(self._contents())
        os.replace(temporary, target)

    def _create(self) -> bool:
        if self.local:
            temporary = f"{self.path}.{self.record['token']}.new"
            self._write(temporary)
            try:  # link fails when the lock exists: an atomic create of a complete file
                os.link(temporary, self.path)
                return True
            except FileExistsError:
                return False
            finally:
                os.remove(temporary)
        if self.path.exists():
            return False
        self._write(str(self.path))
        return (self.holder() or {}).get("token") == self.record["token"]

    def _set_aside(self, holder: dict) -> bool:
        """Removes a stale lock; False when another starter removed or replaced it first."""
        if self.local:
            try:  # rename is atomic: of two starters taking over, one moves it, the other fails
                os.rename(self.path, f"{self.path}.stale-{self.record['token']}")
            except FileNotFoundError:
                return False
            os.remove(f"{self.path}.stale-{self.record['token']}")
            return True
        if self.holder() != holder:
            return False
        self.path.unlink(missing_ok=True)
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if (self.holder() or {}).get("token") != self.record["token"]:
                    logger.error("the lock %s was taken by another run (%s)", self.path, _describe(self.holder() or {}))
                    return
                self._write(str(self.path))
            except OSError as error:  # a storage hiccup: the next beat tries again
                logger.warning("could not refresh the lock %s: %s", self.path, error)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            if (self.holder() or {}).get("token") == self.record["token"]:
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> "WorkdirLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
