"""COLA pretraining on fixed log-mel filterbanks + EfficientNet-B0: the paper's baseline.

Argument: the mel preset, `leaf` (default: 40 bins, 512-point FFT, LEAF's baseline) or `cola`
(64 bins, 1024-point FFT, COLA's). The recipe lowers the learning rate to 5e-5 for mel.
"""
from leaf_ssl.model.configuration import parse_config_arg, pretraining_config


def get_config(arg=None):
    options = parse_config_arg(arg, "pretrain_mel.py", {"preset": ("leaf", "cola")})
    config = pretraining_config()
    config.frontend = {"name": "mel", "preset": options["preset"]}
    config.train.base_learning_rate = 5e-5
    config.data.num_clips = 1_785_920
    return config
