"""The paper's grid on the demo corpus, on a CPU (python -m leaf_ssl.grid --grid configs/grids/demo.py).

Every variant trained self-supervised with the demo recipe (configs/demo.py: tiny EfficientNet,
128 pairs, cosine similarity) at 120 steps instead of the recipe's 240, on 2 training seeds: the
core grid (mel, LEAF mel- and random-init: claims 1 and 2 for LEAF) fits about 75 minutes of two
idle cores that way, probes included (docs/results.md, "The demo grid"). `variants="all"` adds
SincNet, `supervised=True` the supervised rows (the keyword task, so their keyword column is
in-domain).
"""
from leaf_ssl.evaluation.grid import grid_config


def get_config():
    grid = grid_config()
    grid.corpus = "demo_corpus"
    grid.tasks = "keyword instrument language"
    grid.task_flags = "--data_dir {corpus}"
    grid.ssl_config = "configs/demo.py:{variant}"
    grid.supervised_config = "configs/demo_supervised.py:{variant}"
    # No kNN while training (configs/demo.py's evals): the probes at the end measure the same, and the
    # 75 minutes of the core grid have no room for them.
    grid.train_flags = "--config.data.train_shards={corpus}/pretrain --config.train.total_steps=120 --config.evals=()"
    grid.supervised_flags = "--config.supervised.task_dir={corpus}/tasks/keyword --config.train.total_steps=120"
    return grid
