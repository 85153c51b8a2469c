"""Audio data: decoding, TFRecord shards, the pretraining input pipeline, the demo corpus.

Modules (imported one by one; this package imports none of them, so that the TensorFlow-free
ones stay light):

* `audio`: any audio file or array -> 16 kHz mono float32, `BadAudioError` for broken input;
* `records`: the shard format (`ShardWriter`, `write_shards`, `read_clips`, `list_shards`);
* `pipeline`: `pretraining_dataset`, the tf.data stream of (anchor, positive) crop batches;
* `sharding`: `to_global_batch`, per-process batches -> global `jax.Array` (no TensorFlow);
* `demo`: `python -m leaf_ssl.data.demo --out DIR`, the real-audio demo corpus.
"""
