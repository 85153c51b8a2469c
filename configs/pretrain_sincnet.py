"""COLA pretraining of SincNet (or SincNet+) + EfficientNet-B0 on AudioSet.

Arguments `init[,variant]`: init `mel` (default) or `random`; variant `sincnet` (default:
LeakyReLU, max-pool, LayerNorm) or `plus` (SincNet filters, then LEAF's Gaussian lowpass + sPCEN).
"""
from leaf_ssl.model.configuration import parse_config_arg, pretraining_config


def get_config(arg=None):
    options = parse_config_arg(arg, "pretrain_sincnet.py",
                               {"init": ("mel", "random"), "variant": ("sincnet", "plus")})
    config = pretraining_config()
    config.frontend.name = "sincnet_plus" if options["variant"] == "plus" else "sincnet"
    config.frontend.init = options["init"]
    config.data.num_clips = 1_785_920
    return config
