"""CPU-sized supervised baseline on a demo corpus task (default: keyword spotting).

    python -m leaf_ssl.train --config configs/demo_supervised.py:leaf,random --workdir runs/demo_leaf_supervised

Same model and schedule sizes as configs/demo.py (`leaf_ssl.model.configuration.demo_scale`), trained with
labels instead of COLA. Arguments `frontend[,init]` as in demo.py. The task folder defaults to
demo_corpus/tasks/keyword (--config.supervised.task_dir to change it).
"""
from leaf_ssl.model.configuration import demo_scale, supervised_config


def get_config(arg=None):
    config = demo_scale(supervised_config(), "demo_supervised.py", arg)
    config.supervised.task_dir = "demo_corpus/tasks/keyword"
    # Peak lr = base x 16/256 = 1e-3: the classifier must learn within 240 small steps.
    config.train.base_learning_rate = 1.6e-2
    # No SpecAugment here: zero-filled masks among log-compressed features keep the tiny encoder
    # at chance within this budget (docs/results.md).
    config.model.freq_masks = config.model.time_masks = 0
    return config
