"""The training streams by reader: tf.data (`pipeline`) or the shards decoded into memory (`in_memory`).

``auto`` reads through tf.data where TensorFlow imports and the shards hold PCM, and into memory
otherwise (no TensorFlow here, or compressed shards, which only that reader decodes).
"""
from __future__ import annotations

import os

from leaf_ssl.data import records, shards

READERS = ("auto", "tf_data", "in_memory")


def tensorflow_imports() -> bool:
    """Whether TensorFlow imports here (an install broken by its pins counts as absent)."""
    try:
        import tensorflow  # noqa: F401  (imported anyway when tf.data is chosen)
    except Exception:  # ImportError where absent; others where a dependency's version breaks it
        return False
    return True


def choose_reader(reader: str, path_or_pattern: str | os.PathLike) -> str:
    """The reader that `reader` means for these shards: 'tf_data' or 'in_memory'.

    Raises:
      ValueError: an unknown reader, or 'tf_data' asked for where it cannot read the shards.
    """
    if reader not in READERS:
        raise ValueError(f"reader {reader!r} is not one of {list(READERS)}")
    if reader == "in_memory":
        return reader
    encoding = shards.shards_encoding(records.list_shards(path_or_pattern)[:1])
    has_tensorflow = tensorflow_imports()
    if reader == "auto":
        return "tf_data" if has_tensorflow and encoding == records.PCM else "in_memory"
    if not has_tensorflow:
        raise ValueError("reader 'tf_data' needs TensorFlow, which is not installed here: use 'in_memory' or 'auto'")
    if encoding != records.PCM:
        raise ValueError(f"the shards in {os.fspath(path_or_pattern)!r} hold {encoding} audio, which only the "
                         "'in_memory' reader decodes: use 'in_memory' or 'auto'")
    return reader


def pretraining_stream(path_or_pattern, *, reader: str = "auto", shuffle_buffer: int = 4096, **stream):
    """`pipeline.pretraining_dataset` or `in_memory.pretraining_stream`, by `choose_reader`."""
    return _open("pretraining_dataset", "pretraining_stream", path_or_pattern, reader, shuffle_buffer, stream)


def labelled_stream(path_or_pattern, *, reader: str = "auto", shuffle_buffer: int = 4096, **stream):
    """`pipeline.labelled_dataset` or `in_memory.labelled_stream`, by `choose_reader`."""
    return _open("labelled_dataset", "labelled_stream", path_or_pattern, reader, shuffle_buffer, stream)


def _open(tf_data_name, in_memory_name, path_or_pattern, reader, shuffle_buffer, stream):
    # Each reader is imported only when chosen: tf.data's needs TensorFlow.
    if choose_reader(reader, path_or_pattern) == "tf_data":
        from leaf_ssl.data import pipeline
        return getattr(pipeline, tf_data_name)(path_or_pattern, shuffle_buffer=shuffle_buffer, **stream)
    from leaf_ssl.data import in_memory
    return getattr(in_memory, in_memory_name)(path_or_pattern, **stream)
