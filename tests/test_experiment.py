"""Building runs from configs: the rematerialised frontend is the same model, computed differently."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from leaf_ssl.model import build
from leaf_ssl.training import trainer
from tests.tiny_config import tiny_config


@pytest.mark.slow
def test_remat_frontend_keeps_parameters_and_gradients():
    plain_config, remat_config = tiny_config("leaf"), tiny_config("leaf")
    remat_config.model.remat_frontend = True
    plain = build.build_model(plain_config, data_parallel=False)
    remat = build.build_model(remat_config, data_parallel=False)
    crop = build.crop_samples(plain_config)
    variables = trainer.init_variables(plain, jax.random.key(0), crop)
    remat_shapes = jax.eval_shape(lambda: trainer.init_variables(remat, jax.random.key(0), crop))
    assert jax.tree.structure(remat_shapes) == jax.tree.structure(variables)
    assert remat.frontend.frozen_parts() == plain.frontend.frozen_parts()

    waveform = jnp.asarray(np.random.default_rng(0).standard_normal((2, crop)), jnp.float32)

    def frontend_loss(model):
        return jax.jit(jax.value_and_grad(lambda params: jnp.sum(model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, waveform,
            method=lambda module, x: module.frontend(x)) ** 2)))

    plain_value, plain_grads = frontend_loss(plain)(variables["params"])
    remat_value, remat_grads = frontend_loss(remat)(variables["params"])
    np.testing.assert_allclose(remat_value, plain_value, rtol=1e-6)
    # Recomputation may fuse and round differently: compare each leaf at float32 precision of its scale.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max()),
                 remat_grads, plain_grads)
