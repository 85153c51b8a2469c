"""The benchmarks behind `python -m leaf_ssl.bench` (`leaf_ssl.cli.bench` describes each).

Each benchmark is a function in `BENCHMARKS`, keyed by its `--what` name, that takes the parsed
command line and returns rows of results.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from leaf_ssl.bench import breakdown, peer
from leaf_ssl.bench.host import Usage, busy_and_waiting, pin_process, usable_cores
from leaf_ssl.bench.timing import CROP_SAMPLES, Options, jax_forward_gradient, time_interleaved, xla_cost
from leaf_ssl.encoders import factory as encoder_presets
from leaf_ssl.frontends import Leaf, MelFilterbank, SincNet, SincNetPlus
from leaf_ssl.frontends.framing import window_and_stride_samples
from leaf_ssl.frontends.leaf import GaborFilterbank, squared_modulus
from leaf_ssl.frontends.pooling import GaussianLowpass

PEER_CASE = "peer_speechbrain_leaf"


def frontend_cases(n_filters: int) -> dict[str, object]:
    """The frontends, filterbank paths and pooling paths to time, by row name. Cases whose name does not
    say a path use the backend's default ('auto')."""
    return {
        "leaf_direct": Leaf(n_filters=n_filters, filterbank_impl="direct"),
        "leaf_fft": Leaf(n_filters=n_filters, filterbank_impl="fft"),
        "leaf_fft_pool_passes": Leaf(n_filters=n_filters, filterbank_impl="fft", pooling_impl="passes"),
        "leaf_fft_pool_matmul": Leaf(n_filters=n_filters, filterbank_impl="fft", pooling_impl="matmul"),
        "sincnet": SincNet(n_filters=n_filters),
        "sincnet_plus": SincNetPlus(n_filters=n_filters),
        "mel": MelFilterbank(n_filters=n_filters),
    }


LEAF_STAGES = ("modulus", "pooling")


class LeafPrefix(nn.Module):
    """The first stages of `Leaf.__call__`, with Leaf's defaults, so that `--stages` can time them apart:
    'modulus' is the Gabor filterbank and the squared modulus, 'pooling' adds the Gaussian lowpass.
    The full Leaf adds the floor and sPCEN. Differences between the rows approximate the stages' costs
    (XLA fuses and schedules each prefix on its own, so they need not add up exactly).

    The output is the last stage's output squared: the benchmark differentiates the sum of the output,
    and the sum of a stage's output alone would hand its backward pass a constant cotangent, which XLA
    simplifies into a pooling gradient slower than the full frontend's (2.2x on 2 CPU cores). Squaring
    makes the cotangent depend on the data, as sPCEN's does in the full frontend.
    """

    n_filters: int
    filterbank_impl: str
    last_stage: str
    pooling_impl: str = "auto"

    @nn.compact
    def __call__(self, waveform: jnp.ndarray) -> jnp.ndarray:
        window, stride = window_and_stride_samples(Leaf.sample_rate, Leaf.window_len_ms, Leaf.window_stride_ms)
        filtered = GaborFilterbank(self.n_filters, window, Leaf.sample_rate, Leaf.min_freq, Leaf.max_freq,
                                   Leaf.filter_init, self.filterbank_impl, name="filterbank")(waveform)
        stage_output = squared_modulus(filtered)
        if self.last_stage == "pooling":
            stage_output = GaussianLowpass(window, stride, impl=self.pooling_impl, name="pooling")(stage_output)
        return jnp.square(stage_output)


def _selected_cases(names: str | None, n_filters: int, stages: bool) -> dict[str, object]:
    """The `--cases` (all by default), each LEAF case preceded by its stage prefixes with `--stages`."""
    cases = frontend_cases(n_filters)
    wanted = list(cases) if names is None else names.split(",")
    unknown = sorted(set(wanted) - set(cases))
    if unknown:
        raise ValueError(f"--cases: unknown {unknown}; choose from {sorted(cases)}")
    selected = {}
    for name in wanted:
        module = cases[name]
        if stages and isinstance(module, Leaf):
            for stage in LEAF_STAGES:
                selected[f"{name}/{stage}"] = LeafPrefix(n_filters, module.filterbank_impl, stage, module.pooling_impl)
        selected[name] = module
    return selected


def _frontend_cores(threads: str | None) -> list[int]:
    """The cores the frontend benchmark runs on: the first `--threads` usable ones, or all of them."""
    cores = usable_cores()
    if threads is None:
        return cores
    if not threads.isdigit() or not 1 <= int(threads) <= len(cores):
        raise ValueError(f"--what frontend takes one thread count from 1 to {len(cores)}, got --threads {threads!r}")
    return cores[:int(threads)]


def _time_frontends(args: Options, threads: int) -> tuple[dict[str, list[Usage]], dict[str, dict]]:
    """Builds every case (and the peer, given `threads` intra-op threads) and times them interleaved;
    returns their usages and the XLA costs of ours."""
    waveform = jax.random.normal(jax.random.PRNGKey(0), (args.batch, CROP_SAMPLES), jnp.float32)
    calls, costs = {}, {}
    for name, module in _selected_cases(args.cases, args.n_filters, args.stages).items():
        calls[name], costs[name] = jax_forward_gradient(module, waveform)
    if args.peer:
        try:
            calls[PEER_CASE] = peer.speechbrain_leaf_step(np.asarray(waveform), args.n_filters,
                                                                jax.devices()[0].platform, threads=threads)
        except peer.PeerUnavailable as error:
            print(f"peer {args.peer} skipped: {error}", file=sys.stderr)
    return time_interleaved(calls, args.repeats), costs


def bench_frontends(args: Options) -> list[dict]:
    """Forward + parameter gradient of each frontend (and the peer's, with --peer); one row per case."""
    all_cores, cores = usable_cores(), _frontend_cores(args.threads)
    # XLA's CPU thread pool is sized once, to every core; pinned to fewer cores, its threads share them.
    pin_process(set(cores))
    try:
        usages, costs = _time_frontends(args, threads=len(cores))
    finally:
        pin_process(set(all_cores))
    rows = []
    for name, usage in usages.items():
        seconds = statistics.median(one.wall_s for one in usage)
        cpu_seconds = statistics.median(one.cpu_s for one in usage)
        rows.append({"case": name, "cores": len(cores), "batch": args.batch, "n_filters": args.n_filters,
                     "ms": 1e3 * seconds, "crops_per_s": args.batch / seconds,
                     "crops_per_cpu_s": args.batch / cpu_seconds, **busy_and_waiting(usage), **costs.get(name, {})})
    if PEER_CASE in usages:
        peer_rate = next(row["crops_per_s"] for row in rows if row["case"] == PEER_CASE)
        for row in rows:
            row["vs_peer"] = row["crops_per_s"] / peer_rate
    return rows


class StepCase(NamedTuple):
    step: Callable          # the jitted train step
    state: Any              # its initial state, replicated on the local devices
    batch: dict             # {'anchor', 'positive'}: random crops, sharded over the devices
    devices: int
    model: nn.Module
    optimizer: Any
    config: Any             # the ConfigDict it was built from


def train_step_case(frontend: str, n_filters: int, encoder_dtype: str, pairs_per_device: int, remat: bool,
                    pooling_impl: str = "auto", encoder: str = "efficientnet_b0",
                    depthwise_impl: str = "auto", filterbank_impl: str = "auto") -> StepCase:
    """A jitted COLA step, its initial state and an on-device batch, built as the trainer builds them."""
    from jax.sharding import NamedSharding, PartitionSpec
    from leaf_ssl.model import build, configuration
    from leaf_ssl.training import optim
    from leaf_ssl.training import trainer

    config = configuration.pretraining_config()
    config.frontend = {"name": frontend, "n_filters": n_filters}
    # A frontend without the field (mel; sincnet's pooling) fails in make_frontend, by name.
    for field, impl in (("filterbank_impl", filterbank_impl), ("pooling_impl", pooling_impl)):
        if impl != "auto":
            config.frontend[field] = impl
    config.encoder = configuration.encoder_config(encoder, depthwise_impl=depthwise_impl)
    config.encoder.dtype = encoder_dtype
    config.model.remat_frontend = remat
    mesh = trainer.make_mesh(jax.local_devices())
    config.train.batch_size = pairs_per_device * mesh.size
    model = build.build_model(config)
    crop = build.crop_samples(config)
    params = jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = optim.build_optimizer(config, model, params, total_steps=10_000, warmup_steps=100)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    waveform = jax.random.normal(jax.random.key(1), (config.train.batch_size, crop), jnp.float32)
    sharding = NamedSharding(mesh, PartitionSpec(trainer.DATA_AXIS))
    batch = {"anchor": jax.device_put(waveform, sharding), "positive": jax.device_put(waveform * 0.9, sharding)}
    step = trainer.make_train_step(model, optimizer, schedule, mesh, build.train_objective(config))
    return StepCase(step, state, batch, mesh.size, model, optimizer, config)


def _xla_memory_gib(compiled) -> dict[str, float | None]:
    """XLA's memory analysis of a compiled step, known before it runs and per case: its temporary
    buffers, and all it holds at once (arguments + outputs - donated aliases + temporaries)."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return {"xla_temp_gib": None, "xla_total_gib": None}
    total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes - analysis.alias_size_in_bytes
             + analysis.temp_size_in_bytes)
    return {"xla_temp_gib": analysis.temp_size_in_bytes / 2**30, "xla_total_gib": total / 2**30}


def _peak_memory_gib() -> float | None:
    stats = jax.local_devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else peak / 2**30


def _step_case(args: Options, dtype: str) -> StepCase:
    return train_step_case(args.frontend, args.n_filters, dtype, args.pairs_per_device, args.remat_frontend,
                           args.pooling_impl, args.encoder, args.depthwise_impl, args.filterbank_impl)


def _compiled_step(case: StepCase):
    """The case's step compiled, and XLA's facts of it."""
    compiled = case.step.lower(case.state, case.batch).compile()
    flops, bytes_accessed = xla_cost(compiled)
    return compiled, {"gflop_per_step": flops / 1e9, "gb_accessed_per_step": bytes_accessed / 1e9,
                      **_xla_memory_gib(compiled)}


def _our_step_call(args: Options, dtype: str):
    """(a call running one of our train steps and waiting for it, XLA's facts of the compiled step,
    crops per step, the step's batch on the host)."""
    case = _step_case(args, dtype)
    compiled, facts = _compiled_step(case)
    batch, devices = case.batch, case.devices
    holder = {"state": case.state}

    def train_step() -> None:
        holder["state"], metrics = compiled(holder["state"], batch)
        jax.block_until_ready(metrics)

    host_batch = {name: np.asarray(jax.device_get(value)) for name, value in batch.items()}
    return train_step, facts, 2 * args.pairs_per_device * devices, host_batch


def _step_breakdown(args: Options, dtype: str) -> list[dict]:
    """`breakdown.step_parts` of one device's step, then the parts' sum and the whole step's row."""
    case = _step_case(args, dtype)
    _, whole_step = _compiled_step(case)
    from leaf_ssl.model import build
    model = build.build_model(case.config, data_parallel=False)
    device = jax.local_devices()[0]
    local = lambda tree: jax.tree.map(lambda x: jax.device_put(x.addressable_shards[0].data, device), tree)
    state, batch = local(case.state), local(case.batch)
    rows = breakdown.step_parts(model, case.optimizer, state.params, state.batch_stats, batch["anchor"],
                                batch["positive"])
    rows.append({"part": "sum of the parts", "gflop": sum(row["gflop"] for row in rows),
                 "gb_accessed": sum(row["gb_accessed"] for row in rows)})
    rows.append({"part": "whole step", "gflop": whole_step["gflop_per_step"],
                 "gb_accessed": whole_step["gb_accessed_per_step"]})
    for row in rows:
        row["gb_share_of_step"] = row["gb_accessed"] / whole_step["gb_accessed_per_step"]
    return [{"case": f"{args.frontend}_{args.encoder}_{dtype}", **row} for row in rows]


def bench_train_step(args: Options) -> list[dict]:
    """The whole train step per encoder dtype (and the PyTorch peer's, with --peer torch, on the same
    batch, taking turns with ours); one row per dtype and side. With --breakdown, instead XLA's cost
    of each part of the step (`leaf_ssl.bench.breakdown`), per dtype, without timing."""
    if args.peer not in (None, "torch"):
        raise SystemExit(f"error: --what step takes --peer torch, not --peer {args.peer}")
    if args.breakdown:
        rows = []
        for dtype in args.dtypes.split(","):
            rows += _step_breakdown(args, dtype)
        return rows
    calls, facts, crops, host_batch = {}, {}, 0, None
    variant = ("_remat" if args.remat_frontend else "") + (
        f"_filterbank_{args.filterbank_impl}" if args.filterbank_impl != "auto" else "") + (
        f"_pool_{args.pooling_impl}" if args.pooling_impl != "auto" else "") + (
        f"_depthwise_{args.depthwise_impl}" if args.depthwise_impl != "auto" else "")
    dtypes = args.dtypes.split(",")
    for dtype in dtypes:
        name = f"step_{args.frontend}_{dtype}{variant}"
        calls[name], facts[name], crops, host_batch = _our_step_call(args, dtype)
    if args.peer:
        cores = len(usable_cores())
        for dtype in dtypes:
            try:
                calls[f"peer_torch_{args.frontend}_{dtype}"] = peer.torch_cola_step(
                    host_batch["anchor"], host_batch["positive"], args.frontend, args.n_filters, dtype,
                    jax.devices()[0].platform, threads=cores, **encoder_presets.ENCODERS[args.encoder])
            except peer.PeerUnavailable as error:
                print(f"peer torch ({dtype}) skipped: {error}", file=sys.stderr)
    usages = time_interleaved(calls, args.repeats)
    # The allocator's peak since the process started: a case's own only when it runs alone.
    peak = _peak_memory_gib()
    rows = []
    for name, usage in usages.items():
        seconds = statistics.median(one.wall_s for one in usage)
        row = {"case": name, "batch": crops, "n_filters": args.n_filters, "ms": 1e3 * seconds,
               "crops_per_s": crops / seconds, **busy_and_waiting(usage)}
        if name in facts:
            row.update(gflop_per_step=facts[name]["gflop_per_step"],
                       tflop_per_s=facts[name]["gflop_per_step"] / seconds / 1e3,
                       gb_accessed_per_step=facts[name]["gb_accessed_per_step"],
                       xla_temp_gib=facts[name]["xla_temp_gib"], xla_total_gib=facts[name]["xla_total_gib"],
                       process_peak_gib=peak)
        rows.append(row)
    for dtype in dtypes:
        peer_row = next((row for row in rows if row["case"] == f"peer_torch_{args.frontend}_{dtype}"), None)
        if peer_row is not None:
            ours = next(row for row in rows if row["case"] == f"step_{args.frontend}_{dtype}{variant}")
            ours["vs_peer"] = ours["crops_per_s"] / peer_row["crops_per_s"]
            peer_row["vs_peer"] = 1.0
    return rows


def bench_collectives(args: Options) -> list[dict]:
    """What the compiled step moves between devices, per device and step (from its optimised HLO):
    one row per kind of collective, next to the parameters' size. Needs several devices: on a CPU host,
    XLA_FLAGS=--xla_force_host_platform_device_count=8."""
    case = _step_case(args, args.dtypes.split(",")[0])
    if case.devices < 2:
        raise SystemExit("error: --what collectives needs several devices (on a CPU host: "
                         "XLA_FLAGS=--xla_force_host_platform_device_count=8)")
    compiled = case.step.lower(case.state, case.batch).compile()
    param_mb = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(case.state.params)) / 1e6
    return [{"devices": case.devices, "pairs_per_device": args.pairs_per_device, **row, "param_mb": param_mb}
            for row in breakdown.collective_bytes(compiled.as_text())]


def bench_checkpoint(args: Options) -> list[dict]:
    """What the checkpoint digests cost: the paper-shape train state (--frontend, --n_filters,
    EfficientNet-B0, AdamW), replicated on the process's devices, saved and restored by the run's
    store, against the digests alone; and the process's first save."""
    import tempfile
    from leaf_ssl.training import checkpointing

    state = train_step_case(args.frontend, args.n_filters, "float32", 1, remat=False).state
    jax.block_until_ready(state)
    megabytes = sum(leaf.nbytes for leaf in jax.tree.leaves(state)) / 1e6
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
    shapes = checkpointing.param_shapes(state.params)
    timings: dict[str, list[float]] = {"digests": [], "save": [], "restore": []}
    with tempfile.TemporaryDirectory() as folder:
        store = checkpointing.CheckpointStore(folder, keep=2)
        for step in range(args.repeats + 1):  # the first of each is a warm-up
            start = time.perf_counter()
            checkpointing.array_digests(state)
            timings["digests"].append(time.perf_counter() - start)
            start = time.perf_counter()
            store.save(step, state, {"param_shapes": shapes})
            store.wait()
            timings["save"].append(time.perf_counter() - start)
            start = time.perf_counter()
            jax.block_until_ready(store.restore(step, abstract, shapes)[0])
            timings["restore"].append(time.perf_counter() - start)
        store.close()
    medians = {name: statistics.median(values[1:]) for name, values in timings.items()}
    medians["first_save"] = timings["save"][0]  # with the process's first compiles of what a save runs
    return [{"case": f"checkpoint_{args.frontend}{args.n_filters}_b0_{name}", "state_mb": megabytes,
             "ms": 1e3 * seconds, "mb_per_s": megabytes / seconds,
             "digest_share": medians["digests"] / seconds if name != "digests" else 1.0}
            for name, seconds in medians.items()]


def bench_input(args: Options) -> list[dict]:
    from leaf_ssl.bench import input_pipeline  # tf.data: imported only by the benchmarks that read shards
    return input_pipeline.bench_input(args)


def bench_learn(args: Options) -> list[dict]:
    if args.peer != "torch" or not args.run:
        raise SystemExit("error: --what learning needs --peer torch and at least one --run DIR (a finished run of ours)")
    from leaf_ssl.bench import learning  # trains and probes: TensorFlow's input pipeline
    try:
        return learning.compare([Path(run) for run in args.run], args.tasks.split(","), args.data_dir,
                                      args.probe_seeds, threads=len(usable_cores()))
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from error


def bench_floor(args: Options) -> list[dict]:
    from leaf_ssl.bench import floor
    return floor.bench_exact_floor(args)


BENCHMARKS: dict[str, Callable[[Options], list[dict]]] = {
    "frontend": bench_frontends,
    "step": bench_train_step,
    "input": bench_input,
    "checkpoint": bench_checkpoint,
    "collectives": bench_collectives,
    "learning": bench_learn,
    "floor": bench_floor,
}
NOT_IN_ALL = ("learning", "collectives", "floor")
"""Benchmarks `--what all` leaves out: learning trains for minutes, collectives needs several devices, floor
diagnoses LEAF's FFT path rather than timing a product path."""


def _format_cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return "-" if value is None else str(value)


def print_table(rows: list[dict]) -> None:
    columns = list(dict.fromkeys(column for row in rows for column in row))  # union, in order of appearance
    print("".join(f"{column:>22}" for column in columns))
    for row in rows:
        print("".join(f"{_format_cell(row.get(column)):>22}" for column in columns))


def markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(column for row in rows for column in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> dict[str, str]:
    """What the numbers depend on besides the code: package versions (ours always, the peer's where it
    was imported), usable cores, and glibc's malloc tunables (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
    backs large CPU buffers with huge pages, see docs/performance.md)."""
    found = {"jax": jax.__version__, "jaxlib": jax.lib.__version__, "cpu_cores": str(len(usable_cores())),
             "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", "")}
    for name in ("tensorflow", "torch", "speechbrain"):
        module = sys.modules.get(name)
        if module is not None:
            found[name] = getattr(module, "__version__", "?")
    return found
