"""Where a COLA train step's FLOPs and memory traffic go: `python -m leaf_ssl.bench --what step --breakdown`.

The step is cut into parts, each compiled alone at one device's shapes, with random cotangents
standing in for what the next part would send back (so that no backward pass simplifies to a
constant one):

    frontend forward        waveforms (2B, T)           -> features (2B, frames, channels)
    frontend backward       (forward + vjp) - forward
    encoder forward         features -> pooled (2B, dim), training mode (BatchNorm batch moments, drop-path)
    encoder backward        (forward + vjp) - forward
    head and loss           pooled -> projection, similarity, cross-entropy, and their gradient
    optimizer               the optimizer's update and its application to the parameters

The numbers are XLA's cost analysis (a model of the traffic, not a measurement). Each part is
compiled on its own, so the parts need not add up to the whole step: XLA fuses across their
borders there, and the step also averages gradients across devices and checks them for non-finite
values. SpecAugment (a mask on the positives' features) is left out.
"""
from __future__ import annotations

import math
import re
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from leaf_ssl.model import cola


def _cost(function: Callable, *args) -> tuple[float, float]:
    """(GFLOP, GB accessed) of `function` compiled for `args`."""
    cost = jax.jit(function).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    cost = cost or {}
    return float(cost.get("flops", 0.0)) / 1e9, float(cost.get("bytes accessed", 0.0)) / 1e9


def _random_like(key: jax.Array, tree):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)])


def step_parts(model, optimizer: optax.GradientTransformation, params, batch_stats,
               anchor: jax.Array, positive: jax.Array) -> list[dict]:
    """One row per part of the step (see the module docstring): name, gflop, gb_accessed.

    model: a ColaModel built for one device (no mesh axis); anchor, positive: one device's pairs.
    """
    rngs = {"dropout": jax.random.key(1), "specaugment": jax.random.key(2)}
    waveforms = jnp.concatenate([anchor, positive])
    batch = len(anchor)

    def with_part(name, part_params):
        return {"params": {**params, name: part_params}, "batch_stats": batch_stats}

    def frontend(frontend_params, waveforms):
        return model.apply(with_part("frontend", frontend_params), waveforms, method=lambda m, w: m.frontend(w))

    def encoder(encoder_params, features):
        pooled, _ = model.apply(with_part("encoder", encoder_params), features, rngs=rngs, mutable=["batch_stats"],
                                method=lambda m, f: m.encoder(f, train=True))
        return pooled

    head_names = [name for name in params if name not in ("frontend", "encoder")]

    def head_and_loss(head_params, pooled):
        variables = {"params": {**params, **head_params}, "batch_stats": batch_stats}
        z = model.apply(variables, pooled, method=lambda m, h: m._project(h))
        logits = model.apply(variables, z[:batch], z[batch:], method=lambda m, a, p: m._similarity(a, p))
        return cola.contrastive_loss(logits, jnp.arange(batch))

    def forward_and_backward(function):
        def run(part_params, inputs, cotangent):
            outputs, pullback = jax.vjp(function, part_params, inputs)
            return outputs, pullback(cotangent)
        return run

    features = jax.eval_shape(frontend, params["frontend"], waveforms)
    features = _random_like(jax.random.key(3), features)
    pooled = _random_like(jax.random.key(4), jax.eval_shape(encoder, params["encoder"], features))
    feature_cotangent = _random_like(jax.random.key(5), features)
    pooled_cotangent = _random_like(jax.random.key(6), pooled)
    opt_state = optimizer.init(params)
    grads = _random_like(jax.random.key(7), params)

    def optimizer_step(grads, opt_state, params):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    frontend_forward = _cost(frontend, params["frontend"], waveforms)
    frontend_both = _cost(forward_and_backward(frontend), params["frontend"], waveforms, feature_cotangent)
    encoder_forward = _cost(encoder, params["encoder"], features)
    encoder_both = _cost(forward_and_backward(encoder), params["encoder"], features, pooled_cotangent)
    head = _cost(jax.value_and_grad(head_and_loss, argnums=(0, 1)), {name: params[name] for name in head_names},
                 pooled)
    update = _cost(optimizer_step, grads, opt_state, params)
    minus = lambda both, forward: (both[0] - forward[0], both[1] - forward[1])
    parts = {"frontend forward": frontend_forward, "frontend backward": minus(frontend_both, frontend_forward),
             "encoder forward": encoder_forward, "encoder backward": minus(encoder_both, encoder_forward),
             "head and loss": head, "optimizer": update}
    return [{"part": name, "gflop": gflop, "gb_accessed": gb} for name, (gflop, gb) in parts.items()]


COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
_BYTES_PER_ELEMENT = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4, "u32": 4,
                      "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
_INSTRUCTION = re.compile(r"=\s*(?P<result>.*?)\s+(?P<op>" + "|".join(COLLECTIVES) + r")(?P<start>-start)?\(")
_ARRAY = re.compile(r"\b(?P<dtype>[a-z]+\d*)\[(?P<dims>[\d,]*)\]")


def _array_bytes(type_text: str) -> int:
    total = 0
    for array in _ARRAY.finditer(type_text):
        dims = [int(d) for d in array["dims"].split(",") if d]
        total += _BYTES_PER_ELEMENT.get(array["dtype"], 4) * math.prod(dims)
    return total


def collective_bytes(hlo_text: str) -> list[dict]:
    """Each collective of an optimised HLO module (`compiled.as_text()`), per device and step: the op,
    how many instructions, and the bytes of their results (for an all-reduce, the reduced buffer; for
    an all-gather, the gathered one). Asynchronous pairs count once, by their '-start'; but an
    all-reduce's, such a start's result pairs input and output: the larger part is taken."""
    found: dict[str, dict] = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.search(line)
        if match is None:
            continue
        result = match["result"]
        if match["start"] and match["op"] != "all-reduce" and result.startswith("("):
            size = max(_array_bytes(part) for part in _split_tuple(result))
        else:
            size = _array_bytes(result)
        row = found.setdefault(match["op"], {"collective": match["op"], "count": 0, "mb": 0.0})
        row["count"] += 1
        row["mb"] += size / 1e6
    return list(found.values())


def _split_tuple(text: str) -> list[str]:
    """'((a, b), (c, d))' -> ['(a, b)', '(c, d)']: the top-level parts of a tuple type."""
    inner, parts, depth, current = text.strip()[1:-1], [], 0, ""
    for char in inner:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]
