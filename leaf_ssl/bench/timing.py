"""What every benchmark times with: the interleaved timer, a compiled forward + gradient and its
XLA cost, the crop length and the parsed options' type (`suite` and `floor` share them)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from leaf_ssl.bench.host import CpuMeter, Usage
from leaf_ssl.data.records import CROP_SAMPLES  # noqa: F401  (the benchmarks' crop, re-exported)

Options = Any
"""The parsed command line (`leaf_ssl.cli.bench`): every benchmark reads the fields it needs."""


def time_interleaved(calls: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[Usage]]:
    """The wall time and CPU use of each of `calls` (each runs once and waits for its result), per repeat.

    Every call runs once untimed first (compilation, allocator warm-up). Then, in each repeat, every
    call runs once, in an order rotated by one each repeat, so that a burst of load from other processes
    falls on all of them alike and none always runs right after the same other one.
    """
    for call in calls.values():
        call()
    names = list(calls)
    usages: dict[str, list[Usage]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            with CpuMeter() as meter:
                calls[name]()
            usages[name].append(meter.usage)
    return usages


def xla_cost(compiled) -> tuple[float, float]:
    """(FLOPs, bytes accessed) of a compiled computation, by XLA's cost analysis (0 where not reported)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    if not cost:
        return 0.0, 0.0
    return float(cost.get("flops", 0.0)), float(cost.get("bytes accessed", 0.0))


def jax_forward_gradient(module, waveform: jax.Array) -> tuple[Callable[[], None], dict[str, float]]:
    """One compiled forward + parameter gradient of `module` on `waveform`, waited for, and its XLA cost."""
    params = module.init(jax.random.PRNGKey(1), waveform[:1]).get("params", {})

    def summed_features(params, waveform):
        return jnp.sum(module.apply({"params": params}, waveform))

    # value_and_grad, not grad: the mel frontend has no parameters, and its forward must still run.
    step = jax.jit(jax.value_and_grad(summed_features)).lower(params, waveform).compile()
    flops, bytes_accessed = xla_cost(step)
    return lambda: jax.block_until_ready(step(params, waveform)), {"gflop": flops / 1e9,
                                                                    "gb_accessed": bytes_accessed / 1e9}
