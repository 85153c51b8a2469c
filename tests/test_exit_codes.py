"""The exit-code convention (`leaf_ssl.cli.exits`): every reading tool exits 2 with one `error:` line on a
usage error, as argparse does for a malformed command line. Training's own cases are in tests/test_train.py."""
import numpy as np
import pytest
import soundfile

from leaf_ssl.cli import analyze, embed, exits, probe, tables
from tests.cli_exits import assert_exits
from tests.probe_fixtures import write_tone_task


@pytest.fixture
def one_clip(tmp_path):
    path = tmp_path / "clip.wav"
    soundfile.write(path, np.zeros(16000, np.float32), 16000)
    return path


def test_a_checkpoint_that_is_not_there_is_a_usage_error_in_every_reader(tmp_path, one_clip, capsys):
    nowhere = str(tmp_path / "nowhere")
    task = write_tone_task(tmp_path / "tones", train_per_class=1, test_per_class=1)
    assert_exits(capsys, exits.EXIT_USAGE, "does not exist", probe.main,
                 ["--ckpt", nowhere, "--task", f"folder:{task}", "--workdir", str(tmp_path / "p")])
    assert_exits(capsys, exits.EXIT_USAGE, "does not exist", embed.main,
                 [str(one_clip), "--ckpt", nowhere, "--out", str(tmp_path / "e")])
    assert_exits(capsys, exits.EXIT_USAGE, "does not exist", analyze.main, ["--ckpt", nowhere, "--out", str(tmp_path / "a")])


def test_tables_without_results_is_a_usage_error(tmp_path, capsys):
    assert_exits(capsys, exits.EXIT_USAGE, "no probe result JSON found", tables.main, [str(tmp_path)])


def test_a_malformed_command_line_is_2_as_well(capsys):
    with pytest.raises(SystemExit) as stop:
        probe.main(["--no_such_flag"])
    assert stop.value.code == exits.EXIT_USAGE and "error:" in capsys.readouterr().err  # argparse's own line
