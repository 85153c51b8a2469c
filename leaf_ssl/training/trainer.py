"""The data-parallel train step: `jax.shard_map` over a 1-D ('data',) mesh inside `jax.jit`.

The step is the same for COLA pretraining and the supervised baseline; only the objective
(`cola.train_objective`, `supervised.train_objective`) differs.

Each device runs the pmap-style program below on its slice of the global batch:

    rng       = fold_in(fold_in(seed_key, step), device index)    own masks / drop-path per device
    grads     = ∇ loss(device batch)                              local gradient
    grads     = pmean(grads, 'data')                              the gradient of the mean loss
    params    = AdamW(params, grads)                              identical on every device
    skipped   = the update is not applied unless loss, gradient norm, update and new batch
                statistics are finite (so the new state is: see make_train_step)

With `negatives='global'` the positives are all-gathered, so the per-device losses are coupled;
the gather's transpose sends each positive's gradient back to the device that computed it, and
the pmean still gives the exact gradient of the global mean loss (tests/test_trainer.py checks
this against a single-device computation).

BatchNorm: with batch_norm='sync' the encoder's BatchNorm averages its batch moments over
'data', i.e. normalises by the global batch, as one big device would; with 'per_device' each
device normalises by its own slice. Either way the running averages are pmean-ed after the
step so that the state stays identical on every device.
"""
from collections.abc import Callable
from typing import Any

import flax.linen as nn

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from leaf_ssl.data.sharding import DATA_AXIS

Objective = Callable[..., tuple[jax.Array, tuple[dict, jax.Array]]]
"""(model, {'params', 'batch_stats'}, device batch, rngs, capture_intermediates=False) ->
(loss, (mutated collections, accuracy)): the model applied in training mode to this device's
part of the batch. The mutated collections hold the new 'batch_stats' and, when asked for
(diagnostics), every module's output in 'intermediates'."""


@flax.struct.dataclass
class TrainState:
    """Everything a step reads and writes; a pytree of arrays, replicated over the mesh."""
    step: jax.Array          # int32 scalar: steps applied so far (a skipped step still counts).
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array           # uint32[2] raw PRNG key; per-step keys are folded from it.
    skipped_steps: jax.Array  # int32 scalar: steps whose update was dropped as non-finite.


def make_mesh(devices=None) -> Mesh:
    """1-D mesh over all (global) devices, axis 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def init_variables(model: nn.Module, rng: jax.Array, crop_samples: int) -> dict:
    """Model variables ('params', 'batch_stats') from a 2-example dummy batch."""
    dummy = jnp.zeros((2, crop_samples), jnp.float32)
    return model.init({"params": rng}, *[dummy] * model.waveform_args, train=False)


def create_train_state(model: nn.Module, optimizer: optax.GradientTransformation, *, seed: int,
                       crop_samples: int, mesh: Mesh) -> TrainState:
    """A fresh state, placed replicated on the mesh (initialised once, by a jitted function)."""
    def init(key):
        init_key, step_key = jax.random.split(key)
        variables = init_variables(model, init_key, crop_samples)
        return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                          batch_stats=variables.get("batch_stats", {}),
                          opt_state=optimizer.init(variables["params"]),
                          rng=jax.random.key_data(step_key), skipped_steps=jnp.zeros((), jnp.int32))
    return jax.jit(init, out_shardings=replicated(mesh))(jax.random.key(seed))


def _tree_all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])) if leaves else jnp.array(True)


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, mesh: Mesh, objective: Objective
                    ) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """Jitted `(state, batch) -> (state, metrics)`; the state argument is donated.

    `batch` holds global arrays (global_batch, ...) sharded along 'data' (for COLA 'anchor'
    and 'positive'). Metrics are replicated scalars: loss, accuracy, grad_norm,
    learning_rate, finite (1.0 when the update was applied: the new state is all finite).
    """

    def device_step(state: TrainState, batch: dict):
        key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        key = jax.random.fold_in(key, lax.axis_index(DATA_AXIS))
        augment_key, dropout_key = jax.random.split(key)

        def loss_fn(params):
            return objective(model, {"params": params, "batch_stats": state.batch_stats}, batch,
                             {"specaugment": augment_key, "dropout": dropout_key})

        # The state is replicated (device-invariant). Differentiating w.r.t. an invariant
        # value makes shard_map sum the cotangents over devices implicitly; casting the
        # params to device-varying first yields each device's own gradient, which the
        # explicit pmean below turns into the gradient of the mean loss.
        local_params = lax.pcast(state.params, DATA_AXIS, to="varying")
        (loss, (mutated, accuracy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(local_params)
        grads = lax.pmean(grads, DATA_AXIS)
        loss = lax.pmean(loss, DATA_AXIS)
        batch_stats = lax.pmean(mutated["batch_stats"], DATA_AXIS)
        grad_norm = optax.tree.norm(grads)

        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Judged on the state the step would produce, not only on its inputs: a finite gradient
        # can still give a non-finite update (a NaN or float32-overflowing learning rate). Every
        # applied state was checked, so the new one is finite when the update is (its norm is
        # finite only if every element is, each then below 1.8e19) and so are Adam's moments (made
        # of the finite gradient). The update's norm makes the same decision as checking every new
        # parameter and moment, at a fraction of the compile time.
        update_norm = optax.tree.norm(updates)
        finite = (jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(update_norm)
                  & _tree_all_finite(batch_stats))
        keep_new = lambda new, old: jnp.where(finite, new, old)
        new_state = state.replace(
            step=state.step + 1,
            params=jax.tree.map(keep_new, params, state.params),
            batch_stats=jax.tree.map(keep_new, batch_stats, state.batch_stats),
            opt_state=jax.tree.map(keep_new, opt_state, state.opt_state),
            skipped_steps=state.skipped_steps + (~finite).astype(jnp.int32))
        metrics = {
            "loss": loss,
            "accuracy": lax.pmean(accuracy, DATA_AXIS),
            "grad_norm": grad_norm,
            "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
            "finite": finite.astype(jnp.float32),
        }
        return new_state, metrics

    sharded_step = jax.shard_map(device_step, mesh=mesh, in_specs=(P(), P(DATA_AXIS)), out_specs=(P(), P()))
    return jax.jit(sharded_step, donate_argnums=(0,))
