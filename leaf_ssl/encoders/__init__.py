"""Audio encoders: EfficientNet over frontend features, pooled to an embedding.

Public API:
  EfficientNet: the flax.linen encoder module (B0 by default).
  make_encoder(cfg, dtype=None): builds an encoder from a config by preset name.
  ENCODERS: the preset names ('efficientnet_b0', 'efficientnet_tiny') and kwargs.
  encoder_output_dim(module): embedding size of an encoder (also `module.output_dim`).
"""

from leaf_ssl.encoders.efficientnet import (
    B0_STAGES,
    POOLING_MODES,
    BlockSpec,
    EfficientNet,
    StageSpec,
    efficientnet_block_specs,
    encoder_output_dim,
    round_channels,
    round_repeats,
)
from leaf_ssl.encoders.factory import ENCODERS, make_encoder

__all__ = [
    "B0_STAGES",
    "ENCODERS",
    "POOLING_MODES",
    "BlockSpec",
    "EfficientNet",
    "StageSpec",
    "efficientnet_block_specs",
    "encoder_output_dim",
    "make_encoder",
    "round_channels",
    "round_repeats",
]
