"""A frontend's filters in Hz and ms, read from its parameters: centre frequencies, bandwidths,
their mel reference, frequency responses, lowpass widths and sPCEN parameters.

Definitions, shared by all frontends so they compare (each function below derives its closed form):

* centre: the frequency of the amplitude response's peak (Gabor: mu; sinc: the band's midpoint;
  mel: the triangle's apex).
* bandwidth: the full width at half maximum of the AMPLITUDE response. The mel filters weight the power
  spectrum, so their amplitude response is sqrt(weight); the Gabor mel initialisation imitates exactly
  this width (`frontends.initializers.gabor_params_from_mel`).
* Parameters are reported after the forward pass's constraints (`frontends.constraints`): the values
  the model computes with.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax.numpy as jnp
import numpy as np

from leaf_ssl.frontends import constraints, filters, initializers
from leaf_ssl.frontends.compression import (PCEN_ALPHA_INIT, PCEN_DELTA_INIT, PCEN_ROOT_INIT,
                                            PCEN_SMOOTH_INIT)
from leaf_ssl.frontends.factory import make_frontend
from leaf_ssl.frontends.framing import num_frames, same_frame_centres
from leaf_ssl.frontends.leaf import Leaf
from leaf_ssl.frontends.mel import MelFilterbank
from leaf_ssl.frontends.sincnet import MIN_BAND_HZ, MIN_LOW_HZ, SincNet, SincNetPlus

_SQRT_2_LN_2 = math.sqrt(2.0 * math.log(2.0))
GAUSSIAN_FWHM_PER_STD = 2.0 * _SQRT_2_LN_2
RESPONSE_POINTS = 1025
"""Frequencies from 0 to sample_rate / 2 at which filter responses are evaluated (7.8 Hz apart at 16 kHz)."""
HISTOGRAM_BINS = 16
DEFAULT_SHIFT_THRESHOLD = 0.1
PCEN_PARAMETERS = ("alpha", "delta", "root", "smooth")
PCEN_INITS = {"alpha": PCEN_ALPHA_INIT, "delta": PCEN_DELTA_INIT, "root": PCEN_ROOT_INIT,
              "smooth": PCEN_SMOOTH_INIT}


# --- Closed forms: parameters -> Hz and ms --------------------------------------------------------


def frame_centre_seconds(frontend, samples: int, sample_rate: float) -> np.ndarray:
    """Centre of each output frame of `frontend` (a frontend module) for `samples` of input, in s.

    The mel filterbank's frames start at i * stride (TF's pad_end framing); LEAF's and SincNet's are
    'SAME'-aligned windows around i * stride.
    """
    window, stride = frontend.window_and_stride()
    if isinstance(frontend, MelFilterbank):
        centres = np.arange(num_frames(samples, stride)) * stride + (window - 1) / 2
    else:
        centres = same_frame_centres(samples, window, stride)
    return centres / sample_rate


def gabor_centre_hz(mu, sample_rate: float) -> np.ndarray:
    """Centre of a Gabor filter exp(i mu t) g(t): mu radians per sample is mu * sample_rate / (2 pi) Hz."""
    return np.asarray(mu, np.float64) * sample_rate / (2.0 * math.pi)


def gabor_bandwidth_hz(sigma, sample_rate: float) -> np.ndarray:
    """Half-amplitude width of a Gabor filter whose Gaussian envelope has std `sigma` samples.

    The envelope exp(-t^2 / (2 sigma^2)) / (sqrt(2 pi) sigma) transforms to exp(-sigma^2 w^2 / 2), so the
    amplitude is half its peak at |w - mu| = sqrt(2 ln 2) / sigma: a width of 2 sqrt(2 ln 2) / sigma
    radians per sample, i.e. sqrt(2 ln 2) * sample_rate / (pi sigma) Hz (the untruncated filter; the
    `window`-tap filter is close to it while the envelope fits in the window).
    """
    return _SQRT_2_LN_2 * sample_rate / (math.pi * np.asarray(sigma, np.float64))


def sinc_centre_and_bandwidth_hz(low_hz, high_hz) -> tuple[np.ndarray, np.ndarray]:
    """(centre, width) of the ideal band [low, high]: its midpoint and high - low.

    A windowed ideal band-pass has half its passband amplitude at its cut-offs, so high - low is also
    its half-amplitude width.
    """
    low, high = np.asarray(low_hz, np.float64), np.asarray(high_hz, np.float64)
    return (low + high) / 2.0, high - low


def mel_centres_and_bandwidths_hz(n_filters: int, min_freq: float,
                                  max_freq: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres and half-amplitude widths of the triangular mel filters (`filters.mel_weight_matrix`).

    The edges e_0 .. e_{n+1} are equally spaced in HTK mel, d apart; filter j is a triangle in mel with
    apex e_{j+1}. Its amplitude sqrt(W) is at least 1/2 where W >= 1/4, i.e. within 3d/4 of the apex:

        centre_j = f(e_{j+1}),   width_j = f(e_{j+1} + 3d/4) - f(e_{j+1} - 3d/4),   f = `filters.mel_to_hz`
    """
    edges = np.linspace(filters.hz_to_mel(min_freq), filters.hz_to_mel(max_freq), n_filters + 2)
    apexes, spacing = edges[1:-1], edges[1] - edges[0]
    return (filters.mel_to_hz(apexes),
            filters.mel_to_hz(apexes + 0.75 * spacing) - filters.mel_to_hz(apexes - 0.75 * spacing))


def mel_triangle_amplitudes(frequencies_hz, n_filters: int, min_freq: float, max_freq: float) -> np.ndarray:
    """(n_filters, len(frequencies)) amplitude responses sqrt(W(f)) of the mel filters at any frequency.

    W is the triangle of `filters.mel_weight_matrix` evaluated at continuous f instead of FFT bins.
    """
    mels = filters.hz_to_mel(frequencies_hz)[None, :]
    edges = np.linspace(filters.hz_to_mel(min_freq), filters.hz_to_mel(max_freq), n_filters + 2)[:, None]
    lower, apex, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mels - lower) / (apex - lower), (upper - mels) / (upper - apex)))
    return np.sqrt(weights)


def lowpass_std_ms(sigma, window: int, sample_rate: float) -> np.ndarray:
    """Std in ms of LEAF's Gaussian lowpass: sigma is relative to the half-window (window - 1) / 2
    (`filters.gaussian_lowpass_windows`), so std = sigma (window - 1) / 2 samples. Its FWHM is
    `GAUSSIAN_FWHM_PER_STD` times that."""
    return np.asarray(sigma, np.float64) * (window - 1) / 2.0 / sample_rate * 1000.0


def dtft_amplitude(taps, frequencies_hz, sample_rate: float) -> np.ndarray:
    """|sum_k taps[c, k] exp(-2 pi i f k / sample_rate)| for each filter c and frequency f: (n, F)."""
    taps = np.asarray(taps, np.complex128)
    k = np.arange(taps.shape[1])
    phases = np.exp(-2j * np.pi * np.outer(k, np.asarray(frequencies_hz, np.float64)) / sample_rate)
    return np.abs(taps @ phases)


def band_coverage(centre_hz, bandwidth_hz, nyquist_hz: float) -> float:
    """Fraction of [0, nyquist] inside the union of the bands [centre - width/2, centre + width/2]."""
    low = np.clip(np.asarray(centre_hz) - np.asarray(bandwidth_hz) / 2.0, 0.0, nyquist_hz)
    high = np.clip(np.asarray(centre_hz) + np.asarray(bandwidth_hz) / 2.0, 0.0, nyquist_hz)
    covered, reach = 0.0, 0.0
    for start, end in sorted(zip(low, high)):
        start = max(start, reach)
        if end > start:
            covered += end - start
            reach = end
    return covered / nyquist_hz


# --- A frontend's filters --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FrontendFilters:
    """A frontend's filters as the forward pass uses them. Per-channel arrays are in channel order.

    Attributes:
      frontend: leaf | sincnet | sincnet_plus | mel.
      sample_rate: in Hz.
      learnable: whether training updates the filters (False for mel and frozen filterbanks).
      centre_hz, bandwidth_hz: (n,) centre and half-amplitude width of each filter.
      mel_centre_hz, mel_bandwidth_hz: (n,) the same for the frontend's mel initialisation with n filters
        (sorted by centre; for mel, the filterbank itself).
      response_hz: (F,) frequencies from 0 to sample_rate / 2.
      responses: (n, F) amplitude responses, each divided by its peak. For LEAF and SincNet those of the
        filter taps (LEAF's optional pre-emphasis left out); for mel, sqrt of the triangles that weight
        the power spectrum.
      pooling: how frames are pooled, in words.
      lowpass_std_ms: (n,) Gaussian lowpass std (LEAF, SincNet+), else None.
      pcen: {'alpha', 'delta', 'root', 'smooth'} -> (n,) sPCEN parameters (LEAF, SincNet+), else None.
      at_bounds: {parameter: channels} of the learnable parameters whose stored value lies at or past a
        bound of its constraint, so that the forward pass clips it and it gets no gradient (as in the
        reference LEAF); parameters with no such channel are left out.
    """
    frontend: str
    sample_rate: float
    learnable: bool
    centre_hz: np.ndarray
    bandwidth_hz: np.ndarray
    mel_centre_hz: np.ndarray
    mel_bandwidth_hz: np.ndarray
    response_hz: np.ndarray
    responses: np.ndarray
    pooling: str
    lowpass_std_ms: np.ndarray | None = None
    pcen: dict[str, np.ndarray] | None = None
    at_bounds: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @property
    def n_filters(self) -> int:
        return len(self.centre_hz)

    @property
    def order(self) -> np.ndarray:
        """Channel indices sorted by centre frequency."""
        return np.argsort(self.centre_hz, kind="stable")


def frontend_filters(frontend_config, frontend_params) -> FrontendFilters:
    """The filters of a frontend built from `frontend_config` (as `config.frontend`) with the parameter
    tree `frontend_params` (the model's `params['frontend']`; empty for mel).

    Raises:
      ValueError: the frontend's class has no registered analysis (`can_describe` is False).
    """
    fields = dict(frontend_config.to_dict() if hasattr(frontend_config, "to_dict") else frontend_config)
    frontend = make_frontend(fields)
    analyse = _analysis_of(type(frontend))
    if analyse is None:
        raise ValueError(f"frontend {fields['name']!r} has no filter analysis: register one with "
                         "leaf_ssl.frontends.inspect.register_filter_analysis")
    return analyse(frontend, frontend_params, fields["name"])


def can_describe(frontend_config) -> bool:
    """Whether `frontend_filters` can describe the frontend of `frontend_config`."""
    fields = dict(frontend_config.to_dict() if hasattr(frontend_config, "to_dict") else frontend_config)
    return _analysis_of(type(make_frontend(fields))) is not None


def register_filter_analysis(cls: type, analyse: Callable[..., FrontendFilters]) -> None:
    """Lets `frontend_filters` describe frontends of class `cls` (and its subclasses):
    `analyse(module, params, name)` returns their `FrontendFilters`."""
    _ANALYSES[cls] = analyse


def _analysis_of(cls: type) -> Callable[..., FrontendFilters] | None:
    return next((_ANALYSES[klass] for klass in cls.__mro__ if klass in _ANALYSES), None)


def _response_grid(sample_rate: float) -> np.ndarray:
    return np.linspace(0.0, sample_rate / 2.0, RESPONSE_POINTS)


def _peak_normalised(responses: np.ndarray) -> np.ndarray:
    return responses / np.maximum(responses.max(axis=1, keepdims=True), np.finfo(np.float64).tiny)


def _leaf_filters(frontend: Leaf, params, name: str) -> FrontendFilters:
    window, _ = frontend.window_and_stride()
    rate = frontend.sample_rate
    gabor = constraints.constrain_gabor_params(jnp.asarray(params["filterbank"]["gabor"]), window)
    mel_gabor = np.asarray(constraints.constrain_gabor_params(jnp.asarray(initializers.gabor_params_from_mel(
        frontend.n_filters, rate, frontend.min_freq, frontend.max_freq)), window))
    grid = _response_grid(rate)
    taps = np.asarray(filters.gabor_impulse_responses(gabor, window))
    gabor = np.asarray(gabor)
    return FrontendFilters(
        frontend=name, sample_rate=rate, learnable=frontend.learn_filters,
        centre_hz=gabor_centre_hz(gabor[:, 0], rate), bandwidth_hz=gabor_bandwidth_hz(gabor[:, 1], rate),
        mel_centre_hz=gabor_centre_hz(mel_gabor[:, 0], rate),
        mel_bandwidth_hz=gabor_bandwidth_hz(mel_gabor[:, 1], rate),
        response_hz=grid, responses=_peak_normalised(dtft_amplitude(taps, grid, rate)),
        pooling=f"Gaussian lowpass over {window} samples (learned per channel)",
        lowpass_std_ms=_lowpass_std_ms(params, window, rate), pcen=_pcen(params),
        at_bounds=_at_bounds(params, window, gabor=True, gaussian=True))


def _sinc_filters(frontend: SincNet | SincNetPlus, params, name: str) -> FrontendFilters:
    window, _ = frontend.window_and_stride()
    rate = frontend.sample_rate

    def band_edges(raw):
        return constraints.constrain_sinc_bands(jnp.asarray(raw), rate, MIN_LOW_HZ, MIN_BAND_HZ)

    low, high = band_edges(params["filterbank"]["sinc"])
    mel_low, mel_high = band_edges(initializers.sinc_params_from_mel(frontend.n_filters, rate, MIN_LOW_HZ,
                                                                      MIN_BAND_HZ))
    taps = np.asarray(filters.sinc_bandpass_filters(low, high, window, rate)) * filters.hamming_window(window)
    centre, bandwidth = sinc_centre_and_bandwidth_hz(low, high)
    mel_centre, mel_bandwidth = sinc_centre_and_bandwidth_hz(mel_low, mel_high)
    grid = _response_grid(rate)
    gaussian = isinstance(frontend, SincNetPlus)
    return FrontendFilters(
        frontend=name, sample_rate=rate, learnable=frontend.learn_filters, centre_hz=centre,
        bandwidth_hz=bandwidth, mel_centre_hz=mel_centre, mel_bandwidth_hz=mel_bandwidth, response_hz=grid,
        responses=_peak_normalised(dtft_amplitude(taps, grid, rate)),
        pooling=(f"Gaussian lowpass over {window} samples (learned per channel)" if gaussian
                 else f"max-pool over {window} samples (fixed)"),
        lowpass_std_ms=_lowpass_std_ms(params, window, rate) if gaussian else None,
        pcen=_pcen(params) if gaussian else None,
        at_bounds=_at_bounds(params, window, gabor=False, gaussian=gaussian))


def _mel_filters(frontend: MelFilterbank, params, name: str) -> FrontendFilters:
    window, _ = frontend.window_and_stride()
    centre, bandwidth = mel_centres_and_bandwidths_hz(frontend.n_filters, frontend.min_freq, frontend.max_freq)
    grid = _response_grid(frontend.sample_rate)
    return FrontendFilters(
        frontend=name, sample_rate=frontend.sample_rate, learnable=False, centre_hz=centre,
        bandwidth_hz=bandwidth, mel_centre_hz=centre, mel_bandwidth_hz=bandwidth, response_hz=grid,
        responses=mel_triangle_amplitudes(grid, frontend.n_filters, frontend.min_freq, frontend.max_freq),
        pooling=f"{frontend.n_fft}-point STFT, Hann window of {window} samples (fixed)")


def _lowpass_std_ms(params, window: int, sample_rate: float) -> np.ndarray:
    sigma = constraints.constrain_pooling_sigma(jnp.asarray(params["pooling"]["sigma"]), window)
    return lowpass_std_ms(np.asarray(sigma), window, sample_rate)


def _pcen(params) -> dict[str, np.ndarray]:
    raw = constraints.PCENParams(**{key: jnp.asarray(params["compression"][key]) for key in PCEN_PARAMETERS})
    return {key: np.asarray(value, np.float64)
            for key, value in constraints.constrain_pcen_params(raw)._asdict().items()}


def _clipped_channels(raw, constrained) -> list[int]:
    """Channels whose stored value the constraint changes or leaves exactly at its bound."""
    return np.flatnonzero(np.asarray(raw).reshape(-1) != np.asarray(constrained).reshape(-1)).tolist()


def _at_bounds(params, window: int, *, gabor: bool, gaussian: bool) -> dict[str, list[int]]:
    """{'gabor.mu': [channels], 'pcen.smooth': [...], ...}: see `FrontendFilters.at_bounds`."""
    found = {}
    if gabor:
        raw = np.asarray(params["filterbank"]["gabor"])
        constrained = np.asarray(constraints.constrain_gabor_params(jnp.asarray(raw), window))
        found["gabor.mu"] = _clipped_channels(raw[:, 0], constrained[:, 0])
        found["gabor.sigma"] = _clipped_channels(raw[:, 1], constrained[:, 1])
    if gaussian:
        sigma = np.asarray(params["pooling"]["sigma"])
        found["lowpass.sigma"] = _clipped_channels(sigma, constraints.constrain_pooling_sigma(jnp.asarray(sigma), window))
        raw = constraints.PCENParams(**{key: np.asarray(params["compression"][key]) for key in PCEN_PARAMETERS})
        constrained = constraints.constrain_pcen_params(constraints.PCENParams(*map(jnp.asarray, raw)))
        for key in PCEN_PARAMETERS:
            found[f"pcen.{key}"] = _clipped_channels(getattr(raw, key), getattr(constrained, key))
    return {key: channels for key, channels in found.items() if channels}


# --- Summaries -------------------------------------------------------------------------------------


# Frontend class -> its analysis (`register_filter_analysis`); a frontend without one is not described.
_ANALYSES: dict[type, Callable[..., FrontendFilters]] = {
    Leaf: _leaf_filters, SincNet: _sinc_filters, SincNetPlus: _sinc_filters, MelFilterbank: _mel_filters}


def summarise(analysed: FrontendFilters, shift_threshold: float = DEFAULT_SHIFT_THRESHOLD) -> dict:
    """Headline numbers of one frontend against its mel reference (filters paired in centre order).

    shift = |centre - mel centre| / mel centre of the k-th lowest filter of each; `moved_fraction` is
    the fraction with shift > `shift_threshold`. Coverage: `band_coverage` over 0 .. sample_rate / 2.
    """
    order, mel_order = analysed.order, np.argsort(analysed.mel_centre_hz, kind="stable")
    centre, bandwidth = analysed.centre_hz[order], analysed.bandwidth_hz[order]
    mel_centre, mel_bandwidth = analysed.mel_centre_hz[mel_order], analysed.mel_bandwidth_hz[mel_order]
    shift = np.abs(centre - mel_centre) / mel_centre
    nyquist = analysed.sample_rate / 2.0
    summary = {
        "n_filters": analysed.n_filters,
        "learnable": analysed.learnable,
        "centre_range_hz": [float(centre.min()), float(centre.max())],
        "mel_centre_range_hz": [float(mel_centre.min()), float(mel_centre.max())],
        "band_range_hz": [float(max(0.0, np.min(centre - bandwidth / 2))),
                          float(min(nyquist, np.max(centre + bandwidth / 2)))],
        "coverage": band_coverage(centre, bandwidth, nyquist),
        "mel_coverage": band_coverage(mel_centre, mel_bandwidth, nyquist),
        "shift_threshold": shift_threshold,
        "moved_fraction": float(np.mean(shift > shift_threshold)),
        "median_shift": float(np.median(shift)),
        "median_bandwidth_ratio": float(np.median(bandwidth / mel_bandwidth)),
        "lowpass_std_ms": None,
        "pcen_median": None,
        "at_bounds": analysed.at_bounds,
    }
    if analysed.lowpass_std_ms is not None:
        widths = analysed.lowpass_std_ms
        summary["lowpass_std_ms"] = {"median": float(np.median(widths)), "min": float(widths.min()),
                                     "max": float(widths.max())}
    if analysed.pcen is not None:
        summary["pcen_median"] = {key: float(np.median(value)) for key, value in analysed.pcen.items()}
    return summary


def centre_histogram(centre_hz, sample_rate: float, bins: int = HISTOGRAM_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(edges_hz (bins + 1,), counts (bins,)) of centre frequencies over 0 .. sample_rate / 2."""
    counts, edges = np.histogram(centre_hz, bins=bins, range=(0.0, sample_rate / 2.0))
    return edges, counts


def filters_report(analysed: FrontendFilters, shift_threshold: float = DEFAULT_SHIFT_THRESHOLD) -> dict:
    """Everything `analysis.json` holds for one frontend: per-filter numbers sorted by centre, the mel
    reference, the centre histogram and `summarise`'s headline numbers."""
    order = analysed.order
    edges, counts = centre_histogram(analysed.centre_hz, analysed.sample_rate)
    _, mel_counts = centre_histogram(analysed.mel_centre_hz, analysed.sample_rate)
    per_filter = {"channel": order.tolist(), "centre_hz": analysed.centre_hz[order].tolist(),
                  "bandwidth_hz": analysed.bandwidth_hz[order].tolist(),
                  "lowpass_std_ms": None if analysed.lowpass_std_ms is None
                  else analysed.lowpass_std_ms[order].tolist(),
                  "pcen": None if analysed.pcen is None
                  else {key: value[order].tolist() for key, value in analysed.pcen.items()}}
    mel_order = np.argsort(analysed.mel_centre_hz, kind="stable")
    return {
        "frontend": analysed.frontend, "sample_rate": analysed.sample_rate, "pooling": analysed.pooling,
        "filters": per_filter,
        "mel_reference": {"centre_hz": analysed.mel_centre_hz[mel_order].tolist(),
                          "bandwidth_hz": analysed.mel_bandwidth_hz[mel_order].tolist()},
        "histogram": {"edges_hz": edges.tolist(), "counts": counts.tolist(), "mel_counts": mel_counts.tolist()},
        "summary": summarise(analysed, shift_threshold),
    }


def format_summary(label: str, analysed: FrontendFilters, summary: dict) -> str:
    """A few lines of plain text for one checkpoint."""
    kind = "learnable" if summary["learnable"] else "fixed"
    low, high = summary["centre_range_hz"]
    mel_low, mel_high = summary["mel_centre_range_hz"]
    lines = [
        f"{label}",
        f"  {summary['n_filters']} {kind} {analysed.frontend} filters; centres {low:.0f}-{high:.0f} Hz "
        f"(mel: {mel_low:.0f}-{mel_high:.0f} Hz); bands cover {summary['coverage']:.0%} of "
        f"0-{analysed.sample_rate / 2:.0f} Hz (mel: {summary['mel_coverage']:.0%})",
        f"  centres moved > {summary['shift_threshold']:.0%} from mel: "
        f"{round(summary['moved_fraction'] * summary['n_filters'])}/{summary['n_filters']} "
        f"(median shift {summary['median_shift']:.1%}); bandwidth / mel: median "
        f"{summary['median_bandwidth_ratio']:.2f}",
    ]
    details = [f"pooling: {analysed.pooling}"]
    if summary["lowpass_std_ms"] is not None:
        widths = summary["lowpass_std_ms"]
        details.append(f"lowpass std {widths['median']:.2f} ms median ({widths['min']:.2f}-{widths['max']:.2f})")
    if summary["pcen_median"] is not None:
        details.append("sPCEN medians " + ", ".join(f"{key} {value:.3g}"
                                                    for key, value in summary["pcen_median"].items()))
    lines.append("  " + "; ".join(details))
    if summary["at_bounds"]:
        lines.append("  at a bound of its constraint (clipped, no gradient): " + "; ".join(
            f"{key} {len(channels)} channel(s) {channels}" for key, channels in summary["at_bounds"].items()))
    return "\n".join(lines)
