"""COLA's projection heads and similarities against the formulas written out in numpy."""
import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest

from leaf_ssl.model import build, cola, configuration, validation

BATCH, FRAMES, CHANNELS = 6, 5, 8


class Frames(nn.Module):
    """Stand-in frontend: a waveform of FRAMES * CHANNELS samples read as its frames."""

    def __call__(self, waveform):
        return waveform.reshape(waveform.shape[0], FRAMES, CHANNELS)


class MeanOverFrames(nn.Module):
    """Stand-in encoder: no parameters, so h is known exactly."""

    def __call__(self, features, train=False):
        return features.mean(axis=1)


def _layer_norm(x, scale, bias, eps=1e-6):
    centred = x - x.mean(-1, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps) * scale + bias


def _unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


def _logits(model, seed=0):
    rng = np.random.default_rng(seed)
    anchor = rng.standard_normal((BATCH, FRAMES * CHANNELS)).astype(np.float32)
    positive = anchor + 0.3 * rng.standard_normal(anchor.shape).astype(np.float32)
    variables = model.init(jax.random.key(seed), anchor, positive, train=False)
    logits, targets = model.apply(variables, anchor, positive, train=False)
    h_anchor, h_positive = anchor.reshape(BATCH, FRAMES, CHANNELS).mean(1), positive.reshape(BATCH, FRAMES, CHANNELS).mean(1)
    return np.asarray(logits), np.asarray(targets), jax.device_get(variables["params"]), h_anchor, h_positive


@pytest.mark.parametrize("similarity", ["bilinear", "dot"])
def test_cola_head_is_tanh_of_layer_norm_of_a_dense_layer(similarity):
    model = cola.ColaModel(Frames(), MeanOverFrames(), embedding_dim=16, similarity=similarity, temperature=0.2,
                           freq_masks=0, time_masks=0)
    logits, targets, params, h_anchor, h_positive = _logits(model)

    def head(h):
        dense, norm = params["projection"], params["projection_norm"]
        return np.tanh(_layer_norm(h @ dense["kernel"] + dense["bias"], norm["scale"], norm["bias"]))

    z_anchor, z_positive = head(h_anchor), head(h_positive)
    expected = (z_anchor @ params["bilinear"] @ z_positive.T if similarity == "bilinear"
                else _unit(z_anchor) @ _unit(z_positive).T / 0.2)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(targets, np.arange(BATCH))


def test_mlp_head_is_a_hidden_relu_layer_then_a_linear_output():
    model = cola.ColaModel(Frames(), MeanOverFrames(), embedding_dim=16, projection_head="mlp", similarity="dot",
                           temperature=0.1, freq_masks=0, time_masks=0)
    logits, _, params, h_anchor, h_positive = _logits(model, seed=1)
    assert set(params) == {"projection", "projection_norm", "projection_out"}

    def head(h):
        dense, norm, out = params["projection"], params["projection_norm"], params["projection_out"]
        hidden = _layer_norm(h @ dense["kernel"] + dense["bias"], norm["scale"], norm["bias"])
        return np.maximum(hidden, 0) @ out["kernel"] + out["bias"]

    np.testing.assert_allclose(logits, _unit(head(h_anchor)) @ _unit(head(h_positive)).T / 0.1, rtol=1e-4, atol=1e-4)


def test_mlp_head_with_the_bilinear_similarity_is_refused_by_the_config_and_the_model():
    config = configuration.pretraining_config()
    config.data.train_shards = "shards"
    config.model.projection_head = "mlp"
    with pytest.raises(configuration.ConfigError, match="config.model.projection_head='mlp' needs model.similarity='dot'"):
        validation.validate_config(config, num_devices=1)
    with pytest.raises(ValueError, match="needs model.similarity='dot'"):
        _logits(cola.ColaModel(Frames(), MeanOverFrames(), projection_head="mlp", similarity="bilinear"))


def test_a_run_saved_before_projection_heads_existed_rebuilds_with_colas_head():
    saved = configuration.pretraining_config().to_dict()
    del saved["model"]["projection_head"]
    assert build.build_model(ml_collections.ConfigDict(saved)).projection_head == "cola"
