"""Figures of frontends' filters, several overlaid: `python -m leaf_ssl.analyze` draws them to files,
training to TensorBoard."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from leaf_ssl.frontends.inspect import HISTOGRAM_BINS, PCEN_INITS, PCEN_PARAMETERS, FrontendFilters
from leaf_ssl.frontends.pooling import POOLING_SIGMA_INIT


def write_figures(entries: list[tuple[str, FrontendFilters]], out_dir: str | Path) -> list[Path]:
    """PNG files of `draw_figures(entries)` in `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in draw_figures(entries).items():
        figure.savefig(out_dir / f"{name}.png", dpi=120)
        paths.append(out_dir / f"{name}.png")
    return paths


def draw_figures(entries: list[tuple[str, FrontendFilters]]) -> dict:
    """Matplotlib figures of labelled frontends overlaid, by name (centre_frequencies, bandwidths,
    centre_histogram, frequency_responses; lowpass and pcen where a frontend has them).

    Uses matplotlib's object API with the Agg canvas: no display, and no change to pyplot's global
    backend in the caller's session.
    """
    figures = {
        "centre_frequencies": _centre_figure(entries),
        "bandwidths": _bandwidth_figure(entries),
        "centre_histogram": _histogram_figure(entries),
        "frequency_responses": _response_figure(entries),
    }
    if any(analysed.lowpass_std_ms is not None for _, analysed in entries):
        figures["lowpass"] = _lowpass_figure(entries)
    if any(analysed.pcen is not None for _, analysed in entries):
        figures["pcen"] = _pcen_figure(entries)
    return figures


def draw_outputs(rows: list[tuple[str, np.ndarray, np.ndarray]], title: str):
    """One image per row: (label, frontend output (frames, channels), frame centres in s), channels
    bottom to top, time left to right, each row on its own colour scale."""
    figure, axes = _new_figure(9.0, 1.0 + 1.8 * len(rows), rows=len(rows), sharex=True)
    for index, (label, frames, seconds) in enumerate(rows):
        axis = axes[index, 0]
        hop = seconds[1] - seconds[0] if len(seconds) > 1 else 0.01
        axis.imshow(np.asarray(frames).T, origin="lower", aspect="auto", interpolation="nearest",
                    extent=(seconds[0] - hop / 2, seconds[-1] + hop / 2, -0.5, frames.shape[1] - 0.5))
        axis.set(ylabel="channel", title=label)
    axes[-1, 0].set_xlabel("time (s)")
    figure.suptitle(title)
    return figure


def _new_figure(width: float, height: float, rows: int = 1, columns: int = 1, **subplot_options):
    from matplotlib.figure import Figure  # imported here: the numbers above need no matplotlib
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(rows, columns, squeeze=False, **subplot_options)


def _colour(index: int) -> str:
    return f"C{index % 10}"


def _mel_references(entries) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The distinct mel references of the entries: (legend label, sorted centres, their bandwidths)."""
    references: dict[tuple, tuple[str, np.ndarray, np.ndarray]] = {}
    for _, analysed in entries:
        order = np.argsort(analysed.mel_centre_hz, kind="stable")
        centres, widths = analysed.mel_centre_hz[order], analysed.mel_bandwidth_hz[order]
        key = tuple(np.round(centres, 3))
        kind = "mel filterbank" if analysed.frontend == "mel" else f"{analysed.frontend} mel init"
        references.setdefault(key, (f"{kind} ({analysed.n_filters} filters)", centres, widths))
    return list(references.values())


_REFERENCE_STYLES = ("--", ":", "-.")


def _centre_figure(entries):
    figure, axes = _new_figure(7.5, 4.8)
    axis = axes[0, 0]
    for index, (label, analysed) in enumerate(entries):
        centres = np.sort(analysed.centre_hz)
        axis.plot(np.arange(1, len(centres) + 1), centres, marker="o", markersize=3, color=_colour(index),
                  label=label)
    for style, (label, centres, _) in zip(itertools.cycle(_REFERENCE_STYLES), _mel_references(entries)):
        axis.plot(np.arange(1, len(centres) + 1), centres, style, color="black", linewidth=1.2, label=label)
    axis.set(xlabel="filter, sorted by centre frequency", ylabel="centre frequency (Hz)",
             title="Centre frequencies against the mel scale")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def _bandwidth_figure(entries):
    figure, axes = _new_figure(7.5, 4.8)
    axis = axes[0, 0]
    for index, (label, analysed) in enumerate(entries):
        axis.scatter(analysed.centre_hz, analysed.bandwidth_hz, s=14, color=_colour(index), label=label)
    for style, (label, centres, widths) in zip(itertools.cycle(_REFERENCE_STYLES), _mel_references(entries)):
        axis.plot(centres, widths, style, color="black", linewidth=1.2, label=label)
    axis.set(xlabel="centre frequency (Hz)", ylabel="bandwidth, half-amplitude width (Hz)", yscale="log",
             title="Bandwidths against the mel scale")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    return figure


def _histogram_figure(entries):
    figure, axes = _new_figure(7.5, 4.8)
    axis = axes[0, 0]
    nyquist = max(analysed.sample_rate for _, analysed in entries) / 2.0
    edges = np.linspace(0.0, nyquist, HISTOGRAM_BINS + 1)
    for index, (label, analysed) in enumerate(entries):
        axis.hist(analysed.centre_hz, bins=edges, histtype="step", linewidth=2.5, color=_colour(index), label=label)
    for style, (label, centres, _) in zip(itertools.cycle(_REFERENCE_STYLES), _mel_references(entries)):
        # thin and on top, so that a checkpoint equal to its mel reference still shows beneath it
        axis.hist(centres, bins=edges, histtype="step", linestyle=style, linewidth=1.0, color="black", label=label)
    axis.set(xlabel="centre frequency (Hz)", ylabel=f"filters per {edges[1]:.0f} Hz band", xlim=(0, nyquist),
             title="Where the filters sit in the spectrum")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def _response_figure(entries):
    figure, axes = _new_figure(8.0, 1.0 + 2.2 * len(entries), rows=len(entries), sharex=True)
    for index, (label, analysed) in enumerate(entries):
        axis = axes[index, 0]
        axis.plot(analysed.response_hz, analysed.responses.T, color=_colour(index), linewidth=0.8, alpha=0.8)
        axis.set(ylabel="amplitude\n(peak = 1)", ylim=(0, 1.05), title=f"{label}: {analysed.n_filters} filters")
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("frequency (Hz)")
    figure.suptitle("Frequency responses")
    return figure


def _lowpass_figure(entries):
    figure, axes = _new_figure(7.5, 4.8)
    axis = axes[0, 0]
    for index, (label, analysed) in enumerate(entries):
        if analysed.lowpass_std_ms is not None:
            axis.scatter(analysed.centre_hz, analysed.lowpass_std_ms, s=14, color=_colour(index), label=label)
    axis.set(xlabel="centre frequency of the channel's filter (Hz)", ylabel="Gaussian lowpass std (ms)",
             title=f"Lowpass widths (initial sigma {POOLING_SIGMA_INIT} of the half-window)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def _pcen_figure(entries):
    figure, axes = _new_figure(10.0, 7.0, rows=2, columns=2, sharex=True)
    for position, key in enumerate(PCEN_PARAMETERS):
        axis = axes[position // 2, position % 2]
        for index, (label, analysed) in enumerate(entries):
            if analysed.pcen is not None:
                axis.scatter(analysed.centre_hz, analysed.pcen[key], s=12, color=_colour(index), label=label)
        axis.axhline(PCEN_INITS[key], color="black", linestyle="--", linewidth=1, label="initial value")
        axis.set(ylabel=key, title=f"sPCEN {key}")
        axis.grid(alpha=0.3)
    for axis in axes[-1]:
        axis.set_xlabel("centre frequency of the channel's filter (Hz)")
    axes[0, 0].legend(fontsize=8)
    figure.suptitle("Per-channel compression")
    return figure
