"""From a config to the objects of a run: model, schedule, optimizer, step counts.

Shared by the trainer's entry point, the benchmark and the probe, so that a checkpoint's saved
config rebuilds exactly the model that wrote it.
"""
import dataclasses
import math

import flax.linen as nn

import ml_collections
import optax

from leaf_ssl import cola, optim
from leaf_ssl.encoders import make_encoder
from leaf_ssl.frontends import make_frontend
from leaf_ssl.trainer import DATA_AXIS


def crop_samples(config: ml_collections.ConfigDict) -> int:
    """Samples per crop: round(crop_seconds * sample_rate) (0.96 s at 16 kHz = 15360)."""
    return int(round(config.data.crop_seconds * config.data.sample_rate))


def build_model(config: ml_collections.ConfigDict, *, data_parallel: bool = True) -> cola.ColaModel:
    """The COLA model of `config`.

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
    return cola.ColaModel(
        frontend=frontend,
        encoder=make_encoder(encoder_config),
        embedding_dim=config.model.embedding_dim,
        similarity=config.model.similarity,
        temperature=config.model.temperature,
        freq_masks=config.model.freq_masks,
        freq_mask_width=config.model.freq_mask_width,
        time_masks=config.model.time_masks,
        time_mask_width=config.model.time_mask_width,
    )


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


def build_optimizer(config: ml_collections.ConfigDict, model: cola.ColaModel, params, *, total_steps: int,
                    warmup_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = optim.learning_rate_schedule(
        base_learning_rate=config.train.base_learning_rate, global_batch=config.train.batch_size,
        warmup_steps=warmup_steps, total_steps=total_steps)
    optimizer = optim.make_optimizer(schedule, weight_decay=config.train.weight_decay, params=params,
                                     frozen_prefixes=cola.frozen_param_prefixes(model))
    return optimizer, schedule
