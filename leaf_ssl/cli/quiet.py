"""What the command lines print besides their own lines: only what a user can act on, unless --verbose.

Installed once, when any `leaf_ssl.cli` module is imported (`leaf_ssl/cli/__init__.py`):

* TensorFlow's import writes C++ start-up lines to the process's stderr (oneDNN, CUDA drivers,
  absl's pre-initialisation notice) that no environment variable of this TensorFlow silences. Its
  first import is made with file descriptor 2 pointed at /dev/null; a failing import still raises.
* orbax's asyncio helpers, stopped while a thread still posts to their loop (a reader finishing as
  a trainer rotates checkpoints, a save failing on a full disk), print "Event loop is closed"
  through `sys.unraisablehook` and `threading.excepthook`, thousands of times; those alone are dropped.
* A step that a trainer rotates away while a reader restores it fails the reader's other pending
  reads, which asyncio logs as "Future/Task exception was never retrieved", hundreds of times; the
  reader has already handled the failure (it lists the steps again), so those records are dropped.
* orbax's and optax's own log records (absl): orbax's INFO lines about every save, its warnings
  about steps a reader skips, its error logs of a failed save (which `checkpointing` restates in
  one line), optax's notice about a schedule without warm-up.
* jax's notice that it found no TPU (logged at INFO on every CPU or GPU host) is hidden.

`--verbose` (every tool takes it) leaves all of it as it was.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import threading

VERBOSE_FLAG = "--verbose"
LIBRARIES_RESTATED = ("orbax", "optax")  # whose absl log records the tools hide (see above)
VERBOSE_HELP = "also show TensorFlow's, XLA's and orbax's own start-up and shutdown messages"


def define_absl_verbose_flag() -> None:
    """--verbose for the absl tools (train, grid; read from sys.argv before any flag parsing): defined
    once per process, whichever of them is imported first."""
    from absl import flags
    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool("verbose", False, VERBOSE_HELP)


@contextlib.contextmanager
def _stderr_descriptor_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Imports `tensorflow` the first time it is asked for, with stderr's descriptor silenced."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        with _stderr_descriptor_silenced():
            spec = importlib.util.find_spec(name)
            if spec is None:
                return None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)
                raise
        return importlib.util.spec_from_loader(name, _AlreadyLoaded(module))


class _AlreadyLoaded(importlib.abc.Loader):
    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        pass


def is_closed_event_loop_noise(exc_value) -> bool:
    return isinstance(exc_value, RuntimeError) and str(exc_value) == "Event loop is closed"


def install(argv: list[str]) -> None:
    """Installs the filters above unless `argv` asks for --verbose."""
    if VERBOSE_FLAG in argv:
        return
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    previous_unraisable, previous_thread = sys.unraisablehook, threading.excepthook

    def unraisable(args):
        if not is_closed_event_loop_noise(args.exc_value):
            previous_unraisable(args)

    def thread_exception(args):
        if not is_closed_event_loop_noise(args.exc_value):
            previous_thread(args)

    sys.unraisablehook, threading.excepthook = unraisable, thread_exception
    logging.getLogger("asyncio").addFilter(lambda record: "exception was never retrieved" not in record.getMessage())
    import absl.logging  # noqa: F401  (first, so that the "absl" logger is absl's, which names the true caller)
    logging.getLogger("absl").addFilter(
        lambda record: not any(library in record.pathname for library in LIBRARIES_RESTATED))
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
