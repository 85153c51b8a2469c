"""Frame geometry shared by every frontend, and the check of the waveform they accept.

All frontends turn `samples` audio samples into `ceil(samples / stride)` frames. Two alignments exist:

* TF/XLA 'SAME' (LEAF, SincNet, SincNet+): the signal is padded with `pad_total` zeros, of which
  `pad_before = pad_total // 2` go in front, where

      frames    = ceil(samples / stride)
      pad_total = max((frames - 1) * stride + window - samples, 0)

  so frame i covers padded samples [i*stride, i*stride + window), i.e. original samples
  [i*stride - pad_before, i*stride - pad_before + window), centred on sample
  `i*stride - pad_before + (window - 1) / 2`. For window 401, stride 160 that centre is 160*i + 80 when
  samples is a multiple of 160 (e.g. 15,360), and 160*i when samples = 160*m + 1. This is exactly what
  the reference LEAF (TensorFlow `padding='SAME'`) computes, and parity with it depends on it.
* STFT with `pad_end` (the mel baseline, as TF `tf.signal.stft(..., pad_end=True)`): frame i covers
  samples [i*stride, i*stride + window), zeros past the end.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


def window_and_stride_samples(sample_rate: float, window_len_ms: float,
                              window_stride_ms: float) -> tuple[int, int]:
    """Window and hop in samples, with the reference LEAF's rounding.

    window = int(sample_rate * window_len_ms // 1000 + 1)   (25 ms at 16 kHz -> 401, an odd length)
    stride = int(sample_rate * window_stride_ms // 1000)    (10 ms at 16 kHz -> 160)
    """
    window = int(sample_rate * window_len_ms // 1000 + 1)
    stride = int(sample_rate * window_stride_ms // 1000)
    if stride < 1:
        raise ValueError(f"window_stride_ms={window_stride_ms} gives a stride below one sample "
                         f"at sample_rate={sample_rate}")
    return window, stride


def num_frames(samples: int, stride: int) -> int:
    """ceil(samples / stride): the frame count of every frontend."""
    return -(-samples // stride)


def same_padding(samples: int, window: int, stride: int) -> tuple[int, int]:
    """(pad_before, pad_after) of TF/XLA 'SAME' padding for a 1-D window."""
    frames = num_frames(samples, stride)
    pad_total = max((frames - 1) * stride + window - samples, 0)
    return pad_total // 2, pad_total - pad_total // 2


def same_frame_centres(samples: int, window: int, stride: int) -> np.ndarray:
    """Sample index (possibly half-integer) at the centre of each 'SAME' frame."""
    pad_before, _ = same_padding(samples, window, stride)
    frames = num_frames(samples, stride)
    return np.arange(frames) * stride - pad_before + (window - 1) / 2


def blocks_per_window(window: int, stride: int) -> int:
    """How many consecutive stride-long blocks one window touches when it starts on a block edge."""
    return math.ceil(window / stride)


def split_into_blocks(padded: jnp.ndarray, stride: int, axis: int = 1) -> jnp.ndarray:
    """Reshape a time axis of length n_blocks*stride into (n_blocks, stride)."""
    shape = padded.shape
    n_blocks = shape[axis] // stride
    return padded.reshape(shape[:axis] + (n_blocks, stride) + shape[axis + 1:])


def as_waveform_batch(waveform, frontend: str) -> jnp.ndarray:
    """Validates a (batch, samples) floating waveform and returns it as float32.

    Raises:
      TypeError: the waveform is not a floating-point array.
      ValueError: the waveform is not 2-D or has no samples.
    """
    dtype = getattr(waveform, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{frontend} expects a floating-point waveform of shape (batch, samples); "
                        f"got dtype {dtype}. Convert int16 PCM with x.astype(np.float32) / 32768.")
    if waveform.ndim != 2:
        raise ValueError(f"{frontend} expects a waveform of shape (batch, samples); got shape "
                         f"{tuple(waveform.shape)} (rank {waveform.ndim}). Squeeze a trailing "
                         f"channel axis or add a batch axis.")
    if waveform.shape[1] < 1:
        raise ValueError(f"{frontend} got a waveform with no samples: shape {tuple(waveform.shape)}")
    return jnp.asarray(waveform, jnp.float32)
