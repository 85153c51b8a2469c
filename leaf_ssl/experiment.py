"""From a config to the objects of a run: model, objective, schedule, optimizer, step counts.

Shared by the trainer's entry point, the benchmark and the probe, so that a checkpoint's saved
config rebuilds exactly the model that wrote it.
"""
import dataclasses
import json
import math
import os

import flax.linen as nn

import ml_collections
import optax

from leaf_ssl import cola, optim, supervised
from leaf_ssl.data import pipeline
from leaf_ssl.encoders import make_encoder
from leaf_ssl.frontends import make_frontend
from leaf_ssl.trainer import DATA_AXIS


def crop_samples(config: ml_collections.ConfigDict) -> int:
    """Samples per crop: round(crop_seconds * sample_rate) (0.96 s at 16 kHz = 15360)."""
    return int(round(config.data.crop_seconds * config.data.sample_rate))


def is_supervised(config: ml_collections.ConfigDict) -> bool:
    """A supervised-baseline config (`configuration.supervised_config`) rather than COLA pretraining."""
    return "supervised" in config


def resolve_supervised_task(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Fills a supervised config's classes and shards from its task folder; other configs unchanged.

    Reads `<task_dir>/task.json` for the class count and `multi_label`, and sets
    `data.train_shards` to `<task_dir>/train-*.tfrecord` unless given.

    Raises:
      FileNotFoundError: no task.json in the task folder.
      ValueError: `supervised.num_classes` was set and disagrees with task.json.
    """
    if not is_supervised(config):
        return config
    import tensorflow as tf  # gfile: the task folder may be in a bucket
    task_dir = config.supervised.task_dir
    info_path = os.path.join(task_dir, "task.json")
    if not tf.io.gfile.exists(info_path):
        raise FileNotFoundError(f"config.supervised.task_dir={task_dir!r} has no task.json: give a labelled task "
                                "folder (e.g. demo_corpus/tasks/keyword, or the output of leaf_ssl.data.audioset)")
    with tf.io.gfile.GFile(info_path) as info_file:
        info = json.load(info_file)
    num_classes = len(info["classes"])
    if config.supervised.num_classes not in (0, num_classes):
        raise ValueError(f"config.supervised.num_classes={config.supervised.num_classes} but {info_path} lists "
                         f"{num_classes} classes; leave it at 0")
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.supervised.num_classes = num_classes
    resolved.supervised.multi_label = bool(info.get("multi_label", False))
    if not resolved.data.train_shards:
        resolved.data.train_shards = os.path.join(task_dir, "train-*.tfrecord")
    return resolved


def build_model(config: ml_collections.ConfigDict, *, data_parallel: bool = True) -> nn.Module:
    """The COLA model of `config`, or the classifier of a (resolved) supervised config.

    data_parallel: True inside the shard_map train step, where batch_norm='sync' averages
    BatchNorm moments over the 'data' axis; False for single-program use (probe, embedding),
    where no mesh axis exists.
    """
    encoder_config = ml_collections.ConfigDict(config.encoder.to_dict())
    sync_batch_norm = data_parallel and config.train.batch_norm == "sync"
    encoder_config.bn_axis_name = DATA_AXIS if sync_batch_norm else None
    frontend = make_frontend(config.frontend)
    if config.model.remat_frontend:
        frontend = _rematerialised(frontend)
    masks = dict(freq_masks=config.model.freq_masks, freq_mask_width=config.model.freq_mask_width,
                 time_masks=config.model.time_masks, time_mask_width=config.model.time_mask_width)
    if is_supervised(config):
        if config.supervised.num_classes < 1:
            raise ValueError("config.supervised.num_classes is not resolved: call resolve_supervised_task first")
        return supervised.ClassifierModel(frontend=frontend, encoder=make_encoder(encoder_config),
                                          num_classes=config.supervised.num_classes, **masks)
    return cola.ColaModel(
        frontend=frontend,
        encoder=make_encoder(encoder_config),
        embedding_dim=config.model.embedding_dim,
        similarity=config.model.similarity,
        temperature=config.model.temperature,
        **masks,
    )


def train_objective(config: ml_collections.ConfigDict, *, data_parallel: bool = True):
    """What the train step minimises for `config` (see `trainer.Objective`).

    data_parallel: False for a replay outside the step's shard_map, where global negatives
    have no mesh axis to gather over and fall back to the batch's own.
    """
    if is_supervised(config):
        return supervised.train_objective(config.supervised.multi_label)
    global_negatives = data_parallel and config.model.negatives == "global"
    return cola.train_objective(DATA_AXIS if global_negatives else None)


def _rematerialised(module: nn.Module) -> nn.Module:
    """The same module (same fields, same parameter tree) with its activations recomputed in the
    backward pass instead of stored: the frontend's full-rate filter outputs dominate memory."""
    fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
              if f.init and f.name not in ("parent", "name")}
    return nn.remat(type(module))(**fields)


def training_steps(config: ml_collections.ConfigDict, num_clips: int) -> tuple[int, int]:
    """(total_steps, warmup_steps) from epochs of `num_clips`, unless total_steps is set."""
    steps_per_epoch = max(1, num_clips // config.train.batch_size)
    if config.train.total_steps > 0:
        total = config.train.total_steps
    else:
        total = max(1, math.ceil(config.train.num_epochs * steps_per_epoch))
    warmup = int(round(config.train.warmup_epochs * steps_per_epoch))
    return total, min(warmup, total - 1)


def build_optimizer(config: ml_collections.ConfigDict, model: nn.Module, params, *, total_steps: int,
                    warmup_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = optim.learning_rate_schedule(
        base_learning_rate=config.train.base_learning_rate, global_batch=config.train.batch_size,
        warmup_steps=warmup_steps, total_steps=total_steps)
    optimizer = optim.make_optimizer(schedule, weight_decay=config.train.weight_decay, params=params,
                                     frozen_prefixes=frozen_param_prefixes(model))
    return optimizer, schedule


def frozen_param_prefixes(model: nn.Module) -> tuple[tuple[str, ...], ...]:
    """Param-tree path prefixes that get no optimizer update (the frontend's frozen parts)."""
    frozen_parts = getattr(model.frontend, "frozen_parts", lambda: ())()
    return tuple(("frontend", part) for part in frozen_parts)


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
