"""Building a frontend from a configuration: `make_frontend`, the `FRONTENDS` registry and presets.

A frontend config (an ml_collections ConfigDict or a plain mapping) has a `name` from `FRONTENDS`, an
optional `preset` from `frontend_presets(name)`, and any constructor arguments of that class, which
override the preset's. Example (ml_collections):

    config.frontend = ConfigDict({'name': 'leaf', 'n_filters': 64, 'init': 'random'})
    config.frontend = ConfigDict({'name': 'mel', 'preset': 'cola'})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

import flax.linen as nn

from leaf_ssl.frontends import convolution, initializers, leaf, pooling
from leaf_ssl.frontends.mel import MEL_PRESETS, MelFilterbank
from leaf_ssl.frontends.sincnet import SincNet, SincNetPlus

FRONTENDS = MappingProxyType({
    "leaf": leaf.Leaf,
    "sincnet": SincNet,
    "sincnet_plus": SincNetPlus,
    "mel": MelFilterbank,
})

_PRESETS = MappingProxyType({"mel": MEL_PRESETS})

# Config keys accepted for a constructor argument of another name: flax reserves `init` for Module.init.
_FIELD_ALIASES = MappingProxyType({"init": "filter_init"})

# Valid values of the string-valued options, per frontend (checked here so a typo fails at build time).
_CHOICES = MappingProxyType({
    "leaf": {"filter_init": initializers.GABOR_INIT_SCHEMES,
             "filterbank_impl": leaf.FILTERBANK_IMPLS,
             "pooling_impl": pooling.POOLING_IMPLS},
    "sincnet": {"filter_init": initializers.SINC_INIT_SCHEMES,
                "filterbank_impl": convolution.FILTERBANK_IMPLS},
    "sincnet_plus": {"filter_init": initializers.SINC_INIT_SCHEMES,
                     "filterbank_impl": convolution.FILTERBANK_IMPLS,
                     "pooling_impl": pooling.POOLING_IMPLS},
    "mel": {},
})


# The fields that choose between equivalent compute paths (same outputs to float32 rounding).
COMPUTE_PATH_FIELDS = MappingProxyType({
    name: tuple(field for field in choices if field.endswith("_impl")) for name, choices in _CHOICES.items()})


def frontend_presets(name: str) -> Mapping[str, Mapping[str, object]]:
    """Presets of frontend `name`: preset name -> constructor arguments (empty if it has none).

    'mel' has 'leaf' (40 bins, 512-point FFT) and 'cola' (64 bins, 1024-point FFT).
    """
    _check_name(name)
    return _PRESETS.get(name, MappingProxyType({}))


def constructor_fields(name: str) -> tuple[str, ...]:
    """The constructor arguments a config may set for frontend `name`."""
    _check_name(name)
    return tuple(field.name for field in dataclasses.fields(FRONTENDS[name])
                 if field.name not in ("parent", "name"))


def make_frontend(config) -> nn.Module:
    """Builds the frontend described by `config` (see the module docstring).

    Raises:
      ValueError: unknown `name`, `preset`, field, or value of a string-valued option; the message
        lists the valid ones.
    """
    fields = dict(config.to_dict() if hasattr(config, "to_dict") else config)
    name = fields.pop("name", None)
    _check_name(name)
    preset = fields.pop("preset", None)
    kwargs = {}
    if preset is not None:
        presets = frontend_presets(name)
        if preset not in presets:
            raise ValueError(f"unknown preset {preset!r} for frontend {name!r}; valid: "
                             f"{', '.join(presets) or 'none'}")
        kwargs.update(presets[preset])
    valid_fields = constructor_fields(name)
    for key, value in fields.items():
        field = _FIELD_ALIASES.get(key, key)
        if field not in valid_fields:
            raise ValueError(f"unknown field {key!r} for frontend {name!r}; valid fields: name, preset, "
                             f"{', '.join(valid_fields)}")
        choices = _CHOICES[name].get(field)
        if choices is not None and value not in choices:
            raise ValueError(f"invalid {key}={value!r} for frontend {name!r}; valid: {', '.join(choices)}")
        kwargs[field] = value
    return FRONTENDS[name](**kwargs)


def _check_name(name) -> None:
    if name not in FRONTENDS:
        raise ValueError(f"unknown frontend {name!r}; valid names: {', '.join(FRONTENDS)}")
