"""The gpu grid in one device call (bash launch/device_tables.sh): the paper's configs (EfficientNet-B0,
COLA's bilinear head, 256 pairs) for LEAF random- and mel-init and mel, each probed beside its untrained
floor on the demo tasks, on a compressed corpus carried to the machine (launch/device_prepare.sh), read
into memory without TensorFlow. Fewer steps than the gpu grid's 500 and no filter analysis: compiles and
probes share the call's 9 minutes. TensorBoard is off (its figures need matplotlib and cost step time).
"""
import importlib.util
from pathlib import Path


def get_config():
    spec = importlib.util.spec_from_file_location("grid_gpu", Path(__file__).with_name("gpu.py"))
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    grid = gpu.get_config()
    grid.corpus = "device_payload/corpus"  # made by launch/device_prepare.sh; never built on the device
    grid.train_flags = grid.train_flags.replace("total_steps=500", "total_steps=300") + (
        " --config.train.tensorboard=False --config.data.reader=in_memory")
    grid.analyze = False
    return grid
