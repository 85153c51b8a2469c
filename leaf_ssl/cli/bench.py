"""`python -m leaf_ssl.bench --what frontend|step|input|checkpoint|collectives|learning|all [...]`.

Each benchmark is a function in `bench.suite.BENCHMARKS` (keyed by the `--what` name) that takes the parsed
arguments and returns rows of results; `main` prints them as a table and optionally writes them as JSON
(`--what all` runs every benchmark in turn but `learning`, which trains for minutes).

  frontend: jit-compiled forward + gradient (of the sum of the features w.r.t. the parameters) of every
            frontend and filterbank path (`--cases`) on (batch, 15360) random audio (0.96 s at 16 kHz),
            on the default jax device. After one warm-up (compile) call each, the cases take turns
            within each repeat, so that load from other processes hits them alike; median over
            --repeats calls, each ended by block_until_ready. Also XLA's cost analysis of each
            compiled case (`gflop`, `gb_accessed`: a model of memory traffic, not a measurement).
            On the CPU, `--threads N` pins the process to N cores (default: every usable core).
            `--peer speechbrain` adds SpeechBrain's Leaf (PyTorch) forward + backward on the same batch,
            on the same device (on the CPU with one thread per core used), taking its turn with the
            others, and a `vs_peer` column: crops/s over the peer's. Needs torch and speechbrain,
            which are not dependencies of this package; without them the peer is skipped with a
            message that says how to install them.
            `--stages` adds, before each LEAF case, rows for its first stages alone ('/modulus': Gabor
            filterbank + squared modulus; '/pooling': + Gaussian lowpass), to see where the time goes.
  step:     the whole data-parallel COLA train step (frontend, SpecAugment, EfficientNet-B0, bilinear
            loss, AdamW) at the paper's shapes: --pairs_per_device pairs of 0.96 s crops on every local
            device, --n_filters filters, encoder in float32 and bfloat16. The batch is on the devices
            before timing. Also XLA's cost analysis of the compiled step (FLOPs, bytes), the achieved
            TFLOP/s, the allocator's peak since the process started where the backend reports it
            (`process_peak_gib`), and XLA's memory analysis of each compiled step: its temporary
            buffers and all it holds at once (`xla_temp_gib`, `xla_total_gib`; known before the step
            runs, on every backend). `--pooling_impl` picks LEAF's lowpass path, `--filterbank_impl` its
            filterbank path ('fused': the Pallas kernel, TPU only compiled).
            `--peer torch` adds the PyTorch COLA step (`leaf_ssl.bench.torch_cola`: SpeechBrain's Leaf
            for --frontend leaf, a log-mel for mel; EfficientNet-B0, COLA's head, AdamW; bfloat16 under
            autocast) on the same batch, taking turns with ours, and a `vs_peer` column per dtype.
            `--breakdown` instead reports XLA's FLOPs and bytes of each part of the step
            (`leaf_ssl.bench.breakdown`: frontend, encoder forward and backward, head and loss, optimizer).
  input:    the pretraining readers alone (tf.data, and the shards decoded into memory), in crops per
            second per CPU core, at 1 thread and at every core (`--threads`); see
            `leaf_ssl.bench.input_pipeline`.
  checkpoint: the paper-shape train state (`--frontend`, `--n_filters`, B0, AdamW) through the run's
            checkpoint store: save (with its digests, until on disk) and restore (with their check), and
            the SHA-256 digests alone; `digest_share` is the digests' part of each.
  collectives: what the compiled multi-device step moves between devices, per device and step, read
            from its optimised HLO (all-reduce, all-gather, ...: count and MB), next to the parameters'
            MB; the input of the scaling model in docs/performance.md. Needs several devices (on a
            CPU host: XLA_FLAGS=--xla_force_host_platform_device_count=8).
  learning: learning parity with an independent PyTorch COLA (`--peer torch`): for each finished run
            (`--run`, repeated: one per seed; mel frontend), the peer trains on the run's own batches
            with its recipe, then both are probed on `--tasks` by the same probe code; contrastive
            accuracy and loss at every logged step and the probes, mean ± std over runs. See
            `leaf_ssl.bench.learning` and `launch/learning_parity.sh`.

  floor:    how fast an exact LEAF filterbank could be here: LEAF's FFT path (forward + gradient, --batch
            crops, --n_filters) beside its transforms alone and one elementwise pass over an array of its
            filter outputs' size, taking turns in one process, and the floor they add up to; `vs_leaf_fft`
            is each row's speed-up over the whole path. See `leaf_ssl.bench.floor`.

Rows of `frontend` and `input` also have `crops_per_cpu_s` (crops per second of the process's CPU time,
all threads), `cores_busy` (process CPU seconds / wall seconds: how many cores the case kept busy; on a
CPU host it shows whether both sides of a comparison used every core) and `cores_waiting` (seconds the
process's threads were ready to run but waited for a core / wall seconds, Linux only: high when other
processes crowd the case out), see `leaf_ssl.bench.host`.
"""
import argparse
import json
import logging

import jax

from leaf_ssl.cli import quiet
from leaf_ssl.bench.host import usable_cores
from leaf_ssl.bench import suite
from leaf_ssl.bench.suite import LEAF_STAGES, environment, frontend_cases, print_table
from leaf_ssl.encoders.efficientnet import DEPTHWISE_IMPLS
from leaf_ssl.encoders.factory import ENCODERS
from leaf_ssl.frontends.leaf import FILTERBANK_IMPLS
from leaf_ssl.frontends.pooling import POOLING_IMPLS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--what", choices=[*suite.BENCHMARKS, "all"], default="frontend")
    parser.add_argument("--batch", type=int, default=64, help="frontend, floor: crops per call; input: crops per batch")
    parser.add_argument("--n_filters", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", help=f"frontend: comma-separated subset of {','.join(frontend_cases(1))}")
    parser.add_argument("--peer", choices=["speechbrain", "torch"],
                        help="frontend: also time SpeechBrain's Leaf (speechbrain); learning: the torch COLA (torch)")
    parser.add_argument("--stages", action="store_true",
                        help=f"frontend: also time each LEAF case's first stages ({', '.join(LEAF_STAGES)})")
    parser.add_argument("--pairs_per_device", type=int, default=256, help="step: pairs per device")
    parser.add_argument("--frontend", default="leaf", help="step: leaf | sincnet | sincnet_plus | mel")
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default="efficientnet_b0",
                        help="step, collectives: the encoder preset (the peer's EfficientNet takes its width and depth)")
    parser.add_argument("--depthwise_impl", choices=DEPTHWISE_IMPLS, default="auto",
                        help="step, collectives: the encoder's depthwise convolution path (auto: by backend)")
    parser.add_argument("--dtypes", default="float32,bfloat16", help="step: encoder dtypes, comma-separated")
    parser.add_argument("--breakdown", action="store_true",
                        help="step: XLA's FLOPs and bytes of each part of the step instead of timing it")
    parser.add_argument("--remat_frontend", action="store_true", help="step: recompute the frontend in backward")
    parser.add_argument("--filterbank_impl", choices=FILTERBANK_IMPLS, default="auto",
                        help="step: LEAF's filterbank path, 'fused' its Pallas kernel (auto: the backend's default)")
    parser.add_argument("--pooling_impl", choices=POOLING_IMPLS, default="auto",
                        help="step: the Gaussian lowpass path of LEAF / SincNet+ (auto: the backend's default)")
    parser.add_argument("--shards", help="input: a folder or pattern of TFRecord shards (default: synthetic clips)")
    parser.add_argument("--clip_seconds", type=float, default=10.0, help="input: synthetic clip length")
    parser.add_argument("--clips", type=int, default=512, help="input: synthetic clips")
    parser.add_argument("--num_shards", type=int, default=16, help="input: synthetic shards")
    parser.add_argument("--threads", help="input: tf.data thread counts, comma-separated (default: 1 and all cores); "
                                          "frontend: run on this many cores (default: all), the peer with as "
                                          "many threads")
    parser.add_argument("--shuffle_buffer", type=int, default=128,
                        help="input: clips in the shuffle buffer; keep it below the clip count, as on AudioSet, "
                             "or every epoch starts with a pause to fill it")
    parser.add_argument("--input_batches", type=int, default=50, help="input: timed batches per repeat")
    parser.add_argument("--readers", default="tf_data,in_memory",
                        help="input: readers to time, comma-separated (tf_data, in_memory; default both)")
    parser.add_argument("--run", action="append", help="learning: a finished run of ours (repeat: one per seed)")
    parser.add_argument("--tasks", default="keyword,instrument,language", help="learning: probe tasks, comma-separated")
    parser.add_argument("--data_dir", default="demo_corpus", help="learning: the demo corpus, for bare task names")
    parser.add_argument("--probe_seeds", type=int, default=3, help="learning: linear heads per task and model")
    parser.add_argument("--json", help="also write the rows (and the device and environment) to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the learning benchmark's progress lines
    device = jax.devices()[0]
    names = [name for name in suite.BENCHMARKS if name not in suite.NOT_IN_ALL] if args.what == "all" else [args.what]
    all_rows = []
    for name in names:
        rows = suite.BENCHMARKS[name](args)
        where = f"the host CPU ({len(usable_cores())} cores)" if name == "input" else \
            f"{device.platform} ({device.device_kind})"
        summary = ("mean ± std over runs" if name == "learning" else
                   "XLA's cost analysis, untimed" if name == "step" and args.breakdown else
                   "the compiled step's HLO, untimed" if name == "collectives" else f"median of {args.repeats}")
        print(f"{name} on {where}, {summary}")
        print_table(rows)
        all_rows += [{"what": name, **row} for row in rows]
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"what": args.what, "device": f"{device.platform}:{device.device_kind}",
                       "repeats": args.repeats, "environment": environment(), "rows": all_rows},
                      output, indent=2)


if __name__ == "__main__":
    main()
