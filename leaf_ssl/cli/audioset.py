"""`python -m leaf_ssl.data.audioset`: the command line over `leaf_ssl.data.audioset` (its docstring says what
it writes)."""
import argparse
import logging
import os
import sys

from leaf_ssl.cli import quiet
from leaf_ssl.data import audioset
from leaf_ssl.data.audioset import (DEFAULT_MIN_SECONDS, TASK_FILE, AudioSetError, prepare_audioset, read_json, summary_lines,
                                   task_lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.data.audioset", description=audioset.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--segments", nargs="+", required=True, help="AudioSet segment CSV(s), read in order")
    parser.add_argument("--ontology", required=True, help="AudioSet's ontology.json (decides the label indices)")
    parser.add_argument("--audio_dir", required=True, help="folder of downloaded clips (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder (local or gs://)")
    parser.add_argument("--num_shards", type=int, required=True, help="shards for this split")
    parser.add_argument("--workers", type=int, default=None, help="shard-writing processes (default: all CPUs)")
    parser.add_argument("--split_name", default="train",
                        help="shard prefix and report name (default: train); the probe reads 'train' and 'test'")
    parser.add_argument("--min_seconds", type=float, default=DEFAULT_MIN_SECONDS,
                        help=f"shorter clips are skipped (default: {DEFAULT_MIN_SECONDS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Inherited by the worker processes, whose TensorFlow start-up chatter would break the progress line.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        report = prepare_audioset(args.segments, args.ontology, args.audio_dir, args.out, args.num_shards,
                                  workers=args.workers, split_name=args.split_name, min_seconds=args.min_seconds)
    except AudioSetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report, args.out) + task_lines(read_json(os.path.join(args.out, TASK_FILE)),
                                                                   args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
