"""The frontend modules: interface contract, mel baseline vs numpy, gradients, transforms, edge cases."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from leaf_ssl.frontends import (FRONTENDS, Leaf, MelFilterbank, SincNet, SincNetPlus, constructor_fields,
                                frontend_presets, make_frontend)
from leaf_ssl.frontends.constraints import PCEN_MIN_DELTA, gabor_sigma_bounds

RNG = np.random.default_rng(1)
SMALL = 4  # filters: keeps compile and run times low
SAMPLES = 1601


def small_frontends():
    return {
        "leaf_fft": Leaf(n_filters=SMALL, filterbank_impl="fft"),
        "leaf_direct": Leaf(n_filters=SMALL, filterbank_impl="direct"),
        "leaf_options": Leaf(n_filters=SMALL, preemphasis=True, instance_norm=True, filter_init="random"),
        "sincnet": SincNet(n_filters=SMALL),
        "sincnet_plus": SincNetPlus(n_filters=SMALL),
        "mel": MelFilterbank(n_filters=SMALL),
    }


def waveform(batch=2, samples=SAMPLES, scale=0.1):
    return jnp.asarray(scale * RNG.standard_normal((batch, samples)), jnp.float32)


def init(module, x):
    return jax.jit(module.init)(jax.random.PRNGKey(0), x)


def apply(module, variables, x):
    return jax.jit(module.apply)(variables, x)


# ------------------------------------------------------------------------------- contract


def test_registry_names_the_four_frontends():
    assert dict(FRONTENDS) == {"leaf": Leaf, "sincnet": SincNet, "sincnet_plus": SincNetPlus,
                               "mel": MelFilterbank}


def test_leaf_parameter_tree_has_the_agreed_names_and_shapes():
    variables = init(Leaf(n_filters=SMALL, preemphasis=True, instance_norm=True), waveform())
    assert set(variables) == {"params"}
    shapes = jax.tree_util.tree_map(jnp.shape, variables["params"])
    assert shapes == {"filterbank": {"gabor": (SMALL, 2)}, "pooling": {"sigma": (SMALL,)},
                      "compression": {name: (SMALL,) for name in ("alpha", "delta", "root", "smooth")},
                      "preemphasis": {"kernel": (2,)},
                      "instance_norm": {"scale": (SMALL,), "bias": (SMALL,)}}
    params = variables["params"]
    np.testing.assert_allclose(params["pooling"]["sigma"], 0.4)
    for name, value in (("alpha", 0.96), ("delta", 2.0), ("root", 2.0), ("smooth", 0.04)):
        np.testing.assert_allclose(params["compression"][name], value)
    np.testing.assert_allclose(params["preemphasis"]["kernel"], [-0.97, 1.0])


def test_default_leaf_and_sincnet_match_the_reference_geometry():
    assert Leaf().window_and_stride() == (401, 160)
    assert SincNet().window_and_stride() == (401, 160)
    assert MelFilterbank().window_and_stride() == (401, 160)
    assert Leaf(sample_rate=8000).window_and_stride() == (201, 80)


@pytest.mark.parametrize("name", ["leaf_fft", "leaf_direct", "leaf_options", "sincnet", "sincnet_plus", "mel"])
@pytest.mark.parametrize("samples", [SAMPLES, 1600])
def test_output_is_float32_batch_frames_channels(name, samples):
    module = small_frontends()[name]
    x = waveform(samples=samples)
    out = apply(module, init(module, x), x)
    assert out.shape == (2, math.ceil(samples / 160), SMALL) and out.dtype == jnp.float32
    assert np.all(np.isfinite(out))


def test_direct_and_fft_leaf_agree():
    x = waveform(samples=3200, scale=1.0)
    variables = init(Leaf(n_filters=SMALL), x)
    direct = apply(Leaf(n_filters=SMALL, filterbank_impl="direct"), variables, x)
    fft = apply(Leaf(n_filters=SMALL, filterbank_impl="fft"), variables, x)
    np.testing.assert_allclose(direct, fft, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frontend", [Leaf, SincNetPlus])
def test_pooling_paths_agree_in_output_and_every_gradient(frontend):
    """The Gaussian lowpass's 'passes' and 'matmul' paths: same features and same parameter
    gradients to float32 rounding, whichever the backend's 'auto' picks."""
    x = waveform(samples=3200, scale=1.0)
    variables = init(frontend(n_filters=SMALL), x)
    projection = jnp.asarray(RNG.standard_normal((2, 20, SMALL)), jnp.float32)

    def value_and_grads(impl):
        module = frontend(n_filters=SMALL, pooling_impl=impl)
        loss = lambda params: jnp.sum(module.apply({"params": params}, x) * projection)
        return jax.jit(jax.value_and_grad(loss))(variables["params"])

    (passes_loss, passes_grads), (matmul_loss, matmul_grads) = value_and_grads("passes"), value_and_grads("matmul")
    np.testing.assert_allclose(passes_loss, matmul_loss, rtol=1e-5)
    for (path, expected), got in zip(jax.tree_util.tree_leaves_with_path(passes_grads),
                                     jax.tree_util.tree_leaves(matmul_grads)):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.max(np.abs(expected)), err_msg=str(path))


def test_leaf_impulse_at_a_frame_centre_peaks_in_that_frame():
    samples = 160 * 20 + 1  # frame centres at exactly 160 * i for this length ('SAME' rule)
    module = Leaf(n_filters=SMALL)
    variables = jax.tree_util.tree_map(np.array, init(module, waveform(1, samples)))
    # smooth = 0 freezes the PCEN smoother at frame 0, so the output grows with the pooled energy
    # (an adaptive smoother would favour the frame before the peak, where the smoother is still low).
    variables["params"]["compression"]["smooth"][:] = 0.0
    for frame in (2, 10, 17):
        impulse = np.zeros((1, samples), np.float32)
        impulse[0, 160 * frame] = 1.0
        out = np.asarray(apply(module, variables, jnp.asarray(impulse)))
        assert np.all(np.argmax(out[0], axis=0) == frame)


# ------------------------------------------------------------------------------- mel baseline


def numpy_log_mel(x, n_mels, n_fft, sample_rate=16000, window=401, hop=160, fmin=60.0, fmax=7800.0):
    """Independent log-mel: frames from sample 0 with zeros at the end, symmetric Hann, HTK triangles."""
    frames = -(-x.shape[1] // hop)
    padded = np.concatenate([x, np.zeros((x.shape[0], frames * hop + window))], axis=1)
    framed = np.stack([padded[:, i * hop:i * hop + window] for i in range(frames)], axis=1)
    power = np.abs(np.fft.rfft(framed * np.hanning(window), n_fft)) ** 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    edges = mel(np.array([fmin, fmax]))
    points = np.linspace(edges[0], edges[1], n_mels + 2)
    bins = mel(np.linspace(0, sample_rate / 2, n_fft // 2 + 1))
    matrix = np.zeros((n_fft // 2 + 1, n_mels))
    for j in range(n_mels):
        rising = (bins - points[j]) / (points[j + 1] - points[j])
        falling = (points[j + 2] - bins) / (points[j + 2] - points[j + 1])
        matrix[:, j] = np.clip(np.minimum(rising, falling), 0, None)
    matrix[0] = 0.0
    return np.log(power @ matrix + 1e-5)


@pytest.mark.parametrize("preset, n_mels, n_fft", [("leaf", 40, 512), ("cola", 64, 1024)])
@pytest.mark.parametrize("samples", [15360, 15361, 999])
def test_mel_filterbank_equals_an_independent_numpy_log_mel(preset, n_mels, n_fft, samples):
    x = RNG.standard_normal((2, samples)) * 0.3
    got = apply(MelFilterbank.from_preset(preset), {}, jnp.asarray(x, jnp.float32))
    expected = numpy_log_mel(x, n_mels, n_fft)
    assert got.shape == expected.shape == (2, math.ceil(samples / 160), n_mels)
    np.testing.assert_allclose(got, expected, atol=2e-3)  # log domain: 2e-3 absolute = 0.2 % relative power


def test_mel_frames_start_at_sample_zero():
    impulse = np.zeros((1, 1600), np.float32)
    impulse[0, 10] = 1.0  # inside frame 0 only ([0, 401)), unlike a centred frame 0
    out = np.asarray(MelFilterbank().apply({}, jnp.asarray(impulse)))
    assert out[0, 0].max() > math.log(1e-5) + 1 and np.all(out[0, 1:] == np.float32(math.log(1e-5)))


# ------------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", ["leaf_fft", "leaf_direct", "leaf_options", "sincnet", "sincnet_plus"])
def test_gradients_are_finite_and_nonzero_for_every_parameter(name):
    module = small_frontends()[name]
    x = waveform(samples=1000, scale=1.0)
    params = init(module, x)["params"]
    projection = jnp.asarray(RNG.standard_normal((2, 7, SMALL)), jnp.float32)  # not a plain sum: LayerNorm

    grads = jax.jit(jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x) * projection)))(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert np.all(np.isfinite(grad)), path
        assert np.any(grad != 0), path


def test_gradients_stay_finite_at_and_beyond_the_constraint_boundaries():
    module = Leaf(n_filters=6)
    x = waveform(1, 1000, scale=1.0)
    params = jax.tree_util.tree_map(np.array, init(module, x)["params"])
    sigma_min, sigma_max = gabor_sigma_bounds(401)
    params["filterbank"]["gabor"] = np.array(
        [[0.0, sigma_min], [math.pi, sigma_max], [-1.0, 0.0], [4.0, 1e4], [1.0, 10.0], [2.0, 30.0]], np.float32)
    params["pooling"]["sigma"] = np.array([2 / 401, 0.5, 0.0, 3.0, 0.3, 0.4], np.float32)
    compression = params["compression"]
    compression["alpha"] = np.array([0.0, 1.0, -1.0, 2.0, 0.5, 0.96], np.float32)
    compression["delta"] = np.array([PCEN_MIN_DELTA, -1.0, 0.0, 1e-9, 2.0, 2.0], np.float32)
    compression["root"] = np.array([1.0, 0.0, -3.0, 1.0, 5.0, 2.0], np.float32)
    compression["smooth"] = np.array([0.0, 1.0, -0.5, 1.5, 0.04, 0.04], np.float32)

    out, grads = jax.jit(jax.value_and_grad(lambda p: jnp.sum(module.apply({"params": p}, x))))(params)
    assert np.isfinite(out)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert np.all(np.isfinite(grad)), path


def test_jit_vmap_and_grad_compose():
    module = Leaf(n_filters=SMALL)
    x = waveform(2, 400)
    variables = init(module, x)
    jitted = jax.jit(module.apply)
    whole_batch = jitted(variables, x)
    one_by_one = jnp.concatenate([jitted(variables, x[i:i + 1]) for i in range(2)])  # no batch statistics
    np.testing.assert_allclose(whole_batch, one_by_one, rtol=1e-5, atol=1e-6)
    stacked = jnp.stack([x, 2 * x])
    batched = jax.jit(jax.vmap(module.apply, in_axes=(None, 0)))(variables, stacked)
    np.testing.assert_allclose(batched[1], jitted(variables, 2 * x), rtol=1e-5, atol=1e-6)
    grad_x = jax.jit(jax.grad(lambda w: jnp.sum(module.apply(variables, w))))(x)
    assert grad_x.shape == x.shape and np.all(np.isfinite(grad_x)) and np.any(grad_x != 0)


# ------------------------------------------------------------------------------- frozen parts


@pytest.mark.parametrize("module, expected", [
    (Leaf(), ()),
    (Leaf(learn_filters=False), ("filterbank",)),
    (Leaf(learn_filters=False, preemphasis=True), ("filterbank", "preemphasis")),
    (Leaf(learn_pooling=False, learn_compression=False), ("pooling", "compression")),
    (SincNet(learn_filters=False, learn_normalization=False), ("filterbank", "normalization")),
    (SincNetPlus(learn_pooling=False), ("pooling",)),
    (SincNetPlus(learn_filters=False, learn_compression=False), ("filterbank", "compression")),
    (MelFilterbank(), ()),
])
def test_frozen_parts_name_existing_top_level_parameter_groups(module, expected):
    assert module.frozen_parts() == expected
    params = jax.eval_shape(module.init, jax.random.PRNGKey(0), waveform(1, 400)).get("params", {})
    assert set(expected) <= set(params)


# ------------------------------------------------------------------------------- factory


def test_make_frontend_builds_each_frontend_from_a_config_dict():
    for name, cls in FRONTENDS.items():
        assert type(make_frontend(ml_collections.ConfigDict({"name": name}))) is cls
    leaf = make_frontend(ml_collections.ConfigDict({"name": "leaf", "n_filters": 64, "init": "random",
                                                    "learn_filters": False}))
    assert (leaf.n_filters, leaf.filter_init, leaf.frozen_parts()) == (64, "random", ("filterbank",))
    cola = make_frontend({"name": "mel", "preset": "cola"})
    assert (cola.n_filters, cola.n_fft) == (64, 1024)
    assert make_frontend({"name": "mel", "preset": "cola", "n_filters": 32}).n_filters == 32
    assert dict(frontend_presets("mel")["leaf"]) == {"n_filters": 40, "n_fft": 512}
    assert "filterbank_impl" in constructor_fields("sincnet")


@pytest.mark.parametrize("config, message", [
    ({"name": "tdfbanks"}, "valid names: mel, sincnet, sincnet_plus, leaf"),
    ({}, "valid names"),
    ({"name": "leaf", "n_filter": 3}, "valid fields: .*n_filters"),
    ({"name": "mel", "learn_filters": False}, "unknown field 'learn_filters'"),
    ({"name": "leaf", "init": "xavier"}, "valid: mel, random, normal, uniform"),
    ({"name": "sincnet", "filter_init": "normal"}, "valid: mel, random"),
    ({"name": "leaf", "filterbank_impl": "gpu"}, "valid: direct, fft, auto, fused"),
    ({"name": "sincnet_plus", "pooling_impl": "conv"}, "valid: passes, matmul, auto"),
    ({"name": "mel", "preset": "htk"}, "valid: leaf, cola"),
])
def test_make_frontend_errors_list_the_valid_choices(config, message):
    with pytest.raises(ValueError, match=message):
        make_frontend(config)


# ------------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("name", ["leaf_fft", "leaf_direct", "sincnet", "sincnet_plus", "mel"])
def test_edge_case_inputs_give_finite_outputs_of_the_right_shape(name):
    module = small_frontends()[name]
    variables = init(module, waveform(1, 400))
    jitted_apply = jax.jit(module.apply)
    cases = {"silence": jnp.zeros((2, 1000)), "loud": 1e3 * waveform(2, 1000, scale=1.0),
             "one_sample": jnp.ones((2, 1)), "shorter_than_window": waveform(2, 300)}
    for case, x in cases.items():
        out = jitted_apply(variables, x)
        assert out.shape == (2, math.ceil(x.shape[1] / 160), SMALL), case
        assert np.all(np.isfinite(out)), case


@pytest.mark.parametrize("module", [Leaf(n_filters=SMALL), SincNet(n_filters=SMALL), MelFilterbank()])
def test_wrong_rank_or_dtype_is_a_clear_error(module):
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((400,)))
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((2, 400, 1)))
    with pytest.raises(TypeError, match="floating-point"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((2, 400), jnp.int16))
    with pytest.raises(ValueError, match="no samples"):
        module.init(jax.random.PRNGKey(0), jnp.zeros((2, 0)))


def test_bfloat16_input_is_computed_in_float32():
    module = Leaf(n_filters=SMALL)
    x = waveform(1, 800)
    variables = init(module, x)
    out = apply(module, variables, x.astype(jnp.bfloat16))
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, apply(module, variables, x.astype(jnp.bfloat16).astype(jnp.float32)))
