"""A seconds-long run for tests and smoke checks: tiny EfficientNet, few filters, short crops.

Arguments `frontend[,objective]`: a registered frontend (leaf | sincnet | sincnet_plus | mel and any
registered since), default leaf; a registered objective, `cola` (default) or `supervised` (then pass
--config.supervised.task_dir=DIR).
"""
from leaf_ssl.model.configuration import encoder_config, frontend_choices, frontend_config, parse_config_arg
from leaf_ssl.model.objectives import OBJECTIVES


def get_config(arg=None):
    options = parse_config_arg(arg, "tiny.py", {"frontend": frontend_choices(), "objective": tuple(OBJECTIVES)})
    config = OBJECTIVES[options["objective"]].schema()
    config.frontend = frontend_config(options["frontend"], n_filters=8, init="mel")
    config.encoder = encoder_config("efficientnet_tiny", drop_path_rate=0.0)
    config.model.embedding_dim = 16
    config.model.freq_mask_width = 2
    config.model.time_mask_width = 4
    config.data.crop_seconds = 0.32
    config.data.shuffle_buffer = 64
    config.train.batch_size = 16
    config.train.total_steps = 4
    config.train.warmup_epochs = 0.0
    config.train.base_learning_rate = 1e-3
    config.train.log_every_steps = 2
    config.train.checkpoint_every_steps = 2
    return config
