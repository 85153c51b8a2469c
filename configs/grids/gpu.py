"""The paper's configs at one-GPU size (python -m leaf_ssl.grid --grid configs/grids/gpu.py).

EfficientNet-B0 and COLA's bilinear head, at 256 pairs for 500 steps, on the demo corpus plus 4
hours of packaged game audio (built if absent), with the warm-up in epochs of this corpus
(num_clips=0 counts its records instead of AudioSet's). LEAF random- and mel-init and mel,
self-supervised only, each probed next to its untrained floor.
"""
from leaf_ssl.evaluation.grid import grid_config


def get_config():
    grid = grid_config()
    grid.corpus = "demo_corpus_hours"
    grid.corpus_flags = "--scale small --pretrain_hours 4"
    grid.tasks = "keyword instrument language"
    grid.task_flags = "--data_dir {corpus}"
    grid.variants = "leaf_random leaf_mel mel"
    grid.seeds = 1
    grid.floors = "untrained"
    grid.ssl_config = "configs/pretrain_{frontend}.py:{init}"
    grid.train_flags = ("--config.data.train_shards={corpus}/pretrain --config.data.num_clips=0 "
                        "--config.train.batch_size=256 --config.train.total_steps=500 --config.train.warmup_epochs=5 "
                        "--config.train.log_every_steps=50 --config.train.checkpoint_every_steps=100000")
    return grid
