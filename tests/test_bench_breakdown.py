"""The step breakdown and the collective counter of `leaf_ssl.bench.breakdown`, on 8 fake CPU devices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from leaf_ssl.bench import breakdown
from leaf_ssl.bench.timing import xla_cost
from leaf_ssl.model import build
from leaf_ssl.training import optim, trainer
from tests.tiny_config import tiny_config


def test_collective_bytes_are_the_sizes_of_what_each_collective_returns():
    mesh = trainer.make_mesh()
    devices = mesh.size

    def per_device(x, y):
        summed = jax.lax.psum(x, "data")                        # (3, 5) float32 per device
        gathered = jax.lax.all_gather(y, "data", tiled=True)    # (devices * 4, 7) int32
        return summed, gathered

    step = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=(P(), P()),
                                 check_vma=False))
    x = jax.device_put(jnp.ones((devices * 3, 5), jnp.float32), NamedSharding(mesh, P("data")))
    y = jax.device_put(jnp.ones((devices * 4, 7), jnp.int32), NamedSharding(mesh, P("data")))
    rows = {row["collective"]: row for row in breakdown.collective_bytes(step.lower(x, y).compile().as_text())}

    assert rows["all-reduce"]["count"] == 1 and rows["all-reduce"]["mb"] == pytest.approx(3 * 5 * 4 / 1e6)
    assert rows["all-gather"]["count"] == 1 and rows["all-gather"]["mb"] == pytest.approx(devices * 4 * 7 * 4 / 1e6)


def test_async_collective_starts_count_their_output_once():
    text = """
  %ag = ((f32[4,8]{1,0}), f32[32,8]{1,0}) all-gather-start(f32[4,8]{1,0} %p), dimensions={0}
  %agd = f32[32,8]{1,0} all-gather-done(((f32[4,8]{1,0}), f32[32,8]{1,0}) %ag)
  %ar = bf16[10]{0} all-reduce-start(bf16[10]{0} %q), to_apply=%add
  %ard = bf16[10]{0} all-reduce-done(bf16[10]{0} %ar)
  %add.1 = f32[4,8]{1,0} add(f32[4,8]{1,0} %a, f32[4,8]{1,0} %b)
"""
    rows = {row["collective"]: row for row in breakdown.collective_bytes(text)}
    assert set(rows) == {"all-gather", "all-reduce"}
    assert rows["all-gather"]["mb"] == pytest.approx(32 * 8 * 4 / 1e6) and rows["all-gather"]["count"] == 1
    assert rows["all-reduce"]["mb"] == pytest.approx(10 * 2 / 1e6) and rows["all-reduce"]["count"] == 1


@pytest.mark.slow  # compiles the step and its six parts
def test_the_parts_of_a_step_add_up_to_the_whole_step():
    config = tiny_config()
    config.train.batch_size = 4
    mesh = trainer.make_mesh(jax.devices()[:1])
    model = build.build_model(config)
    crop = build.crop_samples(config)
    params = jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"]
    optimizer, schedule = optim.build_optimizer(config, model, params, total_steps=10, warmup_steps=1)
    state = trainer.create_train_state(model, optimizer, seed=0, crop_samples=crop, mesh=mesh)
    rng = np.random.default_rng(0)
    anchor = jnp.asarray(rng.standard_normal((4, crop)), jnp.float32)
    positive = anchor + 0.1
    step = trainer.make_train_step(model, optimizer, schedule, mesh, build.train_objective(config))
    whole_gflop, whole_gb = (value / 1e9 for value in xla_cost(
        step.lower(state, {"anchor": anchor, "positive": positive}).compile()))

    parts = breakdown.step_parts(build.build_model(config, data_parallel=False), optimizer, state.params,
                                 state.batch_stats, anchor, positive)

    assert [row["part"] for row in parts] == ["frontend forward", "frontend backward", "encoder forward",
                                              "encoder backward", "head and loss", "optimizer"]
    assert all(row["gflop"] > 0 and row["gb_accessed"] > 0 for row in parts), parts
    # XLA counts the same operations compiled apart; what the whole step adds (the gradient mean over
    # devices, the non-finite check, SpecAugment) is small next to the network's FLOPs.
    assert sum(row["gflop"] for row in parts) == pytest.approx(whole_gflop, rel=0.15)
    assert sum(row["gb_accessed"] for row in parts) == pytest.approx(whole_gb, rel=0.35)
