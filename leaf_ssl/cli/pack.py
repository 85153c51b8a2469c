"""`python -m leaf_ssl.data.pack`: the command line over `leaf_ssl.data.pack` (its docstring says what it
writes)."""
import argparse
import json
import sys

from leaf_ssl.cli import quiet
from leaf_ssl.data import pack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.data.pack", description=pack.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--src", required=True, help="a corpus folder (shards anywhere below it)")
    parser.add_argument("--out", required=True, help="the compressed corpus's folder")
    parser.add_argument("--encoding", choices=("opus", "flac"), default="opus", help="default: opus")
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: all CPUs)")
    args = parser.parse_args(argv)
    try:
        report = pack.pack_corpus(args.src, args.out, args.encoding, workers=args.workers)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    ratio = report["source_shard_bytes"] / max(report["packed_shard_bytes"], 1)
    print(f"{report['clips']} clips in {report['shards']} shards: {report['source_shard_bytes'] / 2**20:.1f} MiB -> "
          f"{report['packed_shard_bytes'] / 2**20:.1f} MiB ({ratio:.1f}x); skipped {sum(report['skipped'].values())}")
    print(json.dumps(report), file=sys.stderr)
    return 0
