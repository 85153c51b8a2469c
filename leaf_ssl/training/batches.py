"""The training input of a config: this process's stream of batches, read through tf.data."""
import ml_collections

from leaf_ssl.data import pipeline
from leaf_ssl.model.build import is_supervised


def input_batches(config: ml_collections.ConfigDict, *, per_process_batch: int, crop_samples: int,
                  start_batch: int):
    """This process's stream of batches from batch `start_batch` on: (anchor, positive) pairs,
    or labelled crops for a supervised config."""
    if is_supervised(config):
        return pipeline.labelled_dataset(
            config.data.train_shards, per_process_batch=per_process_batch, crop_samples=crop_samples,
            seed=config.seed, num_classes=config.supervised.num_classes,
            shuffle_buffer=config.data.shuffle_buffer, start_batch=start_batch)
    return pipeline.pretraining_dataset(
        config.data.train_shards, per_process_batch=per_process_batch, crop_samples=crop_samples, seed=config.seed,
        noise_std=config.data.noise_std, shuffle_buffer=config.data.shuffle_buffer, start_batch=start_batch)
