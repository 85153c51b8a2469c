"""Embedding audio files into a folder of .npy files, with a report: what `python -m
leaf_ssl.embed` runs (`leaf_ssl.cli.embed` says what is written where).

A file that cannot be decoded, is empty or holds NaN/Inf is skipped and counted; the run goes on.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from leaf_ssl.data.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, BadAudioError, decode_audio
from leaf_ssl.inference.embedder import Embedder
from leaf_ssl.inference.windows import FRAME_HOP_SECONDS, Windows, frame_windows, hop_samples, segment_windows
from leaf_ssl.progress import ProgressLine

REPORT_NAME = "embed_report.json"


class InputError(ValueError):
    """Inputs that give nothing to embed: a missing path, or no audio file at all."""


def find_audio_files(inputs: list[str | Path]) -> tuple[list[tuple[Path, Path]], int]:
    """Audio files named or found under `inputs`, with the relative path each one's outputs mirror.

    Folders are searched recursively for `AUDIO_EXTENSIONS` (hidden files left out); a file named
    explicitly is taken whatever its extension. Paths are relative to the common folder of the inputs
    (a folder input counts as itself, a file as its parent). Each file appears once.

    Returns:
      ([(file, relative path)] in input order, then sorted within folders; number of files in the
      folders that were passed over for their extension).

    Raises:
      InputError: an input does not exist, or no audio file was found.
    """
    files: list[Path] = []
    roots: list[Path] = []
    passed_over = 0
    for name in inputs:
        path = Path(name).expanduser().resolve()
        if path.is_dir():
            roots.append(path)
            for candidate in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
                if candidate.suffix.lower() in AUDIO_EXTENSIONS:
                    files.append(candidate)
                else:
                    passed_over += 1
        elif path.is_file():
            roots.append(path.parent)
            files.append(path)
        else:
            raise InputError(f"input {name} does not exist")
    unique = list(dict.fromkeys(files))
    if not unique:
        raise InputError(f"no audio files found in {', '.join(map(str, inputs))} (searched recursively for "
                         f"{', '.join(sorted(AUDIO_EXTENSIONS))})")
    common = Path(os.path.commonpath(roots))
    return [(file, file.relative_to(common)) for file in unique], passed_over


def output_paths(out_dir: Path, relative: Path) -> dict[str, Path]:
    """Where one file's outputs go: {'clip', 'frames', 'timestamps', 'frontend', 'frontend_seconds'} -> path
    (`leaf_ssl.cli.embed` lists them)."""
    base = out_dir / relative
    return {kind: base.with_name(base.name + suffix)
            for kind, suffix in (("clip", ".npy"), ("frames", ".frames.npy"), ("timestamps", ".timestamps.npy"),
                                 ("frontend", ".frontend.npy"), ("frontend_seconds", ".frontend_seconds.npy"))}


class _FileProgress(ProgressLine):
    """Files done out of the total, audio seconds per second, and an ETA by input bytes."""

    def __init__(self, total_files: int, total_bytes: int, enabled: bool):
        super().__init__("embed", total_files, "files", enabled=enabled)
        self.total_bytes = max(total_bytes, 1)
        self.files = self.bytes = self.skipped = 0
        self.audio_seconds = 0.0

    def advance(self, file_bytes: int, audio_seconds: float = 0.0, skipped: bool = False) -> None:
        self.files += 1
        self.bytes += file_bytes
        self.audio_seconds += audio_seconds
        self.skipped += skipped
        self.update(self.files, self.details(), fraction=self.bytes / self.total_bytes)

    def details(self) -> str:
        return f"{self.skipped} skipped, {self.audio_seconds / max(self.elapsed, 1e-9):.1f} s of audio/s"


def embed_files(embedder: Embedder, files: list[tuple[Path, Path]], out_dir: Path, *,
                frames: bool = False, hop_seconds: float = FRAME_HOP_SECONDS, features: str = "encoder",
                progress: bool = True) -> dict:
    """Embeds `files` ([(path, relative path)]) into `out_dir`; returns the report (see module docstring).

    features: 'encoder' (clip embeddings, and frame embeddings with `frames`) or 'frontend' (the
    frontend's output over each whole file, `Embedder.features`, and its frame centres).
    """
    if features not in ("encoder", "frontend"):
        raise ValueError(f"features must be 'encoder' or 'frontend', not {features!r}")
    sizes = [path.stat().st_size for path, _ in files]
    meter = _FileProgress(len(files), sum(sizes), enabled=progress)
    skipped: list[dict] = []
    embedded: dict[int, dict] = {}  # file index -> its report entry
    timestamps: dict[int, np.ndarray] = {}

    def jobs() -> Iterator[tuple[tuple[int, str], Windows]]:
        """Decodes each file in turn (lazily: decoding overlaps the device's work on earlier files)."""
        for index, (path, relative) in enumerate(files):
            try:
                waveform = decode_audio(path)
            except BadAudioError as error:
                reason = error.reason
            except (OSError, MemoryError) as error:  # e.g. a file removed or unreadable mid-run
                reason = f"unreadable: {type(error).__name__}: {error}"
            else:
                outputs = output_paths(Path(), relative)
                embedded[index] = {"path": str(path), "seconds": round(waveform.size / SAMPLE_RATE, 3),
                                   "output": str(outputs["frontend" if features == "frontend" else "clip"])}
                if features == "frontend":  # the whole clip through the frontend alone: no windows
                    output, centres = embedder.features(waveform, SAMPLE_RATE)
                    targets = output_paths(out_dir, relative)
                    _save(targets["frontend"], output)
                    _save(targets["frontend_seconds"], centres)
                    embedded[index]["frontend_frames"] = len(output)
                    meter.advance(sizes[index], embedded[index]["seconds"])
                    continue
                yield (index, "clip"), segment_windows(waveform, embedder.window_samples)
                if frames:
                    windows, timestamps[index] = frame_windows(waveform, embedder.window_samples, hop_seconds)
                    yield (index, "frames"), windows
                continue
            skipped.append({"path": str(path), "reason": reason})
            meter.advance(sizes[index], skipped=True)

    for (index, kind), embeddings in embedder.stream(jobs()):
        targets = output_paths(out_dir, files[index][1])
        if kind == "clip":
            _save(targets["clip"], embeddings.mean(axis=0))
            embedded[index]["segments"] = len(embeddings)
        else:
            _save(targets["frames"], embeddings)
            _save(targets["timestamps"], timestamps.pop(index))
            embedded[index]["frames"] = len(embeddings)
        if kind == "frames" or not frames:
            meter.advance(sizes[index], embedded[index]["seconds"])
    meter.finish(meter.files, meter.details())
    window_seconds = embedder.window_samples / SAMPLE_RATE
    return {
        "checkpoint": embedder.source, "step": embedder.step, "frontend": embedder.config.frontend.name,
        "encoder": embedder.config.encoder.name, "embedding_dim": embedder.embedding_dim,
        "features": features,
        "clip_embedding": (f"mean of the embeddings of {window_seconds:g} s segments (the probe's)"
                           if features == "encoder" else None),
        "frontend_output": ({"scaling": "each file scaled to a training crop's RMS (unit L2 norm per crop)",
                             "frontend_seconds": "frame centres in seconds"} if features == "frontend" else None),
        "frames": ({"window_seconds": window_seconds, "hop_seconds": hop_samples(hop_seconds) / SAMPLE_RATE,
                    "timestamps": "window centres in seconds, from 0"} if frames else None),
        "counts": {"files": len(files), "embedded": len(embedded), "skipped": len(skipped)},
        "embedded": list(embedded.values()),
        "skipped": skipped,
        "seconds": round(meter.elapsed, 1),
    }


def _save(path: Path, array: np.ndarray) -> None:
    """Writes through a temporary name: an interrupted run never leaves a truncated .npy behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        np.save(handle, array)
    partial.replace(path)
