"""The exit-code convention (`leaf_ssl.cli.exits`): every reading tool exits 2 with one `error:` line on a
usage error, as argparse does for a malformed command line. Training's own cases are in tests/test_train.py."""
import numpy as np
import pytest
import soundfile

from leaf_ssl.cli import analyze, embed, exits, probe, tables


def _exit_of(main, argv, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return stop.value.code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture
def one_clip(tmp_path):
    path = tmp_path / "clip.wav"
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    return path


def test_a_checkpoint_that_is_not_there_is_a_usage_error_in_every_reader(tmp_path, one_clip, capsys):
    nowhere = str(tmp_path / "nowhere")
    commands = {
        "probe": (probe.main, ["--ckpt", nowhere, "--task", f"folder:{tmp_path}", "--workdir", str(tmp_path / "p")]),
        "embed": (embed.main, [str(one_clip), "--ckpt", nowhere, "--out", str(tmp_path / "e")]),
        "analyze": (analyze.main, ["--ckpt", nowhere, "--out", str(tmp_path / "a")]),
    }
    for name, (main, argv) in commands.items():
        code, lines = _exit_of(main, argv, capsys)
        assert code == exits.EXIT_USAGE, name
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, lines)


def test_tables_without_results_and_analyze_with_mismatched_labels_are_usage_errors(tmp_path, capsys):
    code, lines = _exit_of(tables.main, [str(tmp_path)], capsys)
    assert (code, lines) == (exits.EXIT_USAGE, [f"error: no probe result JSON found in {[str(tmp_path)]}"])
    code, lines = _exit_of(analyze.main, ["--ckpt", "a", "--ckpt", "b", "--label", "x", "--out", str(tmp_path)], capsys)
    assert code == exits.EXIT_USAGE and lines == ["error: 1 --label for 2 --ckpt: give one per checkpoint or none"]


def test_a_malformed_command_line_is_2_as_well(capsys):
    code, lines = _exit_of(probe.main, ["--no_such_flag"], capsys)
    assert code == exits.EXIT_USAGE and "error:" in lines[-1]  # argparse's own line, after its usage
