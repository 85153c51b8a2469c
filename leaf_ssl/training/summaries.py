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

The events are written by TensorBoard's own writer, which needs no TensorFlow (it reaches gs:// through
TensorFlow's filesystems where TensorFlow is installed); this is the only module of `training/` that
draws (matplotlib, on the host, once per figure interval).
"""
from __future__ import annotations

import io
import struct
import time
import zlib
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
    """(frames, channels) -> (channels, frames) in [0, 1], the lowest channel at the bottom.

    Each channel is scaled from its own minimum to its own maximum: the image shows when each channel
    answers the chirp, whatever its level. One scale for all left every pixel black but those of a few
    channels ten times louder than the rest (sPCEN channels pinned at a bound); levels are in the
    `filters/pcen` figure."""
    frames = np.asarray(frames, np.float32)
    low, high = frames.min(axis=0), frames.max(axis=0)
    scaled = (frames - low) / np.where(high > low, high - low, 1.0)
    return scaled.T[::-1]


def gray_png(image: np.ndarray) -> bytes:
    """A (height, width) image in [0, 1] as an 8-bit grayscale PNG (what TensorBoard's image plugin shows)."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    return struct.unpack(">II", png[16:24])


class EventWriter:
    """A run's TensorBoard event file, written by TensorBoard's writer (no TensorFlow needed)."""

    def __init__(self, folder: str):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        self._writer = EventFileWriter(folder)

    def _add(self, step: int, summary) -> None:
        from tensorboard.compat.proto import event_pb2
        self._writer.add_event(event_pb2.Event(step=int(step), wall_time=time.time(), summary=summary))

    def scalar(self, step: int, tag: str, value: float) -> None:
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb
        self._add(step, scalar_pb(tag, float(value)))

    def text(self, step: int, tag: str, text: str) -> None:
        from tensorboard.plugins.text.summary_v2 import text_pb
        self._add(step, text_pb(tag, text))

    def image(self, step: int, tag: str, png: bytes) -> None:
        from tensorboard.compat.proto import summary_pb2
        from tensorboard.plugins.image import metadata
        from tensorboard.util import tensor_util
        width, height = png_size(png)
        tensor = tensor_util.make_tensor_proto([str(width).encode(), str(height).encode(), png])
        summary = summary_pb2.Summary()
        summary.value.add(tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(
            display_name=tag, description=""))
        self._add(step, summary)

    def hparams(self, values: dict) -> None:
        from tensorboard.plugins.hparams.summary_v2 import hparams_pb
        self._add(0, hparams_pb(values))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class TrainingSummaries:
    """The run's TensorBoard writer (see the module docstring); a no-op object where `enabled` is False."""

    def __init__(self, workdir, config: ml_collections.ConfigDict, model, *, enabled: bool, crop_samples: int):
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.config = config
        self._describable = inspect.can_describe(config.frontend)
        self.writer = EventWriter(f"{str(workdir).rstrip('/')}/{FOLDER}")
        self.writer.hparams(flat_hparams(config.to_dict()))
        sample_rate = config.data.sample_rate
        clip = jnp.asarray(chirp(crop_samples, sample_rate))[None]
        self._frontend_output = jax.jit(lambda variables: model.apply(
            variables, clip, method=lambda module, waveform: module.frontend(waveform))[0])

    def scalars(self, step: int, record: dict, keys: tuple[str, ...] = SCALARS) -> None:
        if self.writer is None:
            return
        for key in keys:
            if key in record:
                self.writer.scalar(step, key, record[key])

    def frontend(self, step: int, params: Any, batch_stats: Any) -> None:
        """The frontend's filters (figures and numbers against mel) and its output for the chirp."""
        if self.writer is None:
            return
        # This process's copy of the replicated state: a program over all processes' devices
        # would wait for the others, which do not draw.
        params, batch_stats = jax.tree.map(lambda x: x.addressable_data(0), (params, batch_stats))
        output = jax.device_get(self._frontend_output({"params": params, "batch_stats": batch_stats}))
        self.writer.image(step, "frontend/chirp", gray_png(_as_image(output)))
        if self._describable:  # a frontend without a filter analysis gets its chirp image only
            self._filters(step, inspect.frontend_filters(self.config.frontend,
                                                         jax.device_get(params).get("frontend", {})))
        self.writer.flush()

    def _filters(self, step: int, analysed) -> None:
        summary = inspect.summarise(analysed)
        for key in FILTER_SCALARS:
            self.writer.scalar(step, f"filters/{key}", summary[key])
        # Parameters the forward pass clips get no gradient: counted, and named while there are any.
        self.writer.scalar(step, "filters/channels_at_a_bound", sum(map(len, analysed.at_bounds.values())))
        if analysed.at_bounds:
            self.writer.text(step, "filters/at_a_bound", "; ".join(
                f"{key}: {len(channels)} channel(s) {channels}" for key, channels in analysed.at_bounds.items()))
        for name, figure in draw_figures([(f"step {step}", analysed)]).items():
            self.writer.image(step, f"filters/{name}", _png(figure))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def write_probe_scalars(run_dir: str, step: int, tag: str, metrics: dict[str, float]) -> None:
    """`probe/<tag>/<metric>` at `step` in the run's TensorBoard folder, beside its training curves."""
    writer = EventWriter(f"{str(run_dir).rstrip('/')}/{FOLDER}")
    for name, value in metrics.items():
        writer.scalar(step, f"probe/{tag}/{name}", value)
    writer.close()
