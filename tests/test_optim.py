"""The learning-rate schedule and the frozen-parameter mask."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leaf_ssl.training import optim


def test_schedule_warms_up_linearly_then_decays_as_a_cosine_to_zero():
    schedule = optim.learning_rate_schedule(base_learning_rate=5e-4, global_batch=512, warmup_steps=10,
                                            total_steps=110)
    peak = 5e-4 * 512 / 256
    assert float(schedule(0)) == 0.0
    np.testing.assert_allclose(float(schedule(5)), peak / 2, rtol=1e-6)
    np.testing.assert_allclose(float(schedule(10)), peak, rtol=1e-6)
    for step in (20, 60, 100):
        expected = peak * 0.5 * (1 + math.cos(math.pi * (step - 10) / 100))
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-5)
    assert float(schedule(110)) == pytest.approx(0.0, abs=1e-12)
    decay = [float(schedule(s)) for s in range(10, 111)]
    assert all(b < a for a, b in zip(decay, decay[1:])), "the cosine part must strictly decrease"


def test_schedule_rejects_no_steps():
    with pytest.raises(ValueError, match="total_steps"):
        optim.learning_rate_schedule(base_learning_rate=1e-3, global_batch=256, warmup_steps=0, total_steps=0)


def test_frozen_prefix_gets_no_update_and_no_weight_decay():
    params = {"frontend": {"filterbank": {"gabor": jnp.ones((4, 2))}, "pooling": {"sigma": jnp.ones(4)}},
              "encoder": {"kernel": jnp.ones((3, 3))}}
    optimizer = optim.make_optimizer(optax.constant_schedule(0.1), weight_decay=0.5, params=params,
                                     frozen_prefixes=[("frontend", "filterbank")])
    state = optimizer.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = optimizer.update(grads, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new["frontend"]["filterbank"]["gabor"], params["frontend"]["filterbank"]["gabor"])
    assert np.all(np.asarray(new["frontend"]["pooling"]["sigma"]) < 1)
    assert np.all(np.asarray(new["encoder"]["kernel"]) < 1)


def test_trainable_mask_matches_only_whole_path_prefixes():
    params = {"frontend": {"filterbank": {"w": 1.0}, "filterbank_extra": {"w": 2.0}}, "encoder": {"w": 3.0}}
    mask = optim.trainable_mask(params, [("frontend", "filterbank")])
    assert mask == {"frontend": {"filterbank": {"w": False}, "filterbank_extra": {"w": True}},
                    "encoder": {"w": True}}
