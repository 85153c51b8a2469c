"""leaf_ssl.hear: the HEAR 2021 functions' shapes, dtypes and timestamps, checked against the model applied
to each window directly; numpy, JAX, torch and TensorFlow inputs. The HEAR clients themselves run in
tests/test_hear_clients.py."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.inference import hear
from tests.test_analyze import TINY

N_SAMPLES = 24000  # 1.5 s; timestamps 0, 50, ..., 1500 ms
WINDOW = 5120  # the tiny config's 0.32 s training crop: the length of every embedded window


@pytest.fixture(scope="module")
def model():
    return hear.load_model(f"random:{TINY}:leaf")


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(1)
    return (rng.normal(0, 0.1, (3, N_SAMPLES)) * np.array([[0.5], [1.0], [2.0]])).astype(np.float32)


@pytest.fixture(scope="module")
def encode(model):
    """The frozen model on one window at a time."""
    frozen = model.embedder.frozen
    one = jax.jit(lambda window: frozen.model.apply(frozen.variables, window[None], train=False,
                                                    method="encode")[0])
    # Every window is scaled to unit L2 norm first, as training crops are.
    unit = lambda window: np.asarray(window, np.float64) / max(np.linalg.norm(window), 1e-6)
    return lambda window: np.asarray(one(unit(window).astype(np.float32)))


def test_model_attributes(model):
    assert model.sample_rate == 16000
    assert model.scene_embedding_size == model.timestamp_embedding_size == 320  # tiny EfficientNet's width


def test_scene_embeddings(model, audio, encode):
    assert model.embedder.window_samples == WINDOW
    scene = hear.get_scene_embeddings(audio, model)
    assert isinstance(scene, np.ndarray) and scene.shape == (3, 320) and scene.dtype == np.float32
    # 24,000 samples: four whole windows from 0, then one more ending at the sound's end
    starts = [0, WINDOW, 2 * WINDOW, 3 * WINDOW, N_SAMPLES - WINDOW]
    for sound in range(3):
        expected = np.mean([encode(audio[sound, start:start + WINDOW]) for start in starts], axis=0)
        np.testing.assert_allclose(scene[sound], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(scene[0], scene[2])
    # a sound's embedding does not depend on the batch it came in
    np.testing.assert_allclose(hear.get_scene_embeddings(audio[1:2], model)[0], scene[1], rtol=1e-5, atol=1e-6)


def test_timestamp_embeddings(model, audio, encode):
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.shape == (3, 31, 320) and embeddings.dtype == np.float32
    assert timestamps.shape == (3, 31) and timestamps.dtype == np.float32
    np.testing.assert_allclose(timestamps, np.tile(np.arange(31) * 50.0, (3, 1)))
    padded = np.pad(audio[2], WINDOW // 2)  # window centred on t ms covers [t - 160 ms, t + 160 ms)
    for k in (0, 17, 30):
        np.testing.assert_allclose(embeddings[2, k], encode(padded[k * 800:k * 800 + WINDOW]), rtol=1e-4, atol=1e-5)


def test_jax_input_gives_the_same_numpy_output(model, audio):
    from_jax = hear.get_scene_embeddings(jnp.asarray(audio[:2]), model)
    assert isinstance(from_jax, np.ndarray)
    np.testing.assert_allclose(from_jax, hear.get_scene_embeddings(audio[:2], model), rtol=1e-6)


def test_torch_in_torch_out_from_a_torch_module(model, audio):
    import torch  # the peer and hear extras install it: missing is a failure, not a skip
    assert isinstance(model, torch.nn.Module) and isinstance(model, hear.HearModel)
    scene = hear.get_scene_embeddings(torch.from_numpy(audio[:1]), model)
    embeddings, timestamps = hear.get_timestamp_embeddings(torch.from_numpy(audio[:1, :4000]), model)
    assert isinstance(scene, torch.Tensor) and scene.dtype == torch.float32 and scene.shape == (1, 320)
    assert isinstance(embeddings, torch.Tensor) and embeddings.shape == (1, 6, 320)
    np.testing.assert_allclose(timestamps.numpy(), [[0, 50, 100, 150, 200, 250]])
    np.testing.assert_allclose(scene.numpy(), hear.get_scene_embeddings(audio[:1], model), rtol=1e-6)


def test_without_torch_the_model_is_a_tf_module_taking_and_giving_tf_tensors(audio, monkeypatch):
    import tensorflow as tf  # a dependency of the package
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    hear.module_class.cache_clear()
    try:
        model = hear.load_model(str(TINY), config_args="leaf")
    finally:
        hear.module_class.cache_clear()
    assert isinstance(model, tf.Module) and not isinstance(model, hear.module_class())
    scene = hear.get_scene_embeddings(tf.constant(audio[:2]), model)
    embeddings, timestamps = hear.get_timestamp_embeddings(tf.constant(audio[:1, :4000]), model)
    assert isinstance(scene, tf.Tensor) and scene.dtype == tf.float32 and tuple(scene.shape) == (2, 320)
    assert isinstance(embeddings, tf.Tensor) and tuple(embeddings.shape) == (1, 6, 320)
    np.testing.assert_allclose(timestamps.numpy(), [[0, 50, 100, 150, 200, 250]])
    # a config file is its random: spec: the same untrained variables
    np.testing.assert_allclose(scene.numpy(), hear.get_scene_embeddings(audio[:2], hear.load_model(f"random:{TINY}:leaf")),
                               rtol=1e-6)


def test_a_random_spec_of_a_config_file_without_arguments_loads_as_its_docstring_shows(audio):
    # "random:<file>.py" once got the prefix twice (the `.py` rule also applied to a random: spec)
    plain = hear.load_model(f"random:{TINY}")
    assert plain.scene_embedding_size > 0
    np.testing.assert_allclose(hear.get_scene_embeddings(audio[:1], plain),
                               hear.get_scene_embeddings(audio[:1], hear.load_model(str(TINY))), rtol=1e-6)


def test_errors_name_the_problem(model):
    with pytest.raises(ValueError, match="needs model_file_path"):
        hear.load_model()
    with pytest.raises(ValueError, match="applies to a config file"):
        hear.load_model("runs/x", config_args="leaf")
    with pytest.raises(ValueError, match=r"\(n_sounds, n_samples\)"):
        hear.get_scene_embeddings(np.zeros(16000, np.float32), model)
