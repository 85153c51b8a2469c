"""Builds encoders by name from a config (ml_collections.ConfigDict or dict)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from leaf_ssl.encoders.efficientnet import EfficientNet

# Named presets: constructor kwargs for EfficientNet. Fields given in the config
# override the preset.
ENCODERS: dict[str, dict[str, Any]] = {
    "efficientnet_b0": {"width_mult": 1.0, "depth_mult": 1.0},
    # A scaled-down EfficientNet for tests and smoke runs: 8..80 block channels,
    # 320-d embedding, 10 blocks (stages 4-6 keep a residual repeat so drop path
    # is exercised). Same code path as B0.
    "efficientnet_tiny": {"width_mult": 0.25, "depth_mult": 0.34},
}

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# Flax reserves `name` and `parent`; in the config `name` selects the preset.
_CONSTRUCTOR_FIELDS = tuple(
    field.name for field in dataclasses.fields(EfficientNet) if field.init and field.name not in ("name", "parent")
)


def _resolve_dtype(dtype: Any) -> Any:
    """Maps 'float32'/'bfloat16' (or the jnp dtypes themselves) to a jnp dtype."""
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {sorted(_DTYPES)}")
        return _DTYPES[dtype]
    if jnp.dtype(dtype) not in {jnp.dtype(d) for d in _DTYPES.values()}:
        raise ValueError(f"unknown dtype {dtype!r}; valid dtypes: {sorted(_DTYPES)}")
    return dtype


def make_encoder(cfg: Mapping[str, Any], dtype: Any = None) -> EfficientNet:
    """Instantiates the encoder described by `cfg`.

    Args:
      cfg: a ConfigDict or dict with `name` (a key of ENCODERS) and optionally
        any EfficientNet constructor field (width_mult, depth_mult,
        drop_path_rate, pooling, dtype, bn_axis_name, ...), overriding the preset.
      dtype: computation dtype, 'float32' or 'bfloat16' (or the jnp dtype);
        takes precedence over `cfg.dtype` when given.

    Raises:
      ValueError: for an unknown encoder name, config field or dtype.
    """
    # None (a config's unset width_mult / depth_mult) means "the preset's value".
    fields = {key: value for key, value in (cfg.to_dict() if hasattr(cfg, "to_dict") else cfg).items()
              if value is not None}
    encoder_name = fields.pop("name", None)
    if encoder_name not in ENCODERS:
        raise ValueError(f"unknown encoder name {encoder_name!r}; valid names: {sorted(ENCODERS)}")
    unknown_fields = sorted(set(fields) - set(_CONSTRUCTOR_FIELDS))
    if unknown_fields:
        raise ValueError(
            f"unknown encoder config field(s) {unknown_fields}; valid fields: ['name'] + {sorted(_CONSTRUCTOR_FIELDS)}"
        )
    kwargs = {**ENCODERS[encoder_name], **fields}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if "dtype" in kwargs:
        kwargs["dtype"] = _resolve_dtype(kwargs["dtype"])
    return EfficientNet(**kwargs)
