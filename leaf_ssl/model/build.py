"""From a config to the model and the objective it is trained with.

Shared by training, the benchmark and every reader of checkpoints, so that a checkpoint's saved
config rebuilds exactly the model that wrote it. Free of TensorFlow.
"""
import dataclasses
import json
import flax.linen as nn
import ml_collections
from etils import epath

from leaf_ssl.data.sharding import DATA_AXIS
from leaf_ssl.encoders import make_encoder
from leaf_ssl.frontends import make_frontend
from leaf_ssl.model.objectives import objective_of


def crop_samples(config: ml_collections.ConfigDict) -> int:
    """Samples per crop: round(crop_seconds * sample_rate) (0.96 s at 16 kHz = 15360)."""
    return int(round(config.data.crop_seconds * config.data.sample_rate))


def resolve_supervised_task(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Fills a supervised config's classes and shards from its task folder; other configs unchanged.

    Reads `<task_dir>/task.json` for the class count and `multi_label`, and sets
    `data.train_shards` to `<task_dir>/train-*.tfrecord` unless given.

    Raises:
      FileNotFoundError: no task.json in the task folder.
      ValueError: `supervised.num_classes` was set and disagrees with task.json.
    """
    if objective_of(config).name != "supervised":
        return config
    task_dir = config.supervised.task_dir
    info_path = epath.Path(task_dir) / "task.json"  # the task folder may be in a bucket
    if not info_path.exists():
        raise FileNotFoundError(f"config.supervised.task_dir={task_dir!r} has no task.json: give a labelled task "
                                "folder (e.g. demo_corpus/tasks/keyword, or the output of leaf_ssl.data.audioset)")
    info = json.loads(info_path.read_text())
    num_classes = len(info["classes"])
    if config.supervised.num_classes not in (0, num_classes):
        raise ValueError(f"config.supervised.num_classes={config.supervised.num_classes} but {info_path} lists "
                         f"{num_classes} classes; leave it at 0")
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.supervised.num_classes = num_classes
    resolved.supervised.multi_label = bool(info.get("multi_label", False))
    if not resolved.data.train_shards:
        resolved.data.train_shards = str(epath.Path(task_dir) / "train-*.tfrecord")
    return resolved


def build_model(config: ml_collections.ConfigDict, *, data_parallel: bool = True) -> nn.Module:
    """The COLA model of `config`, or the classifier of a (resolved) supervised config.

    data_parallel: True inside the shard_map train step, where batch_norm='sync' averages
    BatchNorm moments over the 'data' axis; False for single-program use (probe, embedding),
    where no mesh axis exists.
    """
    encoder_config = ml_collections.ConfigDict(config.encoder.to_dict())
    sync_batch_norm = data_parallel and config.train.batch_norm == "sync"
    encoder_config.bn_axis_name = DATA_AXIS if sync_batch_norm else None
    frontend = make_frontend(config.frontend)
    if config.model.remat_frontend:
        frontend = _rematerialised(frontend)
    masks = dict(freq_masks=config.model.freq_masks, freq_mask_width=config.model.freq_mask_width,
                 time_masks=config.model.time_masks, time_mask_width=config.model.time_mask_width)
    return objective_of(config).make_model(config, frontend, make_encoder(encoder_config), masks)


def train_objective(config: ml_collections.ConfigDict, *, data_parallel: bool = True):
    """What the train step minimises for `config` (see `trainer.Objective`).

    data_parallel: False for a replay outside the step's shard_map, where global negatives
    have no mesh axis to gather over and fall back to the batch's own.
    """
    global_negatives = data_parallel and config.model.negatives == "global"
    return objective_of(config).make_loss(config, DATA_AXIS if global_negatives else None)


def _rematerialised(module: nn.Module) -> nn.Module:
    """The same module (same fields, same parameter tree) with its activations recomputed in the
    backward pass instead of stored: the frontend's full-rate filter outputs dominate memory."""
    fields = {f.name: getattr(module, f.name) for f in dataclasses.fields(module)
              if f.init and f.name not in ("parent", "name")}
    return nn.remat(type(module))(**fields)


def frozen_param_prefixes(model: nn.Module) -> tuple[tuple[str, ...], ...]:
    """Param-tree path prefixes that get no optimizer update (the frontend's frozen parts)."""
    frozen_parts = getattr(model.frontend, "frozen_parts", lambda: ())()
    return tuple(("frontend", part) for part in frozen_parts)
