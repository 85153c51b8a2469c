"""CPU-sized COLA pretraining on the demo corpus (python -m leaf_ssl.data.demo --out demo_corpus).

    python -m leaf_ssl.train --config configs/demo.py --workdir runs/demo_leaf

Same model as the paper (LEAF + EfficientNet-B0, bilinear COLA head), with a small batch and a
short schedule so two CPU cores finish in minutes. Arguments `frontend[,init]`: frontend
`leaf` (default), `sincnet`, `sincnet_plus` or `mel`; init `mel` (default) or `random`
(ignored for mel).
"""
from leaf_ssl.configuration import parse_config_arg, pretraining_config


def get_config(arg=None):
    options = parse_config_arg(arg, "demo.py", {"frontend": ("leaf", "sincnet", "sincnet_plus", "mel"),
                                                "init": ("mel", "random")})
    config = pretraining_config()
    if options["frontend"] == "mel":
        config.frontend = {"name": "mel", "preset": "leaf"}
        config.train.base_learning_rate = 5e-5
    else:
        config.frontend = {"name": options["frontend"], "n_filters": 40, "init": options["init"]}
    config.data.train_shards = "demo_corpus/pretrain"
    config.data.shuffle_buffer = 1024
    # A few hundred steps: BatchNorm's running averages must forget their initial values
    # (0.99**240 = 9% would remain), since probes run the encoder in inference mode.
    config.encoder.bn_momentum = 0.95
    # Two CPU cores run the B0 step at roughly 10-20 crops/s: 240 steps of 16 pairs take about
    # ten minutes (see the README's numbers).
    config.train.batch_size = 16
    config.train.total_steps = 240
    config.train.warmup_epochs = 0.25
    # The small batch learns best with a larger peak rate than the 256-scaled recipe gives.
    config.train.base_learning_rate *= 16
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 80
    return config
