"""Micro-benchmarks on the default jax device: `python -m leaf_ssl.bench --what frontend [...]`.

Each benchmark is a function in `BENCHMARKS` (keyed by the `--what` name) that takes the parsed arguments
and returns rows of results; `main` prints them as a table and optionally writes them as JSON.

  frontend: jit-compiled forward + gradient (of the sum of the features w.r.t. the parameters) of every
            frontend and filterbank path on (batch, 15360) random audio (0.96 s at 16 kHz), timed after a
            warm-up call, median over --repeats calls each ended by block_until_ready.
  step:     the whole data-parallel COLA train step (frontend, SpecAugment, EfficientNet-B0, bilinear
            loss, AdamW) at the paper's shapes: --pairs_per_device pairs of 0.96 s crops on every local
            device, --n_filters filters, encoder in float32 and bfloat16. The batch is on the devices
            before timing. Also XLA's cost analysis of the compiled step (FLOPs, bytes), the achieved
            TFLOP/s, and the peak device memory where the backend reports it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp

from leaf_ssl.frontends import Leaf, MelFilterbank, SincNet, SincNetPlus

CROP_SAMPLES = 15360  # 0.96 s at 16 kHz, the COLA crop


def time_call(function: Callable, *args, repeats: int) -> list[float]:
    """Seconds per call of `function(*args)`, after one untimed warm-up (compilation) call."""
    jax.block_until_ready(function(*args))
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        durations.append(time.perf_counter() - start)
    return durations


def frontend_cases(n_filters: int) -> dict[str, object]:
    """The frontends and filterbank paths to time, by row name."""
    return {
        "leaf_direct": Leaf(n_filters=n_filters, filterbank_impl="direct"),
        "leaf_fft": Leaf(n_filters=n_filters, filterbank_impl="fft"),
        "sincnet": SincNet(n_filters=n_filters),
        "sincnet_plus": SincNetPlus(n_filters=n_filters),
        "mel": MelFilterbank(n_filters=n_filters),
    }


def bench_frontends(args: argparse.Namespace) -> list[dict]:
    """Forward + parameter gradient of each frontend; one row per case."""
    waveform = jax.random.normal(jax.random.PRNGKey(0), (args.batch, CROP_SAMPLES), jnp.float32)
    rows = []
    for name, module in frontend_cases(args.n_filters).items():
        params = module.init(jax.random.PRNGKey(1), waveform[:1]).get("params", {})

        def summed_features(params, waveform, module=module):
            return jnp.sum(module.apply({"params": params}, waveform))

        # value_and_grad, not grad: the mel frontend has no parameters, and its forward must still run.
        step = jax.jit(jax.value_and_grad(summed_features))
        seconds = statistics.median(time_call(step, params, waveform, repeats=args.repeats))
        rows.append({"case": name, "batch": args.batch, "n_filters": args.n_filters,
                     "ms": 1e3 * seconds, "crops_per_s": args.batch / seconds})
    return rows


def _train_step_case(frontend: str, n_filters: int, encoder_dtype: str, pairs_per_device: int, remat: bool):
    """A jitted COLA step, its initial state and an on-device batch, built as the trainer builds them."""
    from jax.sharding import NamedSharding, PartitionSpec
    from leaf_ssl import configuration, experiment, trainer

    config = configuration.pretraining_config()
    config.frontend = {"name": frontend} if frontend == "mel" else {"name": frontend, "n_filters": n_filters}
    config.encoder.dtype = encoder_dtype
    config.model.remat_frontend = remat
    mesh = trainer.make_mesh(jax.local_devices())
    config.train.batch_size = pairs_per_device * mesh.size
    model = experiment.build_model(config)
    crop = experiment.crop_samples(config)
    params = jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = experiment.build_optimizer(config, model, params, total_steps=10_000, warmup_steps=100)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    waveform = jax.random.normal(jax.random.key(1), (config.train.batch_size, crop), jnp.float32)
    sharding = NamedSharding(mesh, PartitionSpec(trainer.DATA_AXIS))
    batch = {"anchor": jax.device_put(waveform, sharding), "positive": jax.device_put(waveform * 0.9, sharding)}
    step = trainer.make_train_step(model, optimizer, schedule, mesh)
    return step, state, batch, mesh.size


def _peak_memory_gib() -> float | None:
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def bench_train_step(args: argparse.Namespace) -> list[dict]:
    """The whole train step per encoder dtype; one row per dtype."""
    rows = []
    for dtype in args.dtypes.split(","):
        step, state, batch, devices = _train_step_case(args.frontend, args.n_filters, dtype, args.pairs_per_device,
                                                       args.remat_frontend)
        compiled = step.lower(state, batch).compile()
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        flops = float(cost.get("flops", 0.0)) if cost else 0.0
        bytes_accessed = float(cost.get("bytes accessed", 0.0)) if cost else 0.0

        state, _ = compiled(state, batch)  # warm-up
        jax.block_until_ready(state)
        durations = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            state, metrics = compiled(state, batch)
            jax.block_until_ready(metrics)
            durations.append(time.perf_counter() - start)
        seconds = statistics.median(durations)
        crops = 2 * args.pairs_per_device * devices
        remat = "_remat" if args.remat_frontend else ""
        rows.append({"case": f"step_{args.frontend}_{dtype}{remat}", "batch": crops, "n_filters": args.n_filters,
                     "ms": 1e3 * seconds, "crops_per_s": crops / seconds,
                     "gflop_per_step": flops / 1e9, "tflop_per_s": flops / seconds / 1e12,
                     "gb_accessed_per_step": bytes_accessed / 1e9, "peak_memory_gib": _peak_memory_gib()})
    return rows


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "frontend": bench_frontends,
    "step": bench_train_step,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=sorted(BENCHMARKS), default="frontend")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n_filters", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs_per_device", type=int, default=256, help="step: pairs per device")
    parser.add_argument("--frontend", default="leaf", help="step: leaf | sincnet | sincnet_plus | mel")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="step: encoder dtypes, comma-separated")
    parser.add_argument("--remat_frontend", action="store_true", help="step: recompute the frontend in backward")
    parser.add_argument("--json", help="also write the rows (and the device) to this JSON file")
    return parser.parse_args(argv)


def _format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return "-" if value is None else str(value)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = jax.devices()[0]
    rows = BENCHMARKS[args.what](args)
    print(f"{args.what} on {device.platform} ({device.device_kind}), median of {args.repeats}")
    columns = list(rows[0])
    print("".join(f"{column:>22}" for column in columns))
    for row in rows:
        print("".join(f"{_format_cell(row[column]):>22}" for column in columns))
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"what": args.what, "device": f"{device.platform}:{device.device_kind}",
                       "repeats": args.repeats, "rows": rows}, output, indent=2)


if __name__ == "__main__":
    main()
