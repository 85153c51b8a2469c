"""Audio data: decoding, TFRecord shards, the input pipelines, the demo corpus, AudioSet.

Modules (imported one by one; this package imports none of them, so that the TensorFlow-free
ones stay light):

* `audio`: any audio file or array -> 16 kHz mono float32, `BadAudioError` for broken input;
* `records`: the shard format (`ShardWriter`, `write_shards`, `read_clips`, `list_shards`) and
  the shards' record-count sidecars;
* `pipeline`: the tf.data streams, sharded per process: `pretraining_dataset` ((anchor,
  positive) crop batches for COLA) and `labelled_dataset` (labelled crops for the supervised
  baseline);
* `sharding`: `to_global_batch`, per-process batches -> global `jax.Array` (no TensorFlow);
* `demo`: `python -m leaf_ssl.data.demo --out DIR`, the real-audio demo corpus (its sources in
  `demo_sources`);
* `audioset`: `python -m leaf_ssl.data.audioset`, downloaded AudioSet clips -> labelled shards,
  a report and a `task.json`; with `audioset_metadata` (ontology and segment CSVs),
  `audioset_files` (finding each clip's file by its YouTube id) and `audioset_shards` (writing
  one shard, the unit of parallel work and of resumption).
"""
