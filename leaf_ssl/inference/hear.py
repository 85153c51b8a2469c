"""The HEAR 2021 module API (Holistic Evaluation of Audio Representations) over a leaf_ssl model.

    from leaf_ssl import hear
    model = hear.load_model("runs/demo_leaf")          # or a step folder, or "random:configs/demo.py"
    scene = hear.get_scene_embeddings(audio, model)     # (n_sounds, model.scene_embedding_size)
    frames, ms = hear.get_timestamp_embeddings(audio, model)

`audio` is float32 (n_sounds, n_samples) at `model.sample_rate` = 16000 Hz: a numpy or JAX array,
anything `np.asarray` takes, or a torch tensor, in which case torch tensors come back (torch is never
imported by this module). Embeddings are float32 and are those of `leaf_ssl.inference.embedder`:

* scene embedding: the mean of the embeddings of the sound's segments, each as long as the model's
  training crops (0.96 s by default), as the linear probe cuts them;
* timestamp embeddings: one such window centred on each timestamp 0, 50, 100, ... ms up to the sound's
  duration (hop `TIMESTAMP_HOP_MS`, HEAR asks for 50 ms or less; the sound is zero-padded by half a
  window at both ends), so n_timestamps = n_samples // 800 + 1; timestamps are the window centres in milliseconds.

Every window's embedding is the frozen encoder's pooled output (inference-mode BatchNorm), so a
sound's embedding does not depend on the other sounds in the batch.
"""
from __future__ import annotations

import sys

import numpy as np

from leaf_ssl.data.audio import SAMPLE_RATE, prepare_waveform
from leaf_ssl.inference.embedder import Embedder, load
from leaf_ssl.inference.windows import DEFAULT_BATCH_SIZE, FRAME_HOP_SECONDS, hop_samples

TIMESTAMP_HOP_MS = FRAME_HOP_SECONDS * 1000.0


class HearModel:
    """What `load_model` returns: the HEAR attributes over a `leaf_ssl.inference.embedder.Embedder`.

    Attributes:
      embedder: the frozen model.
      sample_rate: 16000, the rate the audio must have.
      scene_embedding_size, timestamp_embedding_size: the encoder's pooled width (both the same).
    """
    sample_rate = SAMPLE_RATE

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.scene_embedding_size = embedder.embedding_dim
        self.timestamp_embedding_size = embedder.embedding_dim


def load_model(model_file_path: str = "", *, batch_size: int = DEFAULT_BATCH_SIZE) -> HearModel:
    """A leaf_ssl run (workdir, `checkpoints/` or step folder) or `random:<config file>[:args]`.

    Raises:
      ValueError: no path given (leaf_ssl ships no pretrained weights).
      leaf_ssl.training.checkpointing.CheckpointError: nothing usable at the path.
    """
    if not model_file_path:
        raise ValueError("leaf_ssl.hear.load_model needs model_file_path: a leaf_ssl run workdir, checkpoint "
                         "step folder or random:<config>; leaf_ssl ships no pretrained weights")
    return HearModel(load(model_file_path, batch_size=batch_size))


def get_scene_embeddings(audio, model: HearModel):
    """(n_sounds, model.scene_embedding_size) float32 clip embeddings of (n_sounds, n_samples) audio."""
    array, as_torch = _audio_array(audio)
    return _like_input(model.embedder.clip_embeddings(_checked_sounds(array)), as_torch)


def get_timestamp_embeddings(audio, model: HearModel, hop_ms: float = TIMESTAMP_HOP_MS):
    """Frame embeddings of (n_sounds, n_samples) audio, every `hop_ms` from 0 (see the module docstring).

    Returns:
      embeddings (n_sounds, n_timestamps, model.timestamp_embedding_size) float32, and
      timestamps (n_sounds, n_timestamps) float32 in milliseconds, the window centres.
    """
    array, as_torch = _audio_array(audio)
    hop_seconds = hop_ms / 1000.0
    count = array.shape[1] // hop_samples(hop_seconds) + 1
    embeddings = np.zeros((len(array), count, model.timestamp_embedding_size), np.float32)
    timestamps = np.zeros((len(array), count), np.float32)
    for index, (frames, seconds) in enumerate(model.embedder.frame_embeddings(_checked_sounds(array), hop_seconds)):
        embeddings[index], timestamps[index] = frames, seconds * 1000.0
    return _like_input(embeddings, as_torch), _like_input(timestamps, as_torch)


def _audio_array(audio) -> tuple[np.ndarray, bool]:
    """(n_sounds, n_samples) float32 numpy audio, and whether it came as a torch tensor."""
    torch = sys.modules.get("torch")  # a torch tensor can only exist if torch was imported
    as_torch = torch is not None and isinstance(audio, torch.Tensor)
    array = np.asarray(audio.detach().cpu().numpy() if as_torch else audio, np.float32)
    if array.ndim != 2:
        raise ValueError(f"HEAR audio must be (n_sounds, n_samples); got shape {array.shape}")
    return array, as_torch


def _checked_sounds(array: np.ndarray) -> list[np.ndarray]:
    """Each sound through `prepare_waveform`: an empty or non-finite sound is a BadAudioError naming it."""
    return [prepare_waveform(row, SAMPLE_RATE, source=f"sound {index}") for index, row in enumerate(array)]


def _like_input(array: np.ndarray, as_torch: bool):
    return sys.modules["torch"].from_numpy(array) if as_torch else array
