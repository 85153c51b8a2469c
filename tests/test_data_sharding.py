"""Per-process NumPy batches to a global jax.Array sharded over the ('data',) mesh axis."""
import jax
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from leaf_ssl.data.sharding import to_global_batch


def test_batch_is_split_along_the_data_axis():
    mesh = Mesh(np.array(jax.devices()), ("data",))
    batch = {"anchor": np.arange(16 * 3, dtype=np.float32).reshape(16, 3), "positive": -np.ones((16, 3), np.float32)}
    global_batch = to_global_batch(batch, mesh)
    rows_per_device = 16 // len(jax.devices())
    for name, values in batch.items():
        array = global_batch[name]
        assert array.shape == values.shape and array.sharding.spec == PartitionSpec("data")
        np.testing.assert_array_equal(np.asarray(array), values)
        for shard in array.addressable_shards:
            assert shard.data.shape == (rows_per_device, 3)


def test_errors_name_the_problem():
    devices = np.array(jax.devices())
    with pytest.raises(ValueError, match="no 'data' axis"):
        to_global_batch({"anchor": np.zeros((8, 2))}, Mesh(devices, ("batch",)))
    if len(devices) > 1:
        with pytest.raises(ValueError, match="anchor"):
            to_global_batch({"anchor": np.zeros((len(devices) + 1, 2))}, Mesh(devices, ("data",)))
