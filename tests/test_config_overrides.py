"""`--config.x=y` on the tools that read models: the same ml_collections parser as train's, applied to
`random:` configs only, and named in one-line errors."""
import json

import numpy as np
import pytest
import soundfile

from leaf_ssl.cli import config_overrides, embed as embed_command, probe as probe_command
from tests.tiny_config import CONFIGS, tiny_config

TINY = CONFIGS / "tiny.py"
OVERRIDES = ["--config.frontend.n_filters=12", "--config.train.tensorboard=False", "--config.data.crop_seconds=0.5",
             "--config.frontend.name=sincnet"]


def test_overrides_are_split_from_the_tool_s_own_arguments():
    args = probe_command.parse_args(["--ckpt", "random:x.py", "--config.frontend.n_filters", "12", "--task", "t",
                                     "--config.train.tensorboard=False"])
    assert args.ckpt == "random:x.py" and args.task == ["t"]
    assert args.config_overrides == ["--config.frontend.n_filters=12", "--config.train.tensorboard=False"]
    with pytest.raises(SystemExit):
        probe_command.parse_args(["--ckpt", "random:x.py", "--task", "t", "--confg.frontend.n_filters=12"])


def test_values_are_typed_as_train_s_parser_types_them():
    changed = config_overrides.apply_overrides(tiny_config("leaf"), OVERRIDES)
    assert changed.frontend.n_filters == 12 and changed.train.tensorboard is False
    assert changed.data.crop_seconds == 0.5 and changed.frontend.name == "sincnet"
    # train's own flag: the same strings after `--config configs/tiny.py`
    from absl import flags
    from ml_collections import config_flags
    train_flags = flags.FlagValues()
    argv = ["train", f"--config={TINY}:leaf", *OVERRIDES]
    config_flags.DEFINE_config_file("config", None, flag_values=train_flags, sys_argv=argv)
    train_flags(argv)
    assert train_flags.config.to_dict() == changed.to_dict()


@pytest.mark.parametrize("override, named", [("--config.frontend.n_filtres=12", "n_filtres"),
                                             ("--config.frontend.n_filters=twelve", "twelve")])
def test_a_bad_override_is_an_error_naming_it(override, named):
    with pytest.raises(ValueError, match=named):
        config_overrides.apply_overrides(tiny_config("leaf"), [override])


def test_embed_builds_the_overridden_random_model_and_refuses_overrides_on_a_checkpoint(tmp_path, capsys):
    soundfile.write(tmp_path / "tone.wav", np.sin(np.arange(8000) * 0.2).astype(np.float32), 16000)
    embed_command.main(["--ckpt", f"random:{TINY}:leaf", str(tmp_path / "tone.wav"), "--out", str(tmp_path / "out"),
                        "--features", "frontend", "--config.frontend.n_filters=12"])
    assert np.load(tmp_path / "out" / "tone.wav.frontend.npy").shape == (50, 12)
    report = json.loads((tmp_path / "out" / "embed_report.json").read_text())
    assert report["checkpoint"] == f"random:{TINY}:leaf --config.frontend.n_filters=12"
    with pytest.raises(SystemExit):
        embed_command.main(["--ckpt", str(tmp_path), str(tmp_path / "tone.wav"), "--out", str(tmp_path / "out2"),
                            "--config.frontend.n_filters=12"])
    assert "config overrides apply to random: specs only" in capsys.readouterr().err
