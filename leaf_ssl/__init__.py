"""leaf_ssl: learnable audio frontends pretrained without supervision, in JAX/Flax.

Subpackages: `frontends` (LEAF, SincNet, mel filterbanks), `encoders` (EfficientNet),
`data` (TFRecord shards, tf.data pipelines, the demo corpus). Entry points run as
`python -m leaf_ssl.<train|probe|embed|analyze|bench|...>`. `leaf_ssl.load(ckpt)` gives a
pretrained model as a Python object (`leaf_ssl.api`); `leaf_ssl.hear` is the HEAR 2021 API.
"""

__version__ = "0.1.0"


def load(ckpt: str, **options):
    """A pretrained (or `random:<config>`) model: `.embed(waveform, sample_rate)`, `.frames(...)`,
    `.filters()`, `.config`, `.step`. See `leaf_ssl.api.load` and `leaf_ssl.api.Embedder`."""
    from leaf_ssl import api  # imported on use: `import leaf_ssl` stays free of jax and its start-up time
    return api.load(ckpt, **options)
