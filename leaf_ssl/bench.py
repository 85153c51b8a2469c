"""Micro-benchmarks on the default jax device: `python -m leaf_ssl.bench --what frontend [...]`.

Each benchmark is a function in `BENCHMARKS` (keyed by the `--what` name) that takes the parsed arguments
and returns rows of results; `main` prints them as a table and optionally writes them as JSON.

  frontend: jit-compiled forward + gradient (of the sum of the features w.r.t. the parameters) of every
            frontend and filterbank path on (batch, 15360) random audio (0.96 s at 16 kHz), timed after a
            warm-up call, median over --repeats calls each ended by block_until_ready.
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


BENCHMARKS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "frontend": bench_frontends,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--what", choices=sorted(BENCHMARKS), default="frontend")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--n_filters", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the rows (and the device) to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = jax.devices()[0]
    rows = BENCHMARKS[args.what](args)
    print(f"{args.what} on {device.platform} ({device.device_kind}), median of {args.repeats}")
    print(f"{'case':<16}{'ms':>12}{'crops/s':>12}")
    for row in rows:
        print(f"{row['case']:<16}{row['ms']:>12.1f}{row['crops_per_s']:>12.1f}")
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"what": args.what, "device": f"{device.platform}:{device.device_kind}",
                       "repeats": args.repeats, "rows": rows}, output, indent=2)


if __name__ == "__main__":
    main()
