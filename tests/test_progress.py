"""The one progress helper: its ETA extrapolates the fraction done, it is throttled, and it prints one
duration format (checked with a clock that this test moves)."""
from leaf_ssl import progress


def test_eta_throttling_and_the_final_line(monkeypatch, capsys):
    now = [100.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    line = progress.ProgressLine("embed", 100, "clips", every_seconds=5.0)
    now[0] = 110.0
    line.update(25, "3 skipped")   # a quarter in 10 s: 30 s to go
    now[0] = 112.0
    line.update(30)                # within 5 s of the last line: silent
    now[0] = 3700.0
    line.update(50, fraction=0.9)  # bytes say 90% done after 3600 s: 400 s to go
    line.finish(100, "3 skipped")
    assert capsys.readouterr().err.splitlines() == [
        "embed: 25/100 clips, 3 skipped, elapsed 0:00:10, ETA 0:00:30",
        "embed: 50/100 clips, elapsed 1:00:00, ETA 0:06:40",
        "embed: 100 clips, 3 skipped in 1:00:00",
    ]


def test_unknown_total_and_disabled(monkeypatch, capsys):
    now = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    open_ended = progress.ProgressLine("read", None, "files", every_seconds=0.0)
    now[0] = 61.0
    open_ended.update(7)
    progress.ProgressLine("quiet", 10, "files", enabled=False).finish(10)
    assert capsys.readouterr().err == "read: 7 files, elapsed 0:01:01\n"
    assert progress.format_duration(-5) == "0:00:00" and progress.format_duration(86399) == "23:59:59"
