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

# name -> module class, in the order of the paper's tables; `register_frontend` adds to it.
_CLASSES: dict[str, type[nn.Module]] = {}
FRONTENDS = MappingProxyType(_CLASSES)  # a read-only view that follows the registry
# name -> preset name -> constructor arguments.
_PRESETS: dict[str, Mapping[str, Mapping[str, object]]] = {}
# name -> constructor argument -> its valid values (checked here, so a typo fails at build time).
_CHOICES: dict[str, Mapping[str, tuple]] = {}

# Config keys accepted for a constructor argument of another name: flax reserves `init` for Module.init.
_FIELD_ALIASES = MappingProxyType({"init": "filter_init"})


def register_frontend(name: str, cls: type[nn.Module], *, choices: Mapping[str, tuple] | None = None,
                      presets: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Makes `name` buildable by `make_frontend`. `choices`: the valid values of string-valued
    constructor arguments (those ending in `_impl` choose between equivalent compute paths);
    `presets`: named sets of constructor arguments. A name registered twice is an error."""
    if name in _CLASSES:
        raise ValueError(f"frontend {name!r} is registered already")
    _CLASSES[name] = cls
    _CHOICES[name] = MappingProxyType(dict(choices or {}))
    _PRESETS[name] = MappingProxyType(dict(presets or {}))


register_frontend("mel", MelFilterbank, presets=MEL_PRESETS)
register_frontend("sincnet", SincNet, choices={"filter_init": initializers.SINC_INIT_SCHEMES,
                                               "filterbank_impl": convolution.FILTERBANK_IMPLS})
register_frontend("sincnet_plus", SincNetPlus, choices={"filter_init": initializers.SINC_INIT_SCHEMES,
                                                        "filterbank_impl": convolution.FILTERBANK_IMPLS,
                                                        "pooling_impl": pooling.POOLING_IMPLS})
register_frontend("leaf", leaf.Leaf, choices={"filter_init": initializers.GABOR_INIT_SCHEMES,
                                              "filterbank_impl": leaf.FILTERBANK_IMPLS,
                                              "pooling_impl": pooling.POOLING_IMPLS})


def compute_path_fields(name: str) -> tuple[str, ...]:
    """The fields of frontend `name` that choose between equivalent compute paths (same outputs to
    float32 rounding); () for a name not registered."""
    return tuple(field for field in _CHOICES.get(name, {}) if field.endswith("_impl"))


def frontend_presets(name: str) -> Mapping[str, Mapping[str, object]]:
    """Presets of frontend `name`: preset name -> constructor arguments (empty if it has none).

    'mel' has 'leaf' (40 bins, 512-point FFT) and 'cola' (64 bins, 1024-point FFT).
    """
    _check_name(name)
    return _PRESETS[name]


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
