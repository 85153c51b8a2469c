"""Supervised LEAF + EfficientNet-B0 on a labelled task: the paper's supervised rows.

    python -m leaf_ssl.train --config configs/supervised_leaf.py:random --workdir runs/leaf_random_supervised \
        --config.supervised.task_dir=/data/audioset/labelled

The task folder holds task.json and train-*.tfrecord shards (`python -m leaf_ssl.data.audioset`
writes both; so does the demo corpus for its tasks). Argument: the filterbank initialisation,
`mel` (default) or `random`. Recipe: see `configuration.supervised_recipe`.
"""
from leaf_ssl.model.configuration import parse_config_arg, supervised_recipe


def get_config(arg=None):
    options = parse_config_arg(arg, "supervised_leaf.py", {"init": ("mel", "random")})
    config = supervised_recipe()
    config.frontend.name = "leaf"
    config.frontend.init = options["init"]
    return config
