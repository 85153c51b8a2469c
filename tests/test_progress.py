"""The one progress helper: its ETA extrapolates the fraction done, it is throttled, and it prints one
duration format (checked with a clock that this test moves)."""
from leaf_ssl import progress


def test_eta_throttling_and_the_final_line(monkeypatch, capsys):
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    line = progress.ProgressLine("embed", 100, "clips", every_seconds=5.0)
    now[0] = 110.0
    line.update(25, "3 skipped")   # the first update: no rate yet
    now[0] = 112.0
    line.update(30)                # within 5 s of the last line: silent
    now[0] = 120.0
    line.update(50)                # a quarter more in 10 s: the other half in 20 s
    now[0] = 3700.0
    line.update(50, fraction=0.9)  # bytes say 90% done: 0.65 in 3590 s since the first, 0.1 to go
    line.finish(100, "3 skipped")
    assert capsys.readouterr().err.splitlines() == [
        "embed: 25/100 clips, 3 skipped, elapsed 0:00:10, ETA estimating",
        "embed: 50/100 clips, elapsed 0:00:20, ETA 0:00:20",
        "embed: 50/100 clips, elapsed 1:00:00, ETA 0:09:12",
        "embed: 100 clips, 3 skipped in 1:00:00",
    ]


def test_the_eta_leaves_out_a_slow_start(monkeypatch, capsys):
    # the first of 30 batches takes 60 s (compilation), each later one 1 s: 29 s of work after the first
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    line = progress.ProgressLine("probe", 30, "batches", every_seconds=0.0)
    for batch in range(1, 11):
        now[0] = 60.0 + (batch - 1)
        line.update(batch)
    assert capsys.readouterr().err.splitlines()[-1] == "probe: 10/30 batches, elapsed 0:01:09, ETA 0:00:20"


def test_unknown_total_and_disabled(monkeypatch, capsys):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    open_ended = progress.ProgressLine("read", None, "files", every_seconds=0.0)
    now[0] = 61.0
    open_ended.update(7)
    progress.ProgressLine("quiet", 10, "files", enabled=False).finish(10)
    assert capsys.readouterr().err == "read: 7 files, elapsed 0:01:01\n"
    assert progress.format_duration(-5) == "0:00:00" and progress.format_duration(86399) == "23:59:59"
