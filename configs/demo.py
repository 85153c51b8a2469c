"""CPU-sized COLA pretraining on the demo corpus (python -m leaf_ssl.data.demo --out demo_corpus).

    python -m leaf_ssl.train --config configs/demo.py --workdir runs/demo_leaf

Same model as the paper (LEAF + EfficientNet-B0, bilinear COLA head), with a small batch and a
short schedule so two CPU cores finish in minutes (`configuration.demo_scale`). Arguments
`frontend[,init]`: frontend `leaf` (default), `sincnet`, `sincnet_plus` or `mel`; init `mel`
(default) or `random` (ignored for mel).
"""
from leaf_ssl.configuration import demo_scale, pretraining_config


def get_config(arg=None):
    config = demo_scale(pretraining_config(), "demo.py", arg)
    if config.frontend.name == "mel":
        config.train.base_learning_rate = 5e-5
    config.data.train_shards = "demo_corpus/pretrain"
    # The small batch learns best with a larger peak rate than the 256-scaled recipe gives.
    config.train.base_learning_rate *= 16
    return config
