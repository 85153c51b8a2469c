"""Finding where a training step went non-finite, for the message that stops a run.

Runs only when the trainer gives up after repeated non-finite steps, so it may be slow: it
replays the offending batch on one program, outside the data-parallel step, and looks in order
at the inputs, every module's output, the loss and the gradients.
"""
from collections.abc import Mapping

import flax.linen as nn
import jax
import numpy as np


def _leaves_in_insertion_order(tree, path: str = ""):
    """(path, leaf) pairs, dicts walked in insertion order: jax's tree utilities sort dict keys,
    which would lose the call order that flax records intermediates in."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _leaves_in_insertion_order(value, f"{path}[{key!r}]")
    elif isinstance(tree, (tuple, list)):
        for index, value in enumerate(tree):
            yield from _leaves_in_insertion_order(value, f"{path}[{index}]")
    else:
        yield path, tree


def _first_nonfinite_leaf(tree, prefix: str) -> str | None:
    for path, leaf in _leaves_in_insertion_order(tree):
        values = np.asarray(leaf)
        if np.issubdtype(values.dtype, np.floating) and not np.all(np.isfinite(values)):
            kind = "NaN" if np.isnan(values).any() else "Inf"
            return f"{prefix}{path} holds {kind}"
    return None


def describe_first_nonfinite(model: nn.Module, objective, variables: dict, batch: dict, rng: jax.Array) -> str:
    """Names the first input, parameter, activation, loss or gradient that is not finite.

    Args:
      model: the model built without a mesh axis (`experiment.build_model(..., data_parallel=False)`).
      objective: the train step's objective (`trainer.Objective`), without a mesh axis.
      variables: {'params', 'batch_stats'} of the last good state.
      batch: host arrays of the batch that failed.
      rng: key for SpecAugment and drop-path.
    """
    for check in (_first_nonfinite_leaf(batch, "input batch"),
                  _first_nonfinite_leaf(variables, "variables")):
        if check:
            return check
    augment_key, dropout_key = jax.random.split(rng)
    rngs = {"specaugment": augment_key, "dropout": dropout_key}

    def forward(params):
        loss, (mutated, _) = objective(model, {"params": params, "batch_stats": variables["batch_stats"]}, batch,
                                       rngs, capture_intermediates=True)
        return loss, mutated["intermediates"]

    # Unjitted on purpose: flax records module outputs in call order, and jit's output pytree
    # would sort the dict keys; so the first non-finite output found is where it started.
    loss, intermediates = forward(variables["params"])
    activation = _first_nonfinite_leaf(intermediates, "activation ")
    if activation:
        return activation
    if not np.isfinite(float(loss)):
        return f"the loss is {float(loss)} although every activation is finite"
    grads = jax.jit(jax.grad(lambda params: forward(params)[0]))(variables["params"])
    gradient = _first_nonfinite_leaf(grads, "gradient of params")
    if gradient:
        return gradient
    return ("the batch, activations, loss and gradients are all finite when replayed on one device: the optimizer's "
            "update is not (a learning rate that overflows float32?), or the overflow is device- or precision-specific")


def host_batch(batch: dict) -> dict:
    """This process's part of a global batch, as float32 numpy arrays."""
    return {key: np.concatenate([np.asarray(shard.data) for shard in value.addressable_shards]).astype(np.float32)
            if isinstance(value, jax.Array) else np.asarray(value, np.float32)
            for key, value in batch.items()}
