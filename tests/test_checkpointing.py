import logging
"""The orbax checkpoint store: exact round trip, architecture check, torn-checkpoint fallback."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from leaf_ssl.training import checkpointing, trainer
from tests.checkpoint_damage import flip_bytes_in_params


def _state(seed: int, width: int = 3) -> trainer.TrainState:
    params = {"frontend": {"filterbank": {"gabor": jax.random.normal(jax.random.key(seed), (width, 2))}},
              "encoder": {"kernel": jax.random.normal(jax.random.key(seed + 1), (width, 5))}}
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    _, opt_state = optimizer.update(grads, opt_state, params)  # non-trivial moments
    return trainer.TrainState(step=jnp.asarray(7, jnp.int32), params=params,
                              batch_stats={"encoder": {"mean": jnp.arange(5.0)}}, opt_state=opt_state,
                              rng=jax.random.key_data(jax.random.key(seed)), skipped_steps=jnp.asarray(1, jnp.int32))


def _abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def test_save_restore_round_trip_is_exact(tmp_path, caplog):
    state = _state(0)
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    shapes = checkpointing.param_shapes(state.params)
    store.save(7, state, {"step": 7, "param_shapes": shapes})
    store.wait()
    with caplog.at_level(logging.WARNING):
        restored, meta = store.restore(7, _abstract(state), shapes)
        checkpointing.restore_step(store.directory / "7", meta, shapes)  # as the frozen-model reader does
    assert not [r for r in caplog.records if "does not exist" in r.getMessage()], "a normal restore warns of nothing"
    assert meta["step"] == 7
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    jax.tree.map(np.testing.assert_array_equal, restored, state)
    store.close()


def test_param_shapes_and_mismatch_description():
    shapes = checkpointing.param_shapes(_state(0).params)
    assert shapes == {"encoder/kernel": [3, 5], "frontend/filterbank/gabor": [3, 2]}
    wider = checkpointing.param_shapes(_state(0, width=4).params)
    assert checkpointing.describe_shape_mismatch(shapes, shapes) is None
    assert "encoder/kernel has shape [4, 5] in the checkpoint but [3, 5]" in \
        checkpointing.describe_shape_mismatch(shapes, wider)
    assert "the model has parameter extra" in checkpointing.describe_shape_mismatch({**shapes, "extra": [1]}, shapes)


def test_restore_refuses_another_architecture(tmp_path):
    small, large = _state(0), _state(0, width=4)
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    store.save(1, small, {"param_shapes": checkpointing.param_shapes(small.params)})
    store.wait()
    with pytest.raises(checkpointing.CheckpointError, match="another architecture"):
        store.restore_latest_readable(_abstract(large), checkpointing.param_shapes(large.params))
    store.close()


def test_unreadable_latest_falls_back_and_is_set_aside(tmp_path):
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    shapes = checkpointing.param_shapes(_state(0).params)
    store.save(1, _state(1), {"param_shapes": shapes})
    store.save(2, _state(2), {"param_shapes": shapes})
    store.wait()
    for path in (tmp_path / "ckpt" / "2" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"")
    restored, _ = store.restore_latest_readable(_abstract(_state(0)), shapes)
    jax.tree.map(np.testing.assert_array_equal, restored.params, _state(1).params)
    assert store.all_steps() == [1]
    assert len(list((tmp_path / "unreadable_checkpoints").iterdir())) == 1
    store.close()


def test_digests_tell_arrays_apart_by_value_dtype_and_shape():
    base = {"a": np.arange(6, dtype=np.float32), "b": {"c": np.zeros((2, 3), np.int32)}}
    digests = checkpointing.array_digests(base)
    assert set(digests) == {"a", "b/c"} and digests == checkpointing.array_digests(jax.tree.map(np.copy, base))
    one_changed = {**base, "a": base["a"].copy()}
    one_changed["a"][3] = np.nextafter(one_changed["a"][3], np.float32(10))  # one ulp
    assert checkpointing.array_digests(one_changed)["a"] != digests["a"]
    assert checkpointing.array_digests({"a": base["a"].view(np.int32)})["a"] != digests["a"]  # same bytes
    assert checkpointing.array_digests({"a": base["a"].reshape(2, 3)})["a"] != digests["a"]
    assert checkpointing.digest_mismatch(digests, base) is None
    assert "array a does not match" in checkpointing.digest_mismatch(digests, one_changed)
    assert "array z has no digest" in checkpointing.digest_mismatch(digests, {"z": np.ones(1)})


def test_flipped_bytes_restore_silently_in_orbax_but_not_here(tmp_path):
    import orbax.checkpoint as ocp
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    store.save(1, _state(1, width=64), {"param_shapes": checkpointing.param_shapes(_state(1, width=64).params)})
    store.save(2, _state(2, width=64), {"param_shapes": checkpointing.param_shapes(_state(2, width=64).params)})
    store.wait()
    flip_bytes_in_params(tmp_path / "ckpt" / "2")
    raw = ocp.StandardCheckpointer().restore(tmp_path / "ckpt" / "2" / "state")  # orbax: no error...
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(raw), jax.tree.leaves(_state(2, width=64)))]
    assert any(changed), "the flip must change restored values, or this test tests nothing"
    shapes = checkpointing.param_shapes(_state(0, width=64).params)
    restored, _ = store.restore_latest_readable(_abstract(_state(0, width=64)), shapes)  # ...here: step 1
    jax.tree.map(np.testing.assert_array_equal, restored, _state(1, width=64))
    assert store.all_steps() == [1] and len(list((tmp_path / "unreadable_checkpoints").iterdir())) == 1
    store.close()


def test_a_step_without_meta_is_restored_with_a_warning_and_a_non_finite_one_is_refused(tmp_path, caplog):
    import shutil
    state = _state(3)
    shapes = checkpointing.param_shapes(state.params)
    nan_params = jax.tree.map(lambda leaf: leaf.at[0].set(jnp.nan), state.params)
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    store.save(1, state, {"param_shapes": shapes})
    store.save(2, state.replace(params=nan_params), {"param_shapes": shapes})  # its digests match its NaNs
    store.wait()
    store.close()
    shutil.rmtree(tmp_path / "ckpt" / "1" / "meta")
    with caplog.at_level(logging.WARNING):
        restored = checkpointing.restore_step(tmp_path / "ckpt" / "1", checkpointing.read_meta(tmp_path / "ckpt" / "1"),
                                              shapes)
    jax.tree.map(np.testing.assert_array_equal, restored["params"], state.params)
    assert "has no recorded digests (no meta/ folder)" in caplog.text, "an unverified restore is not silent"
    step_2 = tmp_path / "ckpt" / "2"
    with pytest.raises(checkpointing.CorruptCheckpoint, match=r"array params/\S+ holds \d+ non-finite values"):
        checkpointing.restore_step(step_2, checkpointing.read_meta(step_2), shapes)


@pytest.mark.parametrize("damaged", ["_METADATA", "manifest.ocdbt"])
def test_a_damaged_index_file_is_named_not_a_type_error(tmp_path, damaged):
    state = _state(4)
    shapes = checkpointing.param_shapes(state.params)
    store = checkpointing.CheckpointStore(tmp_path / "ckpt")
    store.save(1, state, {"param_shapes": shapes})
    store.wait()
    store.close()
    index = tmp_path / "ckpt" / "1" / "state" / damaged
    data = bytearray(index.read_bytes())
    data[10:40] = b"x" * 30
    index.write_bytes(bytes(data))
    step = tmp_path / "ckpt" / "1"
    with pytest.raises(checkpointing.CheckpointError, match="_METADATA or state/manifest.ocdbt is missing or damaged"):
        checkpointing.restore_step(step, checkpointing.read_meta(step), shapes)  # as readers restore: no target
