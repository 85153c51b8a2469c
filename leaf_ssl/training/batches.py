"""The training input of a config: this process's stream of batches, read through tf.data."""
import ml_collections

from leaf_ssl.data import pipeline
from leaf_ssl.model.build import objective_of


def _pairs(config: ml_collections.ConfigDict, **stream):
    return pipeline.pretraining_dataset(config.data.train_shards, seed=config.seed, noise_std=config.data.noise_std,
                                        shuffle_buffer=config.data.shuffle_buffer, **stream)


def _labelled_crops(config: ml_collections.ConfigDict, **stream):
    return pipeline.labelled_dataset(config.data.train_shards, seed=config.seed,
                                     num_classes=config.supervised.num_classes,
                                     shuffle_buffer=config.data.shuffle_buffer, **stream)


# Per objective (`build.OBJECTIVES`, the same names), the batches its step takes.
INPUTS = {"cola": _pairs, "supervised": _labelled_crops}


def input_batches(config: ml_collections.ConfigDict, *, per_process_batch: int, crop_samples: int,
                  start_batch: int):
    """This process's stream of batches from batch `start_batch` on: (anchor, positive) pairs,
    or labelled crops for a supervised config."""
    return INPUTS[objective_of(config).name](config, per_process_batch=per_process_batch,
                                              crop_samples=crop_samples, start_batch=start_batch)
