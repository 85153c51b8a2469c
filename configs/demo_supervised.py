"""CPU-sized supervised baseline on a demo corpus task (default: keyword spotting).

    python -m leaf_ssl.train --config configs/demo_supervised.py:leaf,random --workdir runs/demo_leaf_supervised

Same model and schedule sizes as configs/demo.py, trained with labels instead of COLA.
Arguments `frontend[,init]` as in demo.py. The task folder defaults to
demo_corpus/tasks/keyword (--config.supervised.task_dir to change it).
"""
from leaf_ssl.configuration import parse_config_arg, supervised_config


def get_config(arg=None):
    options = parse_config_arg(arg, "demo_supervised.py", {"frontend": ("leaf", "sincnet", "sincnet_plus", "mel"),
                                                           "init": ("mel", "random")})
    config = supervised_config()
    if options["frontend"] == "mel":
        config.frontend = {"name": "mel", "preset": "leaf"}
    else:
        config.frontend = {"name": options["frontend"], "n_filters": 40, "init": options["init"]}
    config.supervised.task_dir = "demo_corpus/tasks/keyword"
    config.data.shuffle_buffer = 1024
    # A few hundred steps: BatchNorm's running averages must forget their initial values
    # (0.99**240 = 9% would remain), since probes run the encoder in inference mode.
    config.encoder.bn_momentum = 0.95
    config.train.batch_size = 16
    config.train.total_steps = 240
    config.train.warmup_epochs = 0.25
    # Peak lr = base x 16/256 = 1e-3: the classifier must learn within 240 small steps.
    config.train.base_learning_rate = 1.6e-2
    # No SpecAugment here: masks filled with zeros among log-compressed features left the tiny
    # encoder at chance for 200 steps (train accuracy 10%); without them it reaches 45% in 150.
    config.model.freq_masks = config.model.time_masks = 0
    config.train.log_every_steps = 10
    config.train.checkpoint_every_steps = 80
    return config
