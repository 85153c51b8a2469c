"""leaf_ssl: learnable audio frontends pretrained without supervision, in JAX/Flax.

Layers, each importing only those above it in this list:

* `frontends`, `encoders`, `data`: LEAF / SincNet / mel filterbanks, EfficientNet, shards and
  tf.data pipelines (the only TensorFlow users, with `training.batches`);
* `model`: configs, the COLA and supervised models, config -> model (`model.build`);
* `training`: the train step, optimizer, checkpoints, preemption, the loop (`training.loop.run`);
* `inference`: a frozen model restored from any run or checkpoint (local or gs://), windows,
  embeddings (`leaf_ssl.load`), the HEAR API;
* `evaluation`: linear probes, their tasks and caches, result tables, filter figures;
* `bench`: benchmarks and their peers; `cli`: the command lines, which nothing imports.

Commands run as `python -m leaf_ssl.<train|probe|embed|analyze|tables|bench>`.
"""

__version__ = "0.1.0"


def load(ckpt: str, **options):
    """A pretrained (or `random:<config>`) model: `.embed(waveform, sample_rate)`, `.frames(...)`,
    `.filters()`, `.config`, `.step`. See `leaf_ssl.inference.embedder`."""
    from leaf_ssl.inference import embedder  # imported on use: `import leaf_ssl` stays free of jax
    return embedder.load(ckpt, **options)
