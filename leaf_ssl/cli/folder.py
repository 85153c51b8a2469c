"""`python -m leaf_ssl.data.folder`: the command line over `leaf_ssl.data.folder` (its docstring says what
it writes)."""
import argparse
import logging
import os
import sys

from leaf_ssl.cli import quiet
from leaf_ssl.data import folder
from leaf_ssl.data.folder import (DEFAULT_MIN_SECONDS, FolderError, find_audio_files, prepare_folder, read_file_list,
                                 summary_lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.data.folder", description=folder.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio_dir", help="folder of audio files (searched recursively)")
    source.add_argument("--file_list", help="a text file or CSV ('path' column) of audio file paths")
    parser.add_argument("--out", required=True, help="output folder (local or gs://)")
    parser.add_argument("--num_shards", type=int, default=16,
                        help="shards (default 16; use at least as many as training processes)")
    parser.add_argument("--workers", type=int, default=None, help="shard-writing processes (default: all CPUs)")
    parser.add_argument("--split_name", default="pretrain", help="shard file prefix (default: pretrain)")
    parser.add_argument("--min_seconds", type=float, default=DEFAULT_MIN_SECONDS,
                        help=f"shorter files are skipped and counted (default: {DEFAULT_MIN_SECONDS})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # inherited by the workers: keeps the progress line clean
    try:
        if args.audio_dir is not None:
            files, root = find_audio_files(args.audio_dir), args.audio_dir
        else:
            files, root = read_file_list(args.file_list), os.path.dirname(os.path.abspath(args.file_list))
        report = prepare_folder(files, root, args.out, num_shards=args.num_shards, workers=args.workers,
                                split_name=args.split_name, min_seconds=args.min_seconds)
    except FolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(report, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
