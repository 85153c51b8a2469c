"""Joining a multi-process run: launcher detection, argument checks, and the errors a pod sees
when its batch or its shards do not divide over its processes."""
import numpy as np
import pytest

from leaf_ssl.model import validation
from leaf_ssl.training import distributed
from leaf_ssl.data.shards import local_shards
from leaf_ssl.data.records import write_shards
from tests.tiny_config import tiny_config


@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"}, None),           # a one-task job is a lone process
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16"}, "slurm"),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "16", "SLURM_STEP_NUM_TASKS": "1"}, None),  # srun -n 1 inside
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "openmpi"),
    ({"OMPI_COMM_WORLD_SIZE": "1"}, None),
    ({"TPU_WORKER_HOSTNAMES": "t1k-w-0"}, None),                 # single-host slice
    ({"TPU_WORKER_HOSTNAMES": "t1k-w-0,t1k-w-1"}, "tpu"),
    ({"JAX_COORDINATOR_ADDRESS": "10.0.0.2:1234"}, "JAX_COORDINATOR_ADDRESS"),
])
def test_launcher_detection(environ, expected):
    assert distributed.detected_launcher(environ) == expected


def test_lone_process_is_not_initialised_and_bad_arguments_are_named(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize("auto") is False
    assert distributed.initialize("off", coordinator="127.0.0.1:1", num_processes=2, process_id=0) is False
    with pytest.raises(ValueError, match="go together"):
        distributed.initialize("auto", coordinator="127.0.0.1:1234")
    with pytest.raises(ValueError, match="process_id=2 is not in"):
        distributed.initialize("auto", coordinator="127.0.0.1:1234", num_processes=2, process_id=2)
    with pytest.raises(ValueError, match="not one of"):
        distributed.initialize("sometimes")
    assert distributed.any_process(True) is True and distributed.any_process(False) is False


def test_batch_that_does_not_divide_over_processes_is_refused_before_compiling():
    config = tiny_config("leaf")
    config.data.train_shards = "unused"
    config.train.batch_size = 12
    validation.validate_config(config, num_devices=4, num_processes=2)
    with pytest.raises(ValueError, match="does not divide over 8 devices"):
        validation.validate_config(config, num_devices=8, num_processes=2)
    with pytest.raises(ValueError, match="does not divide over 5 processes"):
        validation.validate_config(config, num_devices=1, num_processes=5)


def test_fewer_shards_than_processes_is_an_error_naming_both(tmp_path):
    write_shards([(f"c{i}", np.full(100, 0.1, np.float32), []) for i in range(6)], tmp_path, "p", num_shards=3)
    assert [len(local_shards(tmp_path, index, 3)) for index in range(3)] == [1, 1, 1]
    with pytest.raises(ValueError, match="3 shard.* for 4 processes"):
        local_shards(tmp_path, 0, 4)
