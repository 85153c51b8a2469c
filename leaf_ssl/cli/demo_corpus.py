"""`python -m leaf_ssl.data.demo`: the command line over `leaf_ssl.data.demo` (its docstring says what
it writes)."""
import argparse
import logging
import os
import sys

from leaf_ssl.cli import quiet
from leaf_ssl.data import demo
from leaf_ssl.data.demo import SCALES, build_demo_corpus
from leaf_ssl.data.demo_sources.common import MissingToolError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.data.demo", description=demo.__doc__.split("\n\n")[0])
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--out", required=True, help="corpus directory")
    parser.add_argument("--scale", choices=SCALES, default="small", help="corpus size (default: small)")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: all CPUs)")
    parser.add_argument("--pretrain_hours", type=float, default=0.0,
                        help="add about this many hours of game music, effects and voices from Debian packages "
                             "to the pretraining shards (downloaded with apt-get; default 0)")
    parser.add_argument("--package_cache", default=None,
                        help="folder the packages are downloaded and unpacked in (default: OUT/packages)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides the progress line
    try:
        manifest = build_demo_corpus(args.out, args.scale, workers=args.workers, pretrain_hours=args.pretrain_hours,
                                     package_cache=args.package_cache)
    except (MissingToolError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pretrain = manifest["pretrain"]
    tasks = "; ".join(f"{name}: {n['train']} train / {n['test']} test" for name, n in manifest["tasks"].items())
    minutes = pretrain["seconds"] / 60
    print(f"demo corpus in {args.out}: {pretrain['clips']} pretraining clips ({minutes:.1f} min); {tasks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
