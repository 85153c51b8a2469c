"""`leaf_ssl.cli.quiet`: the tools print their own lines, not TensorFlow's start-up or orbax's shutdown noise,
unless --verbose; anything else raised or printed still gets through. Each case runs in a fresh process,
since the filters are installed when `leaf_ssl.cli` is first imported."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # starts interpreters that import TensorFlow

UNRAISABLE = """
import gc, threading, leaf_ssl.cli
class Dying:
    def __init__(self, message): self.message = message
    def __del__(self): raise RuntimeError(self.message)
Dying("Event loop is closed"); Dying("a real problem"); gc.collect()
def post(message): raise RuntimeError(message)
for message in ("Event loop is closed", "another real problem"):
    thread = threading.Thread(target=post, args=(message,)); thread.start(); thread.join()
"""


def _stderr(code: str, *argv: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300,
                          check=True).stderr


def test_tensorflow_s_import_lines_are_shown_only_with_verbose():
    quiet = _stderr("import leaf_ssl.cli, tensorflow, tensorflow_datasets")
    verbose = _stderr("import leaf_ssl.cli, tensorflow", "--verbose")
    assert "oneDNN" in verbose, "TensorFlow prints its start-up lines (else this filter is not needed)"
    assert quiet == "", quiet


def test_a_failing_tensorflow_import_still_raises_and_stderr_comes_back(tmp_path):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text("raise ImportError('a broken install')\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import leaf_ssl.cli\n"
            "try:\n    import tensorflow\nexcept ImportError as error:\n    print('caught:', error, file=sys.stderr)\n"
            "print('tensorflow' in sys.modules, file=sys.stderr)")
    assert _stderr(code).splitlines() == ["caught: a broken install", "False"]


def test_only_the_closed_event_loop_noise_is_dropped():
    quiet = _stderr(UNRAISABLE)
    assert "Event loop is closed" not in quiet
    assert "a real problem" in quiet and "another real problem" in quiet
    assert _stderr(UNRAISABLE, "--verbose").count("Event loop is closed") == 2


NEVER_RETRIEVED = """
import asyncio, gc, logging, leaf_ssl.cli
logging.basicConfig()
loop = asyncio.new_event_loop()
future = loop.create_future()
future.set_exception(ValueError("NOT_FOUND: a step rotated away"))
del future; gc.collect(); loop.close()
logging.getLogger("asyncio").error("a real asyncio problem")
"""


def test_unretrieved_exceptions_of_abandoned_reads_are_dropped_and_other_asyncio_errors_kept():
    quiet = _stderr(NEVER_RETRIEVED)
    assert "never retrieved" not in quiet and "a real asyncio problem" in quiet
    assert "Future exception was never retrieved" in _stderr(NEVER_RETRIEVED, "--verbose")
