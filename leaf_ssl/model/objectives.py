"""What a run trains for, by name: one `Objective` entry per kind of run, in the `OBJECTIVES` registry.

An entry holds everything the rest of the package asks of an objective: its config schema (the
fields a config of it may set), the model it builds, the loss the step minimises and the stream of
batches that step takes. A new objective is one `register_objective(Objective(...))` beside its
model module; training, validation, the probe and the tables read it from here.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import flax.linen as nn
import ml_collections

from leaf_ssl.model import cola, configuration, supervised


@dataclasses.dataclass(frozen=True)
class Objective:
    """One kind of run.

    Attributes:
      name: the config's `objective`.
      training_label: what a probed run trained this way is called (a result row's `training`).
      crop_key: the batch entry that holds one crop per example (the encoder's input).
      crops_per_example: crops the step encodes per example (pairs: 2).
      schema: () -> a config of this objective with every field it may set, at its default.
      make_model: (config, frontend, encoder, SpecAugment fields) -> the model.
      make_loss: (config, negatives axis or None) -> the step's objective (`trainer.Objective`).
      input_stream: (config, per_process_batch=, crop_samples=, start_batch=) -> this process's
        batches from batch `start_batch` on, as dicts of numpy arrays holding `crop_key`.
    """
    name: str
    training_label: str
    crop_key: str
    crops_per_example: int
    schema: Callable[[], ml_collections.ConfigDict]
    make_model: Callable[..., nn.Module]
    make_loss: Callable[..., Callable]
    input_stream: Callable[..., Iterator[dict]]


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Adds `objective` to the registry; a name registered twice is an error, not a silent swap."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is registered already")
    if objective.schema().get("objective") != objective.name:
        raise ValueError(f"objective {objective.name!r}: its schema's `objective` field must be {objective.name!r}")
    OBJECTIVES[objective.name] = objective
    return objective


def objective_of(config: ml_collections.ConfigDict) -> Objective:
    """The registered objective `config` trains for (`configuration.objective`: its name)."""
    name = configuration.objective(config)
    if name not in OBJECTIVES:
        raise configuration.ConfigError(f"config.objective={name!r} is not valid; choose one of {list(OBJECTIVES)}")
    return OBJECTIVES[name]


def _cola_model(config, frontend, encoder, masks) -> nn.Module:
    return cola.ColaModel(
        frontend=frontend,
        encoder=encoder,
        embedding_dim=config.model.embedding_dim,
        # Runs saved before the field existed used COLA's head.
        projection_head=config.model.get("projection_head", "cola"),
        similarity=config.model.similarity,
        temperature=config.model.temperature,
        **masks,
    )


def _classifier_model(config, frontend, encoder, masks) -> nn.Module:
    if config.supervised.num_classes < 1:
        raise ValueError("config.supervised.num_classes is not resolved: call resolve_supervised_task first")
    return supervised.ClassifierModel(frontend=frontend, encoder=encoder,
                                      num_classes=config.supervised.num_classes, **masks)


# The readers (tf.data among them) are imported when a stream is made, not with this module: the
# model's users (probe, embed, HEAR) build models without them.
def _pairs(config: ml_collections.ConfigDict, **stream):
    from leaf_ssl.data import streams
    return streams.pretraining_stream(config.data.train_shards, reader=config.data.get("reader", "auto"),
                                      seed=config.seed, noise_std=config.data.noise_std,
                                      shuffle_buffer=config.data.shuffle_buffer, **stream)


def _labelled_crops(config: ml_collections.ConfigDict, **stream):
    from leaf_ssl.data import streams
    return streams.labelled_stream(config.data.train_shards, reader=config.data.get("reader", "auto"),
                                   seed=config.seed, num_classes=config.supervised.num_classes,
                                   shuffle_buffer=config.data.shuffle_buffer, **stream)


register_objective(Objective(
    "cola", "self-supervised", "anchor", 2, configuration.pretraining_config, _cola_model,
    lambda config, negatives_axis: cola.train_objective(negatives_axis), _pairs))
register_objective(Objective(
    "supervised", "supervised", "audio", 1, configuration.supervised_config, _classifier_model,
    lambda config, negatives_axis: supervised.train_objective(config.supervised.multi_label), _labelled_crops))
