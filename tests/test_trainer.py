"""The shard_map train step on 8 fake CPU devices, against single-device references."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from leaf_ssl.model import build, cola
from leaf_ssl.training import optim, trainer
from tests.tiny_config import tiny_config

pytestmark = pytest.mark.slow  # trains or compiles whole steps: the full suite only

NUM_DEVICES = 8


@pytest.fixture(scope="module")
def mesh():
    assert jax.device_count() == NUM_DEVICES, "tests/conftest.py must give 8 fake CPU devices"
    return trainer.make_mesh()


def _batch(mesh, config, seed=0):
    rng = np.random.default_rng(seed)
    samples = build.crop_samples(config)
    anchor = rng.standard_normal((config.train.batch_size, samples)).astype(np.float32) * 0.1
    positive = anchor + 0.05 * rng.standard_normal(anchor.shape).astype(np.float32)
    sharding = NamedSharding(mesh, P(trainer.DATA_AXIS))
    return {"anchor": jax.device_put(anchor, sharding), "positive": jax.device_put(positive, sharding)}


def _sgd_step(config, mesh, negatives):
    """One sharded step with plain SGD(lr=1), so new params = params - gradient exactly."""
    model = build.build_model(config)
    optimizer = optax.sgd(1.0)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=build.crop_samples(config),
                                       mesh=mesh)
    params_before = jax.device_get(state.params)
    batch_stats_before = jax.device_get(state.batch_stats)
    objective = cola.train_objective({"local": None, "global": trainer.DATA_AXIS}[negatives])
    step = trainer.make_train_step(model, optimizer, optax.constant_schedule(1.0), mesh, objective)
    new_state, metrics = step(state, _batch(mesh, config))
    gradient = jax.tree.map(lambda old, new: old - new, params_before, jax.device_get(new_state.params))
    return params_before, batch_stats_before, gradient, jax.device_get(new_state.batch_stats), metrics


def _reference_loss(config, params, batch_stats, anchor, positive, negatives):
    """The same objective written without devices: the whole batch in one program.

    global negatives: one (B, B) cross-entropy. local: the mean of the 8 diagonal blocks'
    cross-entropies, each block a device's pairs against its own positives.
    """
    model = build.build_model(config, data_parallel=False)
    (logits, _), mutated = model.apply({"params": params, "batch_stats": batch_stats}, anchor, positive,
                                       train=True, mutable=["batch_stats"])
    if negatives == "global":
        return cola.contrastive_loss(logits, jnp.arange(len(logits))), mutated["batch_stats"]
    block = len(logits) // NUM_DEVICES
    losses = [cola.contrastive_loss(logits[i * block:(i + 1) * block, i * block:(i + 1) * block],
                                    jnp.arange(block)) for i in range(NUM_DEVICES)]
    return jnp.mean(jnp.stack(losses)), mutated["batch_stats"]


@pytest.mark.parametrize("negatives", ["local", "global"])
def test_sharded_step_equals_single_device_computation(mesh, negatives):
    config = tiny_config("leaf")
    # Deterministic per-example work only: masks and drop-path draw device-dependent randomness.
    config.model.freq_masks = config.model.time_masks = 0
    config.model.negatives = negatives
    params, batch_stats, gradient, new_batch_stats, metrics = _sgd_step(config, mesh, negatives)

    batch = jax.device_get(_batch(mesh, config))
    # Compiled once, rather than dispatched op by op (eagerly, this test took 4 times longer).
    (loss, expected_batch_stats), expected_gradient = jax.jit(jax.value_and_grad(
        lambda p: _reference_loss(config, p, batch_stats, batch["anchor"], batch["positive"], negatives),
        has_aux=True))(params)
    np.testing.assert_allclose(float(metrics["loss"]), float(loss), rtol=1e-5)
    flat_expected = jax.tree_util.tree_leaves_with_path(expected_gradient)
    flat_actual = jax.tree.leaves(gradient)
    # Absolute tolerance relative to the largest gradient anywhere: some leaves (biases before
    # a BatchNorm) have an exactly-zero true gradient and hold only float32 round-off.
    scale = max(np.abs(expected).max() for _, expected in flat_expected)
    for (path, expected), actual in zip(flat_expected, flat_actual):
        np.testing.assert_allclose(actual, expected, atol=1e-4 * scale, rtol=2e-3,
                                   err_msg=jax.tree_util.keystr(path))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 new_batch_stats, jax.device_get(expected_batch_stats))


def test_sharded_step_with_the_fused_kernel_equals_the_fft_path(mesh):
    """The Pallas kernel inside shard_map: its operands' device-variance, and the custom VJP's
    cotangents summed over devices as the rest of the model's are. On a one-device mesh, since the
    CPU's interpreter refuses a shard_map over more (`fused._mode`); the
    8-device attempt still initialises its model (a jit replicated over 8 devices) before the
    step is refused by name."""
    one_device = trainer.make_mesh(jax.devices()[:1])
    gradients = {}
    for impl in ("fft", "fused"):
        config = tiny_config("leaf")
        config.model.freq_masks = config.model.time_masks = 0
        config.frontend.filterbank_impl = impl
        _, _, gradients[impl], _, metrics = _sgd_step(config, one_device, "local")
        assert float(metrics["finite"]) == 1.0
    config.train.batch_size = NUM_DEVICES
    with pytest.raises(ValueError, match="works on one device only, not inside a shard_map over 8"):
        _sgd_step(config, mesh, "local")
    scale = max(np.abs(g).max() for g in jax.tree.leaves(gradients["fft"]))
    for (path, expected), actual in zip(jax.tree_util.tree_leaves_with_path(gradients["fft"]),
                                        jax.tree.leaves(gradients["fused"])):
        np.testing.assert_allclose(actual, expected, atol=1e-4 * scale, rtol=2e-3, err_msg=jax.tree_util.keystr(path))
    assert np.abs(gradients["fused"]["frontend"]["filterbank"]["gabor"]).max() > 0


def _adamw_setup(config, mesh):
    """Model, optimizer, jitted step and a host copy of the initial state (re-placed per use,
    since the step donates its state argument)."""
    model = build.build_model(config)
    crop = build.crop_samples(config)
    params = jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = optim.build_optimizer(config, model, params, total_steps=10, warmup_steps=0)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    step = trainer.make_train_step(model, optimizer, schedule, mesh, build.train_objective(config))
    return model, step, jax.device_get(state)


@pytest.fixture(scope="module")
def leaf_setup(mesh):
    return _adamw_setup(tiny_config("leaf"), mesh)


def _fresh(host_state, mesh):
    return jax.device_put(host_state, trainer.replicated(mesh))


@pytest.mark.parametrize("frontend", ["leaf", "sincnet", "sincnet_plus", "mel"])
def test_one_adamw_step_per_frontend(mesh, leaf_setup, frontend):
    config = tiny_config(frontend)
    _, step, initial = leaf_setup if frontend == "leaf" else _adamw_setup(config, mesh)
    state, metrics = step(_fresh(initial, mesh), _batch(mesh, config))
    assert int(state.step) == 1 and float(metrics["finite"]) == 1.0
    assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), initial.params, jax.device_get(state.params))
    assert any(jax.tree.leaves(changed["encoder"])) and any(jax.tree.leaves(changed["projection"]))
    if frontend != "mel":
        assert any(jax.tree.leaves(changed["frontend"])), "the learnable frontend must be updated"
    else:
        assert "frontend" not in changed


def test_frozen_frontend_parts_become_frozen_optimizer_leaves():
    config = tiny_config("leaf")
    config.frontend.learn_filters = False
    config.frontend.learn_pooling = False
    model = build.build_model(config)
    params = jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), 5120))["params"]
    prefixes = build.frozen_param_prefixes(model)
    assert set(prefixes) == {("frontend", "filterbank"), ("frontend", "pooling")}
    mask = optim.trainable_mask(params, prefixes)
    assert mask["frontend"]["filterbank"]["gabor"] is False and mask["frontend"]["pooling"]["sigma"] is False
    assert all(mask["frontend"]["compression"].values())
    assert all(jax.tree.leaves(mask["encoder"])) and mask["bilinear"] is True


def test_non_finite_batch_is_skipped_and_counted(mesh, leaf_setup):
    config = tiny_config("leaf")
    _, step, initial = leaf_setup
    batch = {k: np.array(v) for k, v in jax.device_get(_batch(mesh, config)).items()}
    batch["anchor"][3, 100] = np.nan
    sharding = NamedSharding(mesh, P(trainer.DATA_AXIS))
    batch = {k: jax.device_put(v, sharding) for k, v in batch.items()}
    state, metrics = step(_fresh(initial, mesh), batch)
    assert float(metrics["finite"]) == 0.0
    assert int(state.skipped_steps) == 1 and int(state.step) == 1
    jax.tree.map(np.testing.assert_array_equal, initial.params, jax.device_get(state.params))
    jax.tree.map(np.testing.assert_array_equal, initial.batch_stats, jax.device_get(state.batch_stats))


def test_a_finite_gradient_with_a_non_finite_update_is_not_applied(mesh):
    """A NaN learning rate: loss and gradient are finite, the update is NaN; the step must
    keep the old parameters, optimizer state and batch statistics."""
    config = tiny_config("leaf")
    model = build.build_model(config)
    crop = build.crop_samples(config)
    optimizer = optax.chain(optax.scale_by_adam(), optax.scale(float("nan")))
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    initial = jax.device_get(state)
    step = trainer.make_train_step(model, optimizer, optax.constant_schedule(float("nan")), mesh,
                                   build.train_objective(config))
    state, metrics = step(state, _batch(mesh, config))
    assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["grad_norm"]))
    assert float(metrics["finite"]) == 0.0 and int(state.skipped_steps) == 1
    for before, after in [(initial.params, state.params), (initial.opt_state, state.opt_state),
                          (initial.batch_stats, state.batch_stats)]:
        jax.tree.map(np.testing.assert_array_equal, before, jax.device_get(after))
