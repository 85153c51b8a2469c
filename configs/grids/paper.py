"""The paper's grid on AudioSet (python -m leaf_ssl.grid --grid configs/grids/paper.py \
    --grid.train_flags=--config.data.train_shards=/data/audioset/pretrain \
    --grid.supervised_flags=--config.supervised.task_dir=/data/audioset/labelled \
    --grid.task_flags="--tfds_data_dir /data/tfds").

The paper's configs (configs/pretrain_*.py, configs/supervised_*.py), self-supervised and
supervised, probed on its seven downstream tasks (prepared with `tfds build NAME`).
"""
from leaf_ssl.evaluation.grid import grid_config


def get_config():
    grid = grid_config()
    grid.tasks = "speech_commands crema_d nsynth_instrument nsynth_pitch voxforge voxceleb librispeech_speaker"
    grid.variants = "all"
    grid.seeds = 1
    grid.supervised = True
    grid.ssl_config = "configs/pretrain_{frontend}.py:{init}"
    grid.supervised_config = "configs/supervised_{frontend}.py:{init}"
    return grid
