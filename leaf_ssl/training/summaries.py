"""What a run shows in TensorBoard: the event files in `<workdir>/tensorboard`, written by process 0.

* hparams: the resolved config, flattened (`train.batch_size`, `frontend.name`, ...), through
  TensorBoard's hparams plugin, each time the run starts or resumes;
* at every log line: loss, accuracy, learning_rate, grad_norm, skipped (non-finite steps not
  applied), steps_per_second, crops_per_second;
* at the run's first step, every `FILTER_EVERY_LOG_LINES` log lines and at its end: the frontend's
  filters as `python -m leaf_ssl.analyze` draws them (centre frequencies and bandwidths against the
  mel reference, frequency responses, ...), their headline numbers against mel
  (`filters/moved_fraction`, `filters/median_shift`, `filters/median_bandwidth_ratio`,
  `filters/coverage`), and the frontend's output for one fixed clip as an image: a logarithmic
  chirp from `CHIRP_HZ[0]` to `CHIRP_HZ[1]` over one training crop, so the image shows where each
  channel listens (the filters and their numbers only for a frontend `inspect.can_describe`);
* `probe/<task>/<metric>` at the checkpoint's step, written by the linear probe of a run.

TensorFlow's summary writer reaches local folders and gs:// alike; this is the only module of
`training/` that draws (matplotlib, on the host, once per figure interval).
"""
from __future__ import annotations

import io
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from leaf_ssl.frontends import inspect
from leaf_ssl.frontends.figures import draw_figures

SCALARS = ("loss", "accuracy", "learning_rate", "grad_norm", "skipped", "steps_per_second", "crops_per_second")
FILTER_SCALARS = ("moved_fraction", "median_shift", "median_bandwidth_ratio", "coverage")
FILTER_EVERY_LOG_LINES = 20
CHIRP_HZ = (60.0, 7600.0)
FOLDER = "tensorboard"


def flat_hparams(config: dict, prefix: str = "") -> dict[str, bool | int | float | str]:
    """{'train.batch_size': 256, ...}: the nested config as hparams values (None and lists as text)."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_hparams(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def chirp(samples: int, sample_rate: float) -> np.ndarray:
    """A unit-amplitude sine whose frequency rises exponentially from CHIRP_HZ[0] to CHIRP_HZ[1]."""
    low, high = CHIRP_HZ
    duration = samples / sample_rate
    rate = np.log(high / low) / duration
    t = np.arange(samples) / sample_rate
    return np.sin(2 * np.pi * low * np.expm1(rate * t) / rate).astype(np.float32)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _as_image(frames: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (1, channels, frames, 1) in [0, 1], the lowest channel at the bottom.

    Each channel is scaled from its own minimum to its own maximum: the image shows when each channel
    answers the chirp, whatever its level. One scale for all left every pixel black but those of a few
    channels ten times louder than the rest (sPCEN channels pinned at a bound); levels are in the
    `filters/pcen` figure."""
    frames = np.asarray(frames, np.float32)
    low, high = frames.min(axis=0), frames.max(axis=0)
    scaled = (frames - low) / np.where(high > low, high - low, 1.0)
    return scaled.T[::-1][None, :, :, None]


class TrainingSummaries:
    """The run's TensorBoard writer (see the module docstring); a no-op object where `enabled` is False."""

    def __init__(self, workdir, config: ml_collections.ConfigDict, model, *, enabled: bool, crop_samples: int):
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        import tensorflow as tf  # TensorBoard's event files (TensorFlow's filesystems: local, gs://)
        from tensorboard.plugins.hparams import api as hparams_api
        self.config = config
        self._describable = inspect.can_describe(config.frontend)
        self.writer = tf.summary.create_file_writer(str(workdir / FOLDER))
        with self.writer.as_default():
            hparams_api.hparams(flat_hparams(config.to_dict()))
        sample_rate = config.data.sample_rate
        clip = jnp.asarray(chirp(crop_samples, sample_rate))[None]
        self._frontend_output = jax.jit(lambda variables: model.apply(
            variables, clip, method=lambda module, waveform: module.frontend(waveform))[0])

    def scalars(self, step: int, record: dict, keys: tuple[str, ...] = SCALARS) -> None:
        if self.writer is None:
            return
        import tensorflow as tf
        with self.writer.as_default(step=step):
            for key in keys:
                if key in record:
                    tf.summary.scalar(key, record[key])

    def frontend(self, step: int, params: Any, batch_stats: Any) -> None:
        """The frontend's filters (figures and numbers against mel) and its output for the chirp."""
        if self.writer is None:
            return
        import tensorflow as tf
        # This process's copy of the replicated state: a program over all processes' devices
        # would wait for the others, which do not draw.
        params, batch_stats = jax.tree.map(lambda x: x.addressable_data(0), (params, batch_stats))
        output = jax.device_get(self._frontend_output({"params": params, "batch_stats": batch_stats}))
        with self.writer.as_default(step=step):
            tf.summary.image("frontend/chirp", _as_image(output))
            if self._describable:  # a frontend without a filter analysis gets its chirp image only
                self._filters(tf, step, inspect.frontend_filters(self.config.frontend,
                                                                 jax.device_get(params).get("frontend", {})))
        self.writer.flush()

    @staticmethod
    def _filters(tf, step: int, analysed) -> None:
        summary = inspect.summarise(analysed)
        for key in FILTER_SCALARS:
            tf.summary.scalar(f"filters/{key}", summary[key])
        # Parameters the forward pass clips get no gradient: counted, and named while there are any.
        tf.summary.scalar("filters/channels_at_a_bound", sum(map(len, analysed.at_bounds.values())))
        if analysed.at_bounds:
            tf.summary.text("filters/at_a_bound", "; ".join(
                f"{key}: {len(channels)} channel(s) {channels}" for key, channels in analysed.at_bounds.items()))
        for name, figure in draw_figures([(f"step {step}", analysed)]).items():
            tf.summary.image(f"filters/{name}", tf.image.decode_png(_png(figure))[None])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_probe_scalars(run_dir: str, step: int, tag: str, metrics: dict[str, float]) -> None:
    """`probe/<tag>/<metric>` at `step` in the run's TensorBoard folder, beside its training curves."""
    import tensorflow as tf
    writer = tf.summary.create_file_writer(f"{str(run_dir).rstrip('/')}/{FOLDER}")
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(f"probe/{tag}/{name}", value)
    writer.close()
