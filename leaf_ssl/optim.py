"""Optimizer and learning-rate schedule of the COLA recipe.

AdamW with peak learning rate `base_learning_rate * global_batch / 256`, linear warm-up
from 0, then cosine decay to 0 at the last step. (The first author's code meant to do this
but its "cosine" silently stayed constant; `tests/test_optim.py` checks it really decays.)
Parameters under frozen prefixes keep their values: their updates are set to zero, and
weight decay does not touch them either.
"""
from collections.abc import Sequence

import jax
import optax


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
