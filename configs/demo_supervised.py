"""CPU-sized supervised baseline on a demo corpus task (default: keyword spotting).

    python -m leaf_ssl.train --config configs/demo_supervised.py:leaf,random --workdir runs/demo_leaf_supervised

Same model and schedule sizes as configs/demo.py (`configuration.demo_scale`), trained with
labels instead of COLA. Arguments `frontend[,init]` as in demo.py. The task folder defaults to
demo_corpus/tasks/keyword (--config.supervised.task_dir to change it).
"""
from leaf_ssl.configuration import demo_scale, supervised_config


def get_config(arg=None):
    config = demo_scale(supervised_config(), "demo_supervised.py", arg)
    config.supervised.task_dir = "demo_corpus/tasks/keyword"
    # Peak lr = base x 16/256 = 1e-3: the classifier must learn within 240 small steps.
    config.train.base_learning_rate = 1.6e-2
    # No SpecAugment here: masks filled with zeros among log-compressed features left the tiny
    # encoder at chance for 200 steps (train accuracy 10%); without them it reaches 45% in 150.
    config.model.freq_masks = config.model.time_masks = 0
    return config
