"""COLA pretraining of LEAF + EfficientNet-B0 on AudioSet: the paper's recipe.

    python -m leaf_ssl.train --config configs/pretrain_leaf.py:random --workdir runs/leaf_random \
        --config.data.train_shards=gs://bucket/audioset/pretrain

Argument: the filterbank initialisation, `mel` (default) or `random`.
"""
from leaf_ssl.model.configuration import parse_config_arg, pretraining_config


def get_config(arg=None):
    options = parse_config_arg(arg, "pretrain_leaf.py", {"init": ("mel", "random")})
    config = pretraining_config()
    config.frontend.name = "leaf"
    config.frontend.init = options["init"]
    config.data.num_clips = 1_785_920  # AudioSet as the paper used it; saves counting 2M records.
    return config
