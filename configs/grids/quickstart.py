"""The README's main job (bash launch/demo.sh): one LEAF run of the demo recipe, its floors, its frontend.

LEAF mel-init trained self-supervised with configs/demo.py as it is (240 steps, seed 0) on the demo
corpus (built if absent), then probed on the three demo tasks; so are its untrained floors (initial
and re-estimated BatchNorm statistics) and both frontends alone (trained and untrained, pooled over
time, no encoder: what the encoder adds). One training seed: the claims section says so and gives
no verdict; configs/grids/demo.py is the grid with seeds.
"""
from leaf_ssl.evaluation.grid import grid_config


def get_config():
    grid = grid_config()
    grid.corpus = "demo_corpus"
    grid.tasks = "keyword instrument language"
    grid.task_flags = "--data_dir {corpus}"
    grid.variants = "leaf_mel"
    grid.seeds = 1
    grid.trained_features = "encoder frontend"
    grid.ssl_config = "configs/demo.py:{variant}"
    grid.train_flags = "--config.data.train_shards={corpus}/pretrain"
    return grid
