"""The learning-parity setting (launch/learning_parity.sh; docs/results.md, "Learning parity").

configs/demo.py with the mel frontend as it was when parity was measured: 16 pairs per step, COLA's
bilinear similarity and a peak rate of 8e-4, kept here so that the measurement repeats as the demo
recipe moves on; no evaluations while training (the peer has none to compare with).
"""
import importlib.util
from pathlib import Path


def get_config(arg=None):
    spec = importlib.util.spec_from_file_location("configs_demo", Path(__file__).with_name("demo.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    config = demo.get_config("mel")
    config.train.batch_size = 16
    config.model.similarity = "bilinear"
    config.train.base_learning_rate = 8e-4
    config.evals = ()
    return config
