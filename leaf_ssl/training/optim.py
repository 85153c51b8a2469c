"""Optimizer and learning-rate schedule of the COLA recipe.

AdamW with peak learning rate `base_learning_rate * global_batch / 256`, linear warm-up
from 0, then cosine decay to 0 at the last step. (The first author's code meant to do this
but its "cosine" silently stayed constant; `tests/test_optim.py` checks it really decays.)
Parameters under frozen prefixes keep their values: their updates are set to zero, and
weight decay does not touch them either.
"""
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import ml_collections
import optax

from leaf_ssl.model import build


def learning_rate_schedule(*, base_learning_rate: float, global_batch: int, warmup_steps: int,
                           total_steps: int) -> optax.Schedule:
    """Linear warm-up to base_lr * global_batch / 256, then cosine decay to 0 at total_steps."""
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    peak = base_learning_rate * global_batch / 256
    warmup_steps = min(warmup_steps, total_steps - 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=warmup_steps,
        decay_steps=total_steps, end_value=0.0)


def trainable_mask(params, frozen_prefixes: Sequence[tuple[str, ...]]):
    """Pytree of bools, False for every leaf whose path starts with a frozen prefix."""
    def is_trainable(path, _):
        keys = tuple(getattr(entry, "key", getattr(entry, "name", None)) for entry in path)
        return not any(keys[:len(prefix)] == tuple(prefix) for prefix in frozen_prefixes)
    return jax.tree_util.tree_map_with_path(is_trainable, params)


def make_optimizer(schedule: optax.Schedule, *, weight_decay: float, params,
                   frozen_prefixes: Sequence[tuple[str, ...]] = ()) -> optax.GradientTransformation:
    """AdamW on trainable leaves; frozen leaves get exactly zero update."""
    adamw = optax.adamw(schedule, weight_decay=weight_decay)
    if not frozen_prefixes:
        return adamw
    labels = jax.tree.map(lambda trainable: "train" if trainable else "freeze",
                          trainable_mask(params, frozen_prefixes))
    return optax.multi_transform({"train": adamw, "freeze": optax.set_to_zero()}, labels)


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
    """The config's AdamW and schedule for `model` (its frontend's frozen parts excluded)."""
    schedule = learning_rate_schedule(
        base_learning_rate=config.train.base_learning_rate, global_batch=config.train.batch_size,
        warmup_steps=warmup_steps, total_steps=total_steps)
    optimizer = make_optimizer(schedule, weight_decay=config.train.weight_decay, params=params,
                                     frozen_prefixes=build.frozen_param_prefixes(model))
    return optimizer, schedule
