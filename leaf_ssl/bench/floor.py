"""How fast an exact LEAF filterbank could be on this backend: its transforms and its full-rate passes.

`python -m leaf_ssl.bench --what floor --batch 64 --n_filters 40` times, taking turns in one process with
`Leaf(filterbank_impl='fft')`'s forward + parameter gradient on the same (batch, 15360) audio:

* `transforms`: the inverse real FFTs of the forward pass ((batch, 2 * n_filters) spectra of the filter
  outputs' FFT length) and the real FFTs of its gradient (as many), each count in one batched call;
* `full_rate_pass`: one elementwise read and write of a float32 array of the filter outputs' size,
  (batch, 2 * n_filters, FFT length).

Any formulation that computes the filter outputs at the full rate does the transforms once each way
and at least FULL_RATE_PASSES such passes: the product of the spectra that feeds the inverse transform,
the squared modulus that reads its output, the gradient's product that feeds its transform, and the
reduction over the batch that reads that transform's output. Every exact formulation is one of them,
since the truncated Gaussian envelopes leave no band outside which a filter's response is negligible
(docs/performance.md). The `floor` row adds those up (arithmetic on the timed rows, not timed itself);
its `vs_leaf_fft` is the most speed-up over the FFT path that such a formulation can have here.
"""
from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp

from leaf_ssl.bench.timing import CROP_SAMPLES, Options, jax_forward_gradient, time_interleaved
from leaf_ssl.frontends import Leaf
from leaf_ssl.frontends.convolution import fft_length_for
from leaf_ssl.frontends.framing import window_and_stride_samples

FULL_RATE_PASSES = 4


def _timed(function, *operands):
    compiled = jax.jit(function).lower(*operands).compile()
    return lambda: jax.block_until_ready(compiled(*operands))


def bench_exact_floor(args: Options) -> list[dict]:
    """Rows: the FFT path's whole forward + gradient, its transforms alone, one full-rate pass, the floor."""
    window, _ = window_and_stride_samples(Leaf.sample_rate, Leaf.window_len_ms, Leaf.window_stride_ms)
    n_fft = fft_length_for(CROP_SAMPLES, window)
    channels = 2 * args.n_filters
    key = jax.random.PRNGKey(0)
    waveform = jax.random.normal(key, (args.batch, CROP_SAMPLES), jnp.float32)
    spectra = jnp.fft.rfft(jax.random.normal(key, (args.batch, channels, n_fft), jnp.float32))
    outputs = jax.random.normal(key, (args.batch, channels, n_fft), jnp.float32)
    calls = {
        "leaf_fft": jax_forward_gradient(Leaf(n_filters=args.n_filters, filterbank_impl="fft"), waveform)[0],
        "transforms": _timed(lambda s, y: (jnp.fft.irfft(s, n=n_fft), jnp.fft.rfft(y)), spectra, outputs),
        "full_rate_pass": _timed(lambda y: 2.0 * y + 1.0, outputs),
    }
    seconds = {name: statistics.median(one.wall_s for one in usage)
               for name, usage in time_interleaved(calls, args.repeats).items()}
    seconds["floor"] = seconds["transforms"] + FULL_RATE_PASSES * seconds["full_rate_pass"]
    return [{"case": name, "batch": args.batch, "n_filters": args.n_filters, "ms": 1e3 * wall,
             "crops_per_s": args.batch / wall, "vs_leaf_fft": seconds["leaf_fft"] / wall}
            for name, wall in seconds.items()]
