"""Re-estimating a frozen model's BatchNorm statistics from its training data.

Why: in inference mode BatchNorm normalises by its running statistics, and an untrained model's
are the initial mean 0 and variance 1, which make every BatchNorm layer an identity. The
`random:` floor is then an unnormalised random network: a different function from the one
training starts from, which normalises every layer by batch moments, and from every trained
model, whose running statistics follow those moments; the two floors probe very differently
(docs/results.md). A floor with re-estimated statistics separates what training learnt from what
normalisation alone changes.

How: the model runs in training mode (batch moments; drop-path off, and BatchNorm momentum 0 so
that each call's updated statistics ARE that batch's moments) on `num_batches` batches of
clean crops of its own training data (`config.data.train_shards`: COLA anchors, or the
supervised task's crops). Each layer's statistics become the moments pooled over all batches,
mean = avg(batch means), var = avg(batch var + batch mean^2) - mean^2, exact for equal batches.
All layers are estimated in the same pass, each normalised by batch moments as in training.
"""
from __future__ import annotations

import dataclasses
import logging

import jax
import jax.numpy as jnp

from leaf_ssl.model import build
from leaf_ssl.model.objectives import objective_of
from leaf_ssl.training.batches import input_batches
from leaf_ssl.inference.frozen_model import FrozenModel
from leaf_ssl.inference.features import l2_normalize

logger = logging.getLogger(__name__)


def reestimate(frozen: FrozenModel, *, num_batches: int, batch_size: int, train_shards: str | None = None) -> FrozenModel:
    """`frozen` with its batch statistics re-estimated from `num_batches` batches of `batch_size` crops.

    Args:
      train_shards: where the crops come from; default the config's `data.train_shards`.
    Raises:
      FileNotFoundError naming the missing data; ValueError for non-positive sizes.
    """
    if num_batches < 1 or batch_size < 1:
        raise ValueError(f"BatchNorm re-estimation needs positive batches and batch size, got {num_batches} x "
                         f"{batch_size}")
    config = frozen.config.copy_and_resolve_references()
    if train_shards:
        config.data.train_shards = train_shards
    # Momentum 0: each call's updated running statistics are exactly that batch's moments.
    config.encoder.bn_momentum = 0.0
    config.encoder.drop_path_rate = 0.0
    model = build.build_model(config, data_parallel=False)

    @jax.jit
    def batch_moments(waveforms):
        """Per layer {'mean': the batch mean, 'square': the batch second moment}."""
        _, mutated = model.apply(frozen.variables, l2_normalize(waveforms), train=True, method="encode",
                                 mutable=["batch_stats"])
        return _map_layers(lambda layer: {"mean": layer["mean"], "square": layer["var"] + jnp.square(layer["mean"])},
                           mutated["batch_stats"])

    stream = input_batches(config, per_process_batch=batch_size, crop_samples=frozen.window_samples,
                           start_batch=0)
    sums = None  # per layer: {'mean': sum of batch means, 'square': sum of batch second moments}
    for _ in range(num_batches):
        batch = next(stream)
        crops = batch[objective_of(config).crop_key]
        moments = batch_moments(jnp.asarray(crops))
        sums = moments if sums is None else jax.tree.map(jnp.add, sums, moments)
    statistics = _map_layers(lambda layer: _statistics(layer["mean"] / num_batches, layer["square"] / num_batches),
                             sums)
    logger.info("BatchNorm statistics re-estimated from %d batches of %d crops of %s", num_batches, batch_size,
                config.data.train_shards)
    variables = {"params": frozen.variables["params"], "batch_stats": statistics}
    return dataclasses.replace(frozen, variables=variables,
                               batch_norm=f"re-estimated: {num_batches} x {batch_size} crops of {config.data.train_shards}")


def _statistics(mean, square):
    return {"mean": mean, "var": jnp.maximum(square - jnp.square(mean), 0.0)}  # >= 0 despite rounding


def _map_layers(fn, tree):
    """`fn` applied to each BatchNorm layer's dict of arrays in a nested dict of layers."""
    if not isinstance(next(iter(tree.values())), dict):
        return fn(tree)
    return {name: _map_layers(fn, child) for name, child in tree.items()}
