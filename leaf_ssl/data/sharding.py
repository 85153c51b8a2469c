"""From per-process NumPy batches to global `jax.Array`s sharded over the ('data',) mesh axis.

Kept free of TensorFlow so the training step's side of the hand-over imports only JAX.
"""
from __future__ import annotations

from typing import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def to_global_batch(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's batch into one global array per key, split along axis 0.

    Every process calls this with its own batch (same keys, shapes and dtypes on all
    processes); the global batch is the processes' batches concatenated in process order.

    Raises:
      ValueError: `mesh` has no 'data' axis, or a batch's leading dimension does not divide
        evenly between this process's devices.
    """
    if DATA_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh axes {mesh.axis_names} have no {DATA_AXIS!r} axis")
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    local_devices = len(mesh.local_devices)
    global_batch = {}
    for name, values in batch.items():
        if np.shape(values)[0] % local_devices:
            raise ValueError(
                f"batch[{name!r}] has {np.shape(values)[0]} rows, not divisible by this process's "
                f"{local_devices} devices"
            )
        global_batch[name] = jax.make_array_from_process_local_data(sharding, values)
    return global_batch
