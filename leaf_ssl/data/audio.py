"""Decoding audio into the project's one waveform format: float32, mono, 16 kHz, in [-1, 1].

Every reader in the project (shard builders, probe folders, the embed tool) goes through
`decode_audio` (files) or `prepare_waveform` (arrays already in memory), so broken input is
handled the same way everywhere:

==========================  ==========================================================
input                       behaviour
==========================  ==========================================================
stereo / multichannel       fixed: channels averaged
any other sample rate       fixed: polyphase resampling by the exact ratio 16000/rate
float samples beyond +-1    fixed: clipped to [-1, 1] (what int16 storage would do)
integer samples             fixed: scaled by the dtype's full range
truncated file              a truncated PCM wav: the frames still there are used; a header
                            or a compressed stream (flac, ogg) that cannot be decoded
                            raises `BadAudioError(reason='unreadable: ...')`
m4a, opus, webm, mp3, ...   (`FFMPEG_EXTENSIONS`) what libsndfile cannot read of these is
                            decoded by ffmpeg when it is installed (`launch/setup.sh`
                            installs it); without it, `BadAudioError(reason='unreadable:
                            ...')` names the package
missing / not audio         `BadAudioError(reason='unreadable: ...')`
zero samples                `BadAudioError(reason='empty')`
NaN or Inf samples          `BadAudioError(reason='non-finite samples')`: such a file is
                            garbage, and silently zeroing the samples would hide it
==========================  ==========================================================

Callers that process many files catch `BadAudioError`, count it and move on.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
from typing import BinaryIO, Union

import numpy as np
import scipy.signal
import soundfile

from leaf_ssl.data.records import SAMPLE_RATE

AudioSource = Union[str, os.PathLike, BinaryIO]

FFMPEG_EXTENSIONS = frozenset({".m4a", ".mp4", ".aac", ".opus", ".webm", ".mp3", ".oga", ".wma", ".mka"})
"""Containers and codecs of audio downloaders that libsndfile may not read; ffmpeg does."""
AUDIO_EXTENSIONS = frozenset({f".{fmt.lower()}" for fmt in soundfile.available_formats()} | FFMPEG_EXTENSIONS)
"""The file extensions every folder reader of the project treats as audio."""
SOUNDFILE_ERRORS = (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError, EOFError)


class BadAudioError(ValueError):
    """Audio that cannot be turned into a usable waveform.

    Attributes:
      source: the file (or a description of the array) that failed.
      reason: a short machine-friendly reason, e.g. 'empty', 'non-finite samples'.
    """

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def decode_audio(source: AudioSource) -> np.ndarray:
    """Reads an audio file (anything libsndfile reads: wav, flac, ogg, ...) as 16 kHz mono float32.

    Raises:
      BadAudioError: the file is unreadable, empty or holds NaN/Inf samples.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else repr(source)
    try:
        samples, sample_rate = soundfile.read(source, dtype="float32", always_2d=True)
    except SOUNDFILE_ERRORS as error:
        if not needs_ffmpeg(name):
            raise BadAudioError(name, f"unreadable: {error}") from error
        return prepare_waveform(decode_with_ffmpeg(name, soundfile_error=error), SAMPLE_RATE, source=name)
    return prepare_waveform(samples, sample_rate, source=name)


def needs_ffmpeg(name: str) -> bool:
    """Whether a file libsndfile failed on is one for ffmpeg (m4a, opus, webm...): formats that
    libsndfile reads itself (wav, flac, ogg) are not retried, so a broken one stays broken."""
    return os.path.splitext(name)[1].lower() in FFMPEG_EXTENSIONS


def decode_with_ffmpeg(path: str, soundfile_error: Exception) -> np.ndarray:
    """The file as 16 kHz mono float32 samples decoded by ffmpeg: the fallback for what libsndfile
    cannot read (`soundfile_error`, quoted when ffmpeg cannot either).

    Raises:
      BadAudioError: ffmpeg is not installed, or it cannot decode the file either.
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise BadAudioError(path, f"unreadable: libsndfile cannot read it ({soundfile_error}) and ffmpeg, which "
                                  f"decodes m4a/opus/webm/mp3, is not installed (apt-get install ffmpeg)")
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", path, "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE),
               "-f", "f32le", "-"]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise BadAudioError(path, f"unreadable: libsndfile: {soundfile_error}; ffmpeg: "
                                  f"{reason[-1] if reason else 'exit ' + str(result.returncode)}")
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def prepare_waveform(samples: np.ndarray, sample_rate: int, *, source: str = "<array>") -> np.ndarray:
    """Turns an in-memory waveform into 16 kHz mono float32 in [-1, 1].

    Args:
      samples: shape (frames,) or (frames, channels); float, or integer PCM scaled by its dtype.
      sample_rate: the rate of `samples` in Hz.
      source: a name for error messages.

    Raises:
      BadAudioError: `samples` is empty or holds NaN/Inf.
    """
    samples = np.asarray(samples)
    if samples.ndim not in (1, 2):
        raise BadAudioError(source, f"expected (frames,) or (frames, channels), got shape {samples.shape}")
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / np.float32(-np.iinfo(samples.dtype).min)
    samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        raise BadAudioError(source, "empty")
    if not np.all(np.isfinite(samples)):
        raise BadAudioError(source, "non-finite samples")
    mono = samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples
    return np.clip(resample(mono, int(sample_rate)), -1.0, 1.0)


def resample(waveform: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resamples a mono float waveform by the exact rational ratio target_rate / sample_rate."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    if sample_rate == target_rate:
        return waveform.astype(np.float32, copy=False)
    divisor = math.gcd(target_rate, sample_rate)
    resampled = scipy.signal.resample_poly(waveform, target_rate // divisor, sample_rate // divisor)
    return resampled.astype(np.float32)
