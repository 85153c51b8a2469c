"""The HEAR 2021 module API (Holistic Evaluation of Audio Representations) over a leaf_ssl model.

    from leaf_ssl import hear
    model = hear.load_model("runs/demo_leaf")          # or a step folder, or "random:configs/demo.py"
    scene = hear.get_scene_embeddings(audio, model)     # (n_sounds, model.scene_embedding_size)
    frames, ms = hear.get_timestamp_embeddings(audio, model)

The HEAR tools run it as `hear-validator leaf_ssl.hear --model PATH` and
`python -m heareval.embeddings.runner leaf_ssl.hear --model PATH`. Both accept only a torch or a
TensorFlow module, so `load_model` returns a `torch.nn.Module` when torch is installed (the `hear`
extra) and a `tf.Module` otherwise; either holds the JAX model, which computes every embedding.
heareval's `--model` must be an existing path: a config file (`--model configs/demo.py`, with
`--model-options '{"config_args": "leaf,random"}'`) loads that config untrained, as
`random:configs/demo.py:leaf,random` does.

`audio` is float32 (n_sounds, n_samples) at `model.sample_rate` = 16000 Hz: a torch or TensorFlow
tensor, a numpy or JAX array, or anything `np.asarray` takes; embeddings come back as the same
kind of tensor (numpy for arrays). Host tensors are shared with numpy without copies both ways;
a tensor on an accelerator goes through host memory once. Embeddings are float32 and are those of
`leaf_ssl.inference.embedder`:
* scene embedding: the mean of the embeddings of the sound's segments, each as long as the model's
  training crops (0.96 s by default), as the linear probe cuts them;
* timestamp embeddings: one such window centred on each timestamp 0, 50, 100, ... ms up to the sound's
  duration (hop `TIMESTAMP_HOP_MS`, HEAR asks for 50 ms or less; the sound is zero-padded by half a
  window at both ends), so n_timestamps = n_samples // 800 + 1; timestamps are the window centres in milliseconds.

Every window's embedding is the frozen encoder's pooled output (inference-mode BatchNorm), so a
sound's embedding does not depend on the other sounds in the batch.
"""
from __future__ import annotations

import functools
import sys

import numpy as np

from leaf_ssl.data.audio import SAMPLE_RATE, prepare_waveform
from leaf_ssl.inference.embedder import Embedder, load
from leaf_ssl.inference.frozen_model import RANDOM_PREFIX
from leaf_ssl.inference.windows import DEFAULT_BATCH_SIZE, FRAME_HOP_SECONDS, hop_samples

TIMESTAMP_HOP_MS = FRAME_HOP_SECONDS * 1000.0


class HearModel:
    """The HEAR attributes of every model `load_model` returns (a torch or tf module besides).

    Attributes:
      embedder: the frozen model.
      sample_rate: 16000, the rate the audio must have.
      scene_embedding_size, timestamp_embedding_size: the encoder's pooled width (both the same).
    """
    sample_rate = SAMPLE_RATE

    def __init__(self, embedder: Embedder):
        super().__init__()  # the torch or tf module's own set-up, before any attribute is set
        self.embedder = embedder
        self.scene_embedding_size = embedder.embedding_dim
        self.timestamp_embedding_size = embedder.embedding_dim

    def __repr__(self) -> str:
        return f"leaf_ssl.hear model of {self.embedder.source} (step {self.embedder.step})"


@functools.cache
def module_class() -> type[HearModel]:
    """HearModel on `torch.nn.Module` if torch imports, else on `tf.Module`: what HEAR clients accept."""
    try:
        import torch
        base = torch.nn.Module
    except ImportError:
        import tensorflow as tf
        base = tf.Module
    return type("HearModel", (HearModel, base), {"__module__": __name__})


def load_model(model_file_path: str = "", *, config_args: str = "",
               batch_size: int = DEFAULT_BATCH_SIZE) -> HearModel:
    """A leaf_ssl run (workdir, `checkpoints/` or step folder), `random:<config file>[:args]`, or a
    config file `*.py` (the same as `random:<file>:<config_args>`).

    Raises:
      ValueError: no path given (leaf_ssl ships no pretrained weights), or `config_args` with a run.
      leaf_ssl.training.checkpointing.CheckpointError: nothing usable at the path.
    """
    if not model_file_path:
        raise ValueError("leaf_ssl.hear.load_model needs model_file_path: a leaf_ssl run workdir, checkpoint "
                         "step folder, config file or random:<config>; leaf_ssl ships no pretrained weights")
    if model_file_path.endswith(".py") and not model_file_path.startswith(RANDOM_PREFIX):
        model_file_path = f"{RANDOM_PREFIX}{model_file_path}" + (f":{config_args}" if config_args else "")
    elif config_args:
        raise ValueError(f"config_args={config_args!r} applies to a config file, not to {model_file_path}")
    return module_class()(load(model_file_path, batch_size=batch_size))


def get_scene_embeddings(audio, model: HearModel):
    """(n_sounds, model.scene_embedding_size) float32 clip embeddings of (n_sounds, n_samples) audio."""
    array, kind = _audio_array(audio)
    return _like_input(model.embedder.clip_embeddings(_checked_sounds(array)), kind)


def get_timestamp_embeddings(audio, model: HearModel, hop_ms: float = TIMESTAMP_HOP_MS):
    """Frame embeddings of (n_sounds, n_samples) audio, every `hop_ms` from 0 (see the module docstring).

    Returns:
      embeddings (n_sounds, n_timestamps, model.timestamp_embedding_size) float32, and
      timestamps (n_sounds, n_timestamps) float32 in milliseconds, the window centres.
    """
    array, kind = _audio_array(audio)
    hop_seconds = hop_ms / 1000.0
    count = array.shape[1] // hop_samples(hop_seconds) + 1
    embeddings = np.zeros((len(array), count, model.timestamp_embedding_size), np.float32)
    timestamps = np.zeros((len(array), count), np.float32)
    for index, (frames, seconds) in enumerate(model.embedder.frame_embeddings(_checked_sounds(array), hop_seconds)):
        embeddings[index], timestamps[index] = frames, seconds * 1000.0
    return _like_input(embeddings, kind), _like_input(timestamps, kind)


def _audio_array(audio) -> tuple[np.ndarray, str]:
    """(n_sounds, n_samples) float32 numpy audio, and the kind of tensor it came as: torch, tf or numpy."""
    # A tensor of a framework can only exist if the framework was imported: no import here.
    torch, tf = sys.modules.get("torch"), sys.modules.get("tensorflow")
    if torch is not None and isinstance(audio, torch.Tensor):
        kind, array = "torch", audio.detach().cpu().numpy()
    elif tf is not None and isinstance(audio, tf.Tensor):
        kind, array = "tf", audio.numpy()
    else:
        kind, array = "numpy", audio
    array = np.asarray(array, np.float32)
    if array.ndim != 2:
        raise ValueError(f"HEAR audio must be (n_sounds, n_samples); got shape {array.shape}")
    return array, kind


def _checked_sounds(array: np.ndarray) -> list[np.ndarray]:
    """Each sound through `prepare_waveform`: an empty or non-finite sound is a BadAudioError naming it."""
    return [prepare_waveform(row, SAMPLE_RATE, source=f"sound {index}") for index, row in enumerate(array)]


def _like_input(array: np.ndarray, kind: str):
    if kind == "torch":
        return sys.modules["torch"].from_numpy(array)
    if kind == "tf":
        return sys.modules["tensorflow"].convert_to_tensor(array)
    return array
