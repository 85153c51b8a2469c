"""The restart logic of `python -m leaf_ssl.supervise`, against a fake training that exits as planned."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from leaf_ssl.cli.supervise import supervise

# A stand-in for `python -m leaf_ssl.train`: each start appends a line to calls, exits with the next
# code of plan; "wait" sleeps until SIGTERM, then exits 75 as training does after saving.
FAKE_TRAIN = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    folder = Path(sys.argv[1])
    starts = len((folder / "calls").read_text().splitlines()) if (folder / "calls").exists() else 0
    with open(folder / "calls", "a") as calls:
        calls.write("start\\n")
    code = (folder / "plan").read_text().split()[starts]
    if code == "wait":
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(75))
        (folder / "waiting").write_text("")
        time.sleep(60)
    sys.exit(int(code))
""")


def _fake(tmp_path, *plan):
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    (tmp_path / "plan").write_text(" ".join(plan))
    return [sys.executable, str(tmp_path / "fake_train.py"), str(tmp_path)]


def _starts(tmp_path):
    return len((tmp_path / "calls").read_text().splitlines())


def test_each_exit_75_is_restarted_until_training_ends(tmp_path):
    said = []
    assert supervise(_fake(tmp_path, "75", "75", "0"), max_restarts=5, delay=0, say=said.append) == 0
    assert _starts(tmp_path) == 3 and len(said) == 2 and "restarting" in said[0]


@pytest.mark.parametrize("code", [65, 2, 1])
def test_any_other_exit_code_ends_it_unrestarted(tmp_path, code):
    assert supervise(_fake(tmp_path, "75", str(code), "0"), max_restarts=5, delay=0, say=lambda _: None) == code
    assert _starts(tmp_path) == 2


def test_it_gives_up_after_max_restarts(tmp_path):
    said = []
    assert supervise(_fake(tmp_path, *["75"] * 5), max_restarts=2, delay=0, say=said.append) == 75
    assert _starts(tmp_path) == 3 and said[-1] == "gave up after 2 restarts"


def test_a_stop_file_keeps_a_saved_run_stopped(tmp_path):
    (tmp_path / "stop").write_text("")
    said = []
    assert supervise(_fake(tmp_path, "75", "0"), max_restarts=5, delay=0, stop_file=tmp_path / "stop",
                     say=said.append) == 75
    assert _starts(tmp_path) == 1 and "asks not to restart" in said[0]


def test_sigterm_to_the_supervisor_reaches_training_and_is_not_restarted(tmp_path):
    command = [sys.executable, "-c", "import sys; from leaf_ssl.cli.supervise import supervise; "
               f"sys.exit(supervise({_fake(tmp_path, 'wait', '0')!r}, max_restarts=5, delay=0))"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "waiting").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 75
    assert _starts(tmp_path) == 1 and "stopped by signal SIGTERM" in process.stderr.read()
