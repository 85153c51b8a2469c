"""Supervised fixed log-mel filterbanks + EfficientNet-B0 on a labelled task.

Argument: the mel preset, `leaf` (default: 40 bins, 512-point FFT) or `cola` (64 bins, 1024).
Pass --config.supervised.task_dir=DIR.
"""
from leaf_ssl.model.configuration import parse_config_arg, supervised_recipe


def get_config(arg=None):
    options = parse_config_arg(arg, "supervised_mel.py", {"preset": ("leaf", "cola")})
    config = supervised_recipe()
    config.frontend = {"name": "mel", "preset": options["preset"]}
    return config
