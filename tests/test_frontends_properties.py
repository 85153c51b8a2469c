"""Property tests: every frontend stays finite, in value and gradient, for any parameters inside
its constraints and for hostile inputs (silence, clicks, loud noise, clipping)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from leaf_ssl.frontends import Leaf, SincNet, SincNetPlus, constraints

N_FILTERS = 6
SAMPLES = 3200
WINDOW = 401


def _input(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "silence":
        return np.zeros((2, SAMPLES), np.float32)
    if kind == "clicks":
        x = np.zeros((2, SAMPLES), np.float32)
        x[:, rng.integers(0, SAMPLES, 5)] = rng.choice([-1.0, 1.0], 5)
        return x
    if kind == "loud_noise":
        return (1e3 * rng.standard_normal((2, SAMPLES))).astype(np.float32)
    return np.sign(rng.standard_normal((2, SAMPLES))).astype(np.float32)  # fully clipped square-ish wave


INPUTS = st.tuples(st.sampled_from(["silence", "clicks", "loud_noise", "clipped"]), st.integers(0, 2**16))
UNIT = st.floats(0.0, 1.0)


def _pcen(draw_alpha, draw_delta, draw_root, draw_smooth):
    return {"alpha": jnp.full(N_FILTERS, draw_alpha, jnp.float32), "delta": jnp.full(N_FILTERS, draw_delta, jnp.float32),
            "root": jnp.full(N_FILTERS, draw_root, jnp.float32), "smooth": jnp.full(N_FILTERS, draw_smooth, jnp.float32)}


@functools.cache
def _value_and_grad(module):
    def total(params, waveform):
        return jnp.sum(module.apply({"params": params}, waveform))
    return jax.jit(jax.value_and_grad(total))


def _assert_finite(module, params, waveform):
    out = module.apply({"params": params}, waveform)
    assert np.all(np.isfinite(np.asarray(out)))
    _, grads = _value_and_grad(module)(params, waveform)
    for path, leaf in jax.tree_util.tree_flatten_with_path(grads)[0]:
        assert np.all(np.isfinite(np.asarray(leaf))), jax.tree_util.keystr(path)


@settings(max_examples=12, deadline=None)
@given(inputs=INPUTS, mu=st.lists(st.floats(0.0, np.pi), min_size=N_FILTERS, max_size=N_FILTERS),
       sigma_position=st.lists(UNIT, min_size=N_FILTERS, max_size=N_FILTERS), pool=UNIT,
       alpha=UNIT, delta=st.floats(constraints.PCEN_MIN_DELTA, 10.0), root=st.floats(1.0, 10.0), smooth=UNIT)
def test_leaf_is_finite_inside_its_constraints(inputs, mu, sigma_position, pool, alpha, delta, root, smooth):
    module = Leaf(n_filters=N_FILTERS)
    low, high = constraints.gabor_sigma_bounds(WINDOW)
    pool_low, pool_high = constraints.pooling_sigma_bounds(WINDOW)
    params = {
        "filterbank": {"gabor": jnp.stack([jnp.asarray(mu, jnp.float32),
                                           low + (high - low) * jnp.asarray(sigma_position, jnp.float32)], axis=1)},
        "pooling": {"sigma": jnp.full(N_FILTERS, pool_low + (pool_high - pool_low) * pool, jnp.float32)},
        "compression": _pcen(alpha, delta, root, smooth),
    }
    _assert_finite(module, params, _input(*inputs))


@pytest.mark.parametrize("module", [SincNet(n_filters=N_FILTERS), SincNetPlus(n_filters=N_FILTERS)],
                         ids=["sincnet", "sincnet_plus"])
@settings(max_examples=8, deadline=None)
@given(inputs=INPUTS, low=st.lists(st.floats(0.0, 7000.0), min_size=N_FILTERS, max_size=N_FILTERS),
       band=st.lists(st.floats(0.0, 7000.0), min_size=N_FILTERS, max_size=N_FILTERS))
def test_sincnet_is_finite_for_any_band_edges(module, inputs, low, band):
    params = jax.device_get(module.init(jax.random.key(0), jnp.zeros((1, SAMPLES)))["params"])
    params["filterbank"]["sinc"] = np.stack([low, band], axis=1).astype(np.float32)
    _assert_finite(module, params, _input(*inputs))
