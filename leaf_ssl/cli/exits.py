"""The exit-code convention every tool follows, and the one-line error that goes with it.

    0  done
    1  a runtime failure: the inputs were valid but the work failed (e.g. no file could be embedded)
    2  a usage error: a bad argument, config field or config file, a path with nothing usable at it,
       a task or checkpoint that cannot be used as given (argparse and absl use 2 for theirs too)

`python -m leaf_ssl.train` adds 75 (stopped by a signal after saving: run again) and 65 (stopped by
non-finite training); see `leaf_ssl.cli.train`.
"""
from __future__ import annotations

import sys
from typing import NoReturn

EXIT_FAILURE = 1
EXIT_USAGE = 2


def usage_error(message: str) -> NoReturn:
    """Prints `error: <message>` on stderr and exits with EXIT_USAGE."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def failure(message: str) -> NoReturn:
    """Prints `error: <message>` on stderr and exits with EXIT_FAILURE."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_FAILURE)
