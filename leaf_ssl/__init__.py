"""leaf_ssl: learnable audio frontends pretrained without supervision, in JAX/Flax.

Subpackages: `frontends` (LEAF, SincNet, mel filterbanks), `encoders` (EfficientNet),
`data` (TFRecord shards, tf.data pipelines, the demo corpus). Entry points run as
`python -m leaf_ssl.<train|probe|bench|...>`.
"""

__version__ = "0.1.0"
