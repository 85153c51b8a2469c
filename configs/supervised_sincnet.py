"""Supervised SincNet (or SincNet+) + EfficientNet-B0 on a labelled task.

Arguments `init[,variant]` as in pretrain_sincnet.py: init `mel` (default) or `random`; variant
`sincnet` (default) or `plus`. Pass --config.supervised.task_dir=DIR.
"""
from leaf_ssl.model.configuration import parse_config_arg, supervised_recipe


def get_config(arg=None):
    options = parse_config_arg(arg, "supervised_sincnet.py",
                               {"init": ("mel", "random"), "variant": ("sincnet", "plus")})
    config = supervised_recipe()
    config.frontend.name = "sincnet_plus" if options["variant"] == "plus" else "sincnet"
    config.frontend.init = options["init"]
    return config
