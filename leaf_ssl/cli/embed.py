"""`python -m leaf_ssl.embed`: embeds audio files with a pretrained model (`inference.files`).

    python -m leaf_ssl.embed --ckpt runs/demo_leaf sounds/ more/clip.flac --out embeddings [--frames]

Inputs are audio files and folders (searched recursively for the extensions libsndfile reads, plus
mp3 and oga); any sample rate and channel count is downmixed and resampled to 16 kHz. For each file,
under `--out`, at the file's path relative to the inputs' common folder, with its extension kept (so
`a/x.wav` and `b/x.wav`, or `x.wav` and `x.flac`, never collide):

* `<path>.npy`: the clip embedding, (dim,) float32: the mean of the embeddings of its segments, as
  long as the model's training crops (0.96 s by default), cut as the linear probe cuts them
  (`leaf_ssl.inference.embedder`).
* with `--frames`: `<path>.frames.npy`, (n, dim) float32, one embedding per such window centred on
  each timestamp 0, hop, 2 hop, ... <= duration (audio zero-padded by half a window at both ends), and
  `<path>.timestamps.npy`, (n,) float64, those window centres in seconds; hop `--hop_ms` (50 ms).
* with `--features frontend`, instead: `<path>.frontend.npy`, (n_frames, channels) float32, the
  frontend's output over the whole file (the learnt time-frequency representation, 10 ms frames),
  the file scaled to a training crop's loudness, and `<path>.frontend_seconds.npy`, the frame centres.

A file that cannot be decoded, is empty or holds NaN/Inf is skipped and counted; the run goes on.
`<out>/embed_report.json` lists every file embedded (output, duration, windows) and every file skipped
with its reason. A progress line with rate and ETA goes to stderr every few seconds. Exit status: 0 when
at least one file was embedded, 1 when none could be, 2 for a bad command line (missing input, no audio
files found, no checkpoint).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from leaf_ssl.cli import config_overrides, exits, quiet
from leaf_ssl.inference.embedder import Embedder
from leaf_ssl.inference.files import REPORT_NAME, InputError, embed_files, find_audio_files
from leaf_ssl.inference.windows import DEFAULT_BATCH_SIZE, FRAME_HOP_SECONDS, NonFiniteFeatures, hop_samples
from leaf_ssl.training.checkpointing import CheckpointError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.embed", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=config_overrides.EPILOG)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and folders (recursive)")
    parser.add_argument("--ckpt", required=True, help="a run workdir, checkpoints/ folder, step folder or "
                                                      "random:<config>")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--features", choices=("encoder", "frontend"), default="encoder",
                        help="encoder: embeddings (the default); frontend: the frontend's output per file")
    parser.add_argument("--frames", action="store_true", help="also write frame embeddings and timestamps")
    parser.add_argument("--hop_ms", type=float, default=FRAME_HOP_SECONDS * 1000,
                        help="hop between frame embeddings in ms (default %(default)g)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH_SIZE, help="windows per embedding call")
    args, args.config_overrides = config_overrides.parse_args_and_overrides(parser, argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        hop_samples(args.hop_ms / 1000)
        files, passed_over = find_audio_files(args.inputs)
        embedder = Embedder(config_overrides.load_model(args.ckpt, args.config_overrides), batch_size=args.batch)
    except (InputError, CheckpointError, ValueError) as error:
        exits.usage_error(str(error))
    out_dir = Path(args.out)
    try:
        report = embed_files(embedder, files, out_dir, frames=args.frames, hop_seconds=args.hop_ms / 1000,
                             features=args.features)
    except NonFiniteFeatures as error:
        exits.failure(f"{embedder.source}: {error}")
    report["inputs"] = args.inputs
    report["counts"]["passed_over_not_audio"] = passed_over
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=2))
    counts = report["counts"]
    print(f"embedded {counts['embedded']} of {counts['files']} files into {out_dir} ({counts['skipped']} skipped"
          f"{': see ' + str(out_dir / REPORT_NAME) if counts['skipped'] else ''})")
    if counts["embedded"] == 0:
        sys.exit(exits.EXIT_FAILURE)


if __name__ == "__main__":
    main()
