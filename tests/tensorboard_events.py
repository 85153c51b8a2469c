"""Event files read back with TensorBoard's own reader (its EventAccumulator), as TensorBoard shows them."""
from pathlib import Path

import numpy as np


def read_events(folder: Path):
    """(scalars {tag: {step: value}}, images {tag: {step: (height, width)}}, hparams {name: value})."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util
    import tensorflow as tf

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    scalars, images = {}, {}
    for tag in accumulator.Tags()["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        for event in accumulator.Tensors(tag):
            value = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "scalars":
                scalars.setdefault(tag, {})[event.step] = float(value)
            elif plugin == "images":  # [width, height, png, ...] as strings
                png = tf.image.decode_png(value[2]).numpy()
                assert (int(value[0]), int(value[1])) == (png.shape[1], png.shape[0])
                images.setdefault(tag, {})[event.step] = png.shape[:2]
    hparams = {}
    for content in accumulator.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        for name, value in data.session_start_info.hparams.items():
            hparams[name] = getattr(value, value.WhichOneof("kind"))
    return scalars, images, hparams


def finite(values) -> bool:
    return bool(np.all(np.isfinite(list(values))))
