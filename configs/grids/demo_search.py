"""The demo recipe search (docs/results.md): variants of one starting recipe, each trained on the demo
corpus and probed next to the untrained floors of its architecture; one table row per run.

    python -m leaf_ssl.grid --grid configs/grids/demo_search.py [--grid.variants="tiny tiny_cosine"]

Every variant starts from the recipe the search began with (EfficientNet-B0, COLA's bilinear
similarity, 16 pairs per step, LEAF mel-init, 240 steps), spelled out in `train_flags` so that the
table stays reproducible as configs/demo.py changes (it now holds the search's winner,
tiny_cosine_batch_128). Variants with the same frontend and encoder flags share their floors.
"""
from leaf_ssl.evaluation.grid import grid_config

TINY = "--config.encoder.name=efficientnet_tiny"
COSINE = "--config.model.similarity=dot"
TINY_COSINE = f"{TINY} {COSINE}"


def get_config():
    grid = grid_config()
    grid.corpus = "demo_corpus"
    grid.tasks = "keyword instrument language"
    grid.task_flags = "--data_dir {corpus}"
    grid.seeds = 1
    grid.floors = "untrained untrained_bn"
    grid.analyze = False
    grid.table_rows = "run"
    grid.ssl_config = "configs/demo.py:{variant}"
    grid.base_variant = "leaf_mel"
    grid.train_flags = ("--config.data.train_shards={corpus}/pretrain --config.encoder.name=efficientnet_b0 "
                        "--config.model.similarity=bilinear --config.train.batch_size=16")
    grid.variant_flags = {
        "b0": "",  # the starting recipe
        "tiny": TINY,
        "tiny_cosine": TINY_COSINE,
        "tiny_cosine_no_masks": f"{TINY_COSINE} --config.model.freq_masks=0 --config.model.time_masks=0",
        "tiny_cosine_narrow_masks": f"{TINY_COSINE} --config.model.freq_mask_width=4 --config.model.time_mask_width=4",
        "tiny_cosine_no_drop_path": f"{TINY_COSINE} --config.encoder.drop_path_rate=0",
        "tiny_cosine_temperature_0_3": f"{TINY_COSINE} --config.model.temperature=0.3",
        "tiny_cosine_avg_pool": f"{TINY_COSINE} --config.encoder.pooling=avg",
        "tiny_cosine_lr_x4": f"{TINY_COSINE} --config.train.base_learning_rate=0.032",
        "tiny_cosine_batch_64": f"{TINY_COSINE} --config.train.batch_size=64",
        "tiny_cosine_batch_64_again": f"{TINY_COSINE} --config.train.batch_size=64",  # repeats to the last digit?
        "tiny_cosine_960_steps": f"{TINY_COSINE} --config.train.total_steps=960 --config.train.checkpoint_every_steps=320",
        "tiny_cosine_batch_128": f"{TINY_COSINE} --config.train.batch_size=128",
        "tiny_cosine_batch_128_mlp_head": f"{TINY_COSINE} --config.train.batch_size=128 --config.model.projection_head=mlp",
        "tiny_cosine_batch_128_avg_pool": f"{TINY_COSINE} --config.train.batch_size=128 --config.encoder.pooling=avg",
        "tiny_cosine_batch_256": f"{TINY_COSINE} --config.train.batch_size=256",
        "b0_cosine": COSINE,
    }
    grid.variants = " ".join(grid.variant_flags)
    return grid
