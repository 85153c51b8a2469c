"""What a frontend learned: its filters against the mel scale, as numbers and figures.

    python -m leaf_ssl.analyze --ckpt runs/leaf_random --ckpt random:configs/pretrain_leaf.py:random --out analysis

For each checkpoint (a run, its `checkpoints/`, a step folder, or `random:<config>` for the state
before training), in Hz and ms:

* every filter's centre frequency and bandwidth, sorted by centre, against the mel initialisation of
  the same frontend with the same number of filters (the k-th lowest learned centre is compared with
  the k-th lowest mel centre);
* a histogram of centre frequencies over 0 .. sample_rate / 2, and the fraction of that range the
  filters' half-amplitude bands cover (the paper's "broader range of frequencies");
* the amplitude response of every filter;
* the Gaussian lowpass widths (LEAF, SincNet+) and the per-channel sPCEN parameters.

Several checkpoints are overlaid in each figure (SSL vs supervised, mel vs random init, before vs after
training). Written to `--out`: `centre_frequencies.png`, `bandwidths.png`, `centre_histogram.png`,
`frequency_responses.png`, `lowpass.png` and `pcen.png` (when a frontend has them), with `--clip`
`frontend_output.png` (each frontend's output for that clip, `leaf_ssl.load(...).features`, under a
log-mel of it), and `analysis.json` (every number above); a short summary is printed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from leaf_ssl.cli import config_overrides, exits, quiet
from leaf_ssl.data.audio import SAMPLE_RATE, BadAudioError, decode_audio
from leaf_ssl.frontends.figures import draw_outputs, write_figures
from leaf_ssl.frontends.mel import MelFilterbank
from leaf_ssl.inference.embedder import Embedder
from leaf_ssl.evaluation.probe import describe_model
from leaf_ssl.frontends.inspect import (DEFAULT_SHIFT_THRESHOLD, filters_report, format_summary,
                                        frame_centre_seconds, frontend_filters)
from leaf_ssl.inference.frozen_model import RANDOM_PREFIX, FrozenModel
from leaf_ssl.training.checkpointing import CheckpointError


def default_label(frozen: FrozenModel) -> str:
    """E.g. 'leaf (random init), self-supervised, step 50000' or 'leaf (mel init), untrained'."""
    model = describe_model(frozen)
    init = "" if model["frontend"] == "mel" else f" ({model['init']} init)"
    step = f", step {model['step']}" if frozen.trained else ""
    return f"{model['frontend']}{init}, {model['training']}{step}"


def frozen_filters(frozen: FrozenModel):
    return frontend_filters(frozen.config.frontend, frozen.variables["params"].get("frontend", {}))


def unique_labels(labels: list[str]) -> list[str]:
    """Labels with ' #2', ' #3', ... appended to repeats, so every legend entry is distinct."""
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m leaf_ssl.analyze", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=config_overrides.EPILOG)
    parser.add_argument(quiet.VERBOSE_FLAG, action="store_true", help=quiet.VERBOSE_HELP)
    parser.add_argument("--ckpt", action="append", required=True,
                        help="a run workdir, checkpoints/ folder, step folder or random:<config> (repeatable)")
    parser.add_argument("--label", action="append",
                        help="legend label per --ckpt, in the same order (default: frontend, init, training)")
    parser.add_argument("--out", required=True, help="folder for the figures and analysis.json")
    parser.add_argument("--clip", help="an audio file: also draw each frontend's output for it, channels in "
                                       "order of centre frequency, under a log-mel of the same clip")
    parser.add_argument("--threshold", type=float, default=DEFAULT_SHIFT_THRESHOLD,
                        help="relative centre shift from mel counted as moved (default 0.1 = 10%%)")
    args, args.config_overrides = config_overrides.parse_args_and_overrides(parser, argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.label and len(args.label) != len(args.ckpt):
        exits.usage_error(f"{len(args.label)} --label for {len(args.ckpt)} --ckpt: give one per checkpoint or none")
    try:
        models = [config_overrides.load_model(spec, args.config_overrides if spec.startswith(RANDOM_PREFIX) else [])
                  for spec in args.ckpt]
    except CheckpointError as error:
        exits.usage_error(str(error))
    labels = unique_labels(args.label or [default_label(frozen) for frozen in models])
    entries = [(label, frozen_filters(frozen)) for label, frozen in zip(labels, models)]
    out = Path(args.out)
    figures = write_figures(entries, out)
    if args.clip:
        figures.append(_draw_clip(args.clip, labels, models, entries, out))
    report = {"shift_threshold": args.threshold, "figures": [path.name for path in figures], "checkpoints": [
        {"label": label, "spec": spec, "source": frozen.source, "step": frozen.step, "model": describe_model(frozen),
         **filters_report(analysed, args.threshold)}
        for spec, frozen, (label, analysed) in zip(args.ckpt, models, entries)]}
    (out / "analysis.json").write_text(json.dumps(report, indent=2))
    for (label, analysed), checkpoint_report in zip(entries, report["checkpoints"]):
        print(format_summary(label, analysed, checkpoint_report["summary"]))
    print(f"written: {', '.join(str(path) for path in figures)}, {out / 'analysis.json'}")


def _draw_clip(clip: str, labels, models, entries, out: Path) -> Path:
    """`frontend_output.png`: a log-mel of the clip, then each frontend's output for it."""
    try:
        waveform = decode_audio(clip)
    except (BadAudioError, OSError) as error:
        exits.usage_error(f"--clip: {error}")
    log_mel = MelFilterbank.from_preset("leaf")
    reference = np.asarray(log_mel.apply({}, jnp.asarray(waveform)[None])[0])
    rows = [("log-mel (40 bins)", reference, frame_centre_seconds(log_mel, waveform.size, SAMPLE_RATE))]
    for label, frozen, (_, analysed) in zip(labels, models, entries):
        frames, seconds = Embedder(frozen).features(waveform, SAMPLE_RATE)
        rows.append((label, frames[:, analysed.order], seconds))
    path = out / "frontend_output.png"
    draw_outputs(rows, f"Frontend outputs for {Path(clip).name}").savefig(path, dpi=120)
    return path


if __name__ == "__main__":
    main()
