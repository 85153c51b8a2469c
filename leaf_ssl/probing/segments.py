"""Cutting clips into the fixed-length segments a probe embeds (the model's training crop length).

Rule, for a clip of `n` samples and segments of `length` samples:

* n <= length: one segment, the clip zero-padded at the end;
* otherwise: segments start at 0, length, 2*length, ... while they fit, and a trailing remainder
  gets one more segment aligned to the END of the clip (so it overlaps the previous one). Every
  sample is covered, no segment but a short clip's is padded, and the padding never dilutes a
  long clip's last segment with silence.

E.g. 2.5 s -> [0, 1), [1, 2), [1.5, 2.5); 2 s -> [0, 1), [1, 2); 0.4 s -> [0, 0.4) + 0.6 s zeros.
"""
import numpy as np


def segment_starts(num_samples: int, length: int) -> list[int]:
    """Start sample of each segment of a clip of `num_samples` (see the module docstring)."""
    if num_samples <= length:
        return [0]
    starts = list(range(0, num_samples - length + 1, length))
    if starts[-1] + length < num_samples:
        starts.append(num_samples - length)
    return starts


def cut_segments(waveform: np.ndarray, length: int) -> np.ndarray:
    """(segments, length) float32 array of a 1-D waveform."""
    waveform = np.asarray(waveform, np.float32)
    if waveform.size <= length:
        return np.pad(waveform, (0, length - waveform.size))[None]
    return np.stack([waveform[start:start + length] for start in segment_starts(waveform.size, length)])
