"""Every row of docs/performance.md's device table in one process: `bash launch/device_bench.sh`.

    python -m leaf_ssl.cli.device_bench [--smoke] [--json FILE]

Runs, on the default jax device and with the PyTorch peers on the same device: the frontend paths
(and SpeechBrain's Leaf), the whole COLA step in float32 and bfloat16 (and the torch COLA step, same
batch, taking turns), the step with each LEAF pooling path, with the frontend recomputed in the
backward pass and with the depthwise convolutions as shifted slices, and the step's breakdown by part. Prints one markdown table per section and writes
every row as JSON. A section that fails prints its error and the others still run (exit status 1
at the end). `--smoke` runs the same sections at a tiny shape: the CPU check that a device call
cannot fail on a typo.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

import jax

from leaf_ssl.cli import quiet
from leaf_ssl.bench.suite import BENCHMARKS, environment, markdown_table
from leaf_ssl.cli.bench import parse_args as parse_bench_args

PAPER_SHAPE = {"batch": "512", "n_filters": "64", "pairs_per_device": "256", "repeats": "5",
               "encoder": "efficientnet_b0", "breakdown_dtypes": "float32,bfloat16"}
# The smoke checks that every section runs, not the numbers: the small encoder and one breakdown dtype
# keep its compiles (most of its time on a CPU) short.
SMOKE_SHAPE = {"batch": "2", "n_filters": "8", "pairs_per_device": "1", "repeats": "1",
               "encoder": "efficientnet_tiny", "breakdown_dtypes": "float32"}


def sections(shape: dict[str, str]) -> list[tuple[str, list[str]]]:
    """(title, `python -m leaf_ssl.bench` arguments) of each section."""
    frontend = ["--what", "frontend", "--batch", shape["batch"], "--n_filters", shape["n_filters"],
                "--repeats", shape["repeats"]]
    step = ["--what", "step", "--frontend", "leaf", "--n_filters", shape["n_filters"], "--encoder", shape["encoder"],
            "--pairs_per_device", shape["pairs_per_device"], "--repeats", shape["repeats"]]
    return [
        ("frontend forward + gradient, every path, SpeechBrain's Leaf as the peer", frontend + ["--peer", "speechbrain"]),
        (f"whole COLA step (LEAF + {shape['encoder']}), the torch COLA step as the peer",
         step + ["--dtypes", "float32,bfloat16", "--peer", "torch"]),
        ("step, LEAF pooling by separable passes", step + ["--dtypes", "bfloat16", "--pooling_impl", "passes"]),
        ("step, LEAF pooling as one matmul", step + ["--dtypes", "bfloat16", "--pooling_impl", "matmul"]),
        ("step, frontend recomputed in the backward pass", step + ["--dtypes", "bfloat16", "--remat_frontend"]),
        ("step, depthwise convolutions as shifted slices", step + ["--dtypes", "bfloat16", "--depthwise_impl", "shifts"]),
        ("step by part: XLA's FLOPs and bytes", step + ["--dtypes", shape["breakdown_dtypes"], "--breakdown"]),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.cli.device_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, one repeat: a check, not a measurement")
    parser.add_argument("--json", help="write every row, the device and the environment to this file")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"# leaf_ssl device benchmark on {device.platform} ({device.device_kind})"
          f"{' (smoke shapes)' if args.smoke else ''}\n", flush=True)
    started, failures, results = time.perf_counter(), [], []
    for title, bench_argv in sections(SMOKE_SHAPE if args.smoke else PAPER_SHAPE):
        section_start = time.perf_counter()
        options = parse_bench_args(bench_argv)
        try:
            rows = BENCHMARKS[options.what](options)
        except (Exception, SystemExit) as error:  # one broken section must not hide the others
            traceback.print_exc()
            failures.append(title)
            print(f"## {title}\n\nFAILED: {type(error).__name__}: {error}\n", flush=True)
            continue
        seconds = time.perf_counter() - section_start
        print(f"## {title}\n\n`python -m leaf_ssl.bench {' '.join(bench_argv)}` ({seconds:.0f} s)\n\n"
              f"{markdown_table(rows)}\n", flush=True)
        results.append({"title": title, "argv": bench_argv, "seconds": seconds, "rows": rows})
    total = time.perf_counter() - started
    print(f"{len(results)} of {len(results) + len(failures)} sections in {total:.0f} s"
          + (f"; failed: {', '.join(failures)}" if failures else ""), flush=True)
    if args.json:
        with open(args.json, "w") as output:
            json.dump({"device": f"{device.platform}:{device.device_kind}", "smoke": args.smoke, "seconds": total,
                       "environment": environment(), "failed": failures, "sections": results}, output, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
