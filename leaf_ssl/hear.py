"""The HEAR 2021 API of leaf_ssl models (`leaf_ssl.inference.hear`), under the module name HEAR
tools are given: `hear-validator leaf_ssl.hear --model PATH`."""
from leaf_ssl.inference.hear import (TIMESTAMP_HOP_MS, HearModel, get_scene_embeddings, get_timestamp_embeddings,
                                     load_model)

__all__ = ["TIMESTAMP_HOP_MS", "HearModel", "get_scene_embeddings", "get_timestamp_embeddings", "load_model"]
