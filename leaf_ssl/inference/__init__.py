"""Using a trained (or untrained) model: restoring it from what training wrote, local or on
cloud storage (`frozen_model`), what it computes per window (`features`), cutting audio into
windows and batching them (`windows`), the Python API behind `leaf_ssl.load` (`embedder`),
embedding folders of files (`files`) and the HEAR 2021 API (`hear`). Free of TensorFlow."""
