"""Learnable and fixed audio frontends as pure Flax linen modules, with the filter math they share.

Every frontend maps a float32 waveform (batch, samples) to float32 features
(batch, ceil(samples / stride), channels), has no batch statistics, needs no rng at apply time, and says
which of its top-level parameter groups the optimizer must leave alone with `frozen_parts()`.

  Leaf           Gabor filterbank -> |.|^2 -> Gaussian lowpass -> sPCEN          (leaf.py)
  SincNet        sinc filterbank -> LeakyReLU -> max-pool -> LayerNorm          (sincnet.py)
  SincNetPlus    sinc filterbank -> LeakyReLU -> Gaussian lowpass -> sPCEN      (sincnet.py)
  MelFilterbank  fixed log-mel, presets 'leaf' and 'cola'                       (mel.py)

`make_frontend(config)` builds one from a config with a `name` in `FRONTENDS` (factory.py);
`register_frontend` adds a name.
Pure helpers: filters.py (mel scale, mel matrix, windows, impulse responses), initializers.py (mel and
random inits), constraints.py (parameter projections), convolution.py / pooling.py / compression.py
(the operators), framing.py (frame geometry).
"""

from leaf_ssl.frontends.factory import FRONTENDS, constructor_fields, frontend_presets, make_frontend, register_frontend
from leaf_ssl.frontends.leaf import Leaf
from leaf_ssl.frontends.mel import MEL_PRESETS, MelFilterbank
from leaf_ssl.frontends.sincnet import SincNet, SincNetPlus

__all__ = [
    "FRONTENDS",
    "Leaf",
    "MEL_PRESETS",
    "MelFilterbank",
    "SincNet",
    "SincNetPlus",
    "constructor_fields",
    "register_frontend",
    "frontend_presets",
    "make_frontend",
]
