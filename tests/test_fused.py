"""The fused LEAF kernel (frontends/fused.py), run by Pallas's interpreter, against the unfused path.

Oracles: the unfused path (FFT or direct filterbank, squared modulus, block pooling) in float64, and the
same path in float32, whose own distance to float64 sets what "float32 rounding" means for each case.
"""

import json

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.frontends import convolution, fused, make_frontend, pooling
from leaf_ssl.frontends.leaf import Leaf, squared_modulus
from leaf_ssl.inference.frozen_model import load_frozen_model
from leaf_ssl.training import checkpointing
from tests.tiny_config import CONFIGS

TINY = CONFIGS / "tiny.py"

RNG = np.random.default_rng(0)


def unfused(waveform, taps, windows, stride):
    return pooling.weighted_pool(squared_modulus(convolution.filterbank_direct(waveform, taps)), windows,
                                 stride, "passes")


def case(batch, samples, filters, n_taps, window):
    waveform = RNG.standard_normal((batch, samples))
    taps = RNG.standard_normal((2 * filters, n_taps)) / np.sqrt(n_taps)
    windows = RNG.uniform(size=(filters, window))
    return waveform, taps, windows


def relative_error(value, reference):
    return float(np.max(np.abs(np.asarray(value, np.float64) - reference)) / np.max(np.abs(reference)))


# (batch, samples, filters, taps, window, stride, frames per tile): LEAF's 16 kHz geometry at odd lengths
# (160 m + 1, a partial last tile, shorter than one tile) and other windows, strides and tile sizes.
GEOMETRIES = [
    (2, 1601, 8, 401, 401, 160, 16),
    (1, 2399, 4, 401, 401, 160, 5),
    (2, 200, 4, 401, 401, 160, 16),
    (3, 999, 6, 51, 41, 16, 7),
    (1, 333, 5, 25, 31, 10, 1),
]


@pytest.mark.parametrize("batch,samples,filters,n_taps,window,stride,frames_per_tile", GEOMETRIES)
def test_forward_matches_the_unfused_path(batch, samples, filters, n_taps, window, stride, frames_per_tile):
    waveform, taps, windows = case(batch, samples, filters, n_taps, window)
    with jax.enable_x64(True):
        reference = np.asarray(unfused(jnp.asarray(waveform), jnp.asarray(taps), jnp.asarray(windows), stride))
    as32 = [jnp.asarray(a, jnp.float32) for a in (waveform, taps, windows)]
    out = fused.gabor_energy_pool(*as32, stride, frames_per_tile=frames_per_tile)
    assert out.shape == (batch, filters, -(-samples // stride))
    assert relative_error(out, reference) < 1e-6
    assert relative_error(unfused(*as32, stride), reference) < 1e-6


def gradients(function, waveform, taps, windows, stride, cotangent):
    return jax.grad(lambda x, t, w: jnp.sum(function(x, t, w, stride) * cotangent), argnums=(0, 1, 2))(
        waveform, taps, windows)


# Every filter count the configs use (tiny 8, default 40, the benchmarks' 64), and the odd geometries.
@pytest.mark.parametrize("batch,samples,filters,n_taps,window,stride,frames_per_tile",
                         [pytest.param(2, 961, 40, 401, 401, 160, 16, marks=pytest.mark.slow),
                          pytest.param(1, 1281, 64, 401, 401, 160, 16, marks=pytest.mark.slow)]
                         + GEOMETRIES[:1] + [pytest.param(*g, marks=pytest.mark.slow) for g in GEOMETRIES[1:3]]
                         + GEOMETRIES[3:])
def test_every_gradient_matches_float64_to_float32_rounding(batch, samples, filters, n_taps, window, stride,
                                                            frames_per_tile):
    waveform, taps, windows = case(batch, samples, filters, n_taps, window)
    cotangent = RNG.standard_normal((batch, filters, -(-samples // stride)))
    with jax.enable_x64(True):
        reference = [np.asarray(g) for g in gradients(unfused, *map(jnp.asarray, (waveform, taps, windows)),
                                                      stride, jnp.asarray(cotangent))]
    as32 = [jnp.asarray(a, jnp.float32) for a in (waveform, taps, windows, cotangent)]
    ours = gradients(lambda *a: fused.gabor_energy_pool(*a, frames_per_tile=frames_per_tile), *as32[:3],
                     stride, as32[3])
    plain = gradients(unfused, *as32[:3], stride, as32[3])
    for name, mine, theirs, exact in zip(("waveform", "taps", "windows"), ours, plain, reference):
        floor = max(relative_error(theirs, exact), 1e-6)
        assert relative_error(mine, exact) < 4 * floor, name


def pallas_output_counts(jaxpr):
    """The number of outputs of every pallas_call in a jaxpr, its sub-jaxprs included."""
    counts = []
    for equation in jaxpr.eqns:
        if equation.primitive.name == "pallas_call":
            counts.append(len(equation.outvars))
        for sub in jax.extend.core.jaxprs_in_params(equation.params):
            counts.extend(pallas_output_counts(sub))
    return counts


def test_the_waveform_gradient_is_computed_only_when_asked_for():
    waveform, taps, windows = (jnp.asarray(a, jnp.float32) for a in case(1, 481, 4, 401, 401))
    loss = lambda x, t, w: jnp.sum(fused.gabor_energy_pool(x, t, w, 160))
    filters_only = jax.make_jaxpr(jax.grad(loss, argnums=(1, 2)))(waveform, taps, windows).jaxpr
    with_waveform = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(waveform, taps, windows).jaxpr
    # forward (1 output), backward (real taps, imaginary taps, windows [, waveform tiles])
    assert sorted(pallas_output_counts(filters_only)) == [1, 3]
    assert sorted(pallas_output_counts(with_waveform)) == [1, 4]


@pytest.mark.slow
@pytest.mark.parametrize("preemphasis", [False, True])
def test_leaf_fused_equals_leaf_fft_in_parameters_outputs_and_every_gradient(preemphasis):
    x = jnp.asarray(RNG.standard_normal((2, 1761)), jnp.float32)
    reference, ours = (Leaf(n_filters=8, filterbank_impl=impl, preemphasis=preemphasis) for impl in ("fft", "fused"))
    variables = reference.init(jax.random.PRNGKey(0), x)
    jax.tree_util.tree_map(np.testing.assert_array_equal, ours.init(jax.random.PRNGKey(0), x), variables)
    np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x), rtol=1e-5, atol=1e-6)
    loss = lambda module: lambda params: jnp.sum(jnp.square(module.apply({"params": params}, x)))
    expected = jax.grad(loss(reference))(variables["params"])
    got = jax.grad(loss(ours))(variables["params"])
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(expected)
    for path, value in jax.tree_util.tree_leaves_with_path(got):
        wanted = dict(jax.tree_util.tree_leaves_with_path(expected))[path]
        np.testing.assert_allclose(value, wanted, rtol=2e-4, atol=1e-5 * float(jnp.max(jnp.abs(wanted))),
                                   err_msg=jax.tree_util.keystr(path))


def test_fused_is_a_leaf_option_only_and_refuses_to_compile_off_tpu():
    assert make_frontend({"name": "leaf", "n_filters": 4, "filterbank_impl": "fused"}).filterbank_impl == "fused"
    with pytest.raises(ValueError, match="valid: direct, fft, auto$"):
        make_frontend({"name": "sincnet", "n_filters": 4, "filterbank_impl": "fused"})
    if jax.default_backend() != "tpu":
        with pytest.raises(ValueError, match=f"TPU only \\(this backend: {jax.default_backend()}\\).*'fft'"):
            fused.resolve_interpret(False)
    assert fused.resolve_interpret(None) == (jax.default_backend() == "cpu")


def test_tiles_and_argument_errors():
    assert fused.make_geometry(1601, 401, 401, 160, 40).filters_per_tile == 4
    assert fused.make_geometry(1601, 401, 401, 160, 6).filters_per_tile == 3
    assert fused.make_geometry(1601, 401, 401, 160, 5).filters_per_tile == 1
    geometry = fused.make_geometry(15360, 401, 401, 160, 64)
    assert (geometry.frames, geometry.tiles, geometry.rows, geometry.width) == (96, 6, 18, 560)
    waveform, taps, windows = (jnp.asarray(a, jnp.float32) for a in case(1, 481, 4, 401, 401))
    with pytest.raises(ValueError, match="6 filter taps rows for 4 pooling windows"):
        fused.gabor_energy_pool(waveform, taps[:6], windows, 160)


@pytest.mark.slow
def test_a_run_saved_with_the_fused_path_is_read_with_the_readers_own_paths(tmp_path):
    frozen = load_frozen_model(f"random:{TINY}:leaf")
    config = frozen.config.copy_and_resolve_references()
    config.frontend.filterbank_impl, config.encoder.depthwise_impl = "fused", "shifts"
    store = checkpointing.CheckpointStore(tmp_path / "checkpoints", async_save=False)
    store.save(3, dict(frozen.variables), {"config": config.to_dict(), "step": 3,
                                           "param_shapes": checkpointing.param_shapes(frozen.variables["params"])})
    store.close()
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    for read in (load_frozen_model(str(tmp_path)), load_frozen_model(f"random:{tmp_path}")):
        assert (read.config.frontend.filterbank_impl, read.config.encoder.depthwise_impl) == ("auto", "auto")
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_frozen_model(str(tmp_path)).variables,
                           frozen.variables)


def test_the_cost_estimate_counts_the_products_xla_counts_for_the_same_matmuls():
    geometry = fused.make_geometry(1601, 401, 401, 160, 8)
    batch = 2
    x_tiles = jax.ShapeDtypeStruct((batch, geometry.tiles, geometry.rows, geometry.width), jnp.float32)
    toeplitz = jax.ShapeDtypeStruct((2 * geometry.filters, geometry.width, geometry.stride), jnp.float32)
    products = jax.jit(lambda x, t: jnp.einsum("btrm,cms->btcrs", x, t)).lower(x_tiles, toeplitz).compile()
    cost = products.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    estimate = fused.cost_estimate(geometry, batch, products=1, waveform_passes=1, filter_passes=1)
    assert estimate.flops == pytest.approx(cost["flops"], rel=1e-3)
    backward = fused.cost_estimate(geometry, batch, products=3, waveform_passes=2, filter_passes=2)
    assert backward.flops == 3 * estimate.flops
    assert backward.bytes_accessed > estimate.bytes_accessed
