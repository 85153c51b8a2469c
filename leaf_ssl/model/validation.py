"""`validate_config`: a config checked field by field before anything is compiled.

Every error is a `ConfigError` naming the field and what it accepts: an unknown field (against the
objective's schema, `objectives.OBJECTIVES`), a wrong type, a value out of range or not finite, a
frontend or encoder the factories refuse, a batch that does not divide over the devices.
"""
import math

import ml_collections

from leaf_ssl.data.streams import READERS
from leaf_ssl.encoders import factory as encoder_factory
from leaf_ssl.encoders.efficientnet import DEPTHWISE_IMPLS
from leaf_ssl.frontends import factory as frontend_factory
from leaf_ssl.model import cola, configuration
from leaf_ssl.model.configuration import BATCH_NORM_MODES, ENCODER_DTYPES, NEGATIVES, ConfigError
from leaf_ssl.model.objectives import OBJECTIVES


def _check_choice(path: str, value, choices):
    if value not in choices:
        raise ConfigError(f"config.{path}={value!r} is not valid; choose one of {list(choices)}")


def _check_positive(path: str, value, allow_zero: bool = False):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ConfigError(f"config.{path} must be a number, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"config.{path} must be {bound}, got {value!r}")


def _check_all_numbers_finite(config, prefix: str = ""):
    """NaN or inf in any numeric field (frontend and encoder arguments included) is an error:
    comparisons with NaN are all false, so range checks alone would let it through."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, (ml_collections.ConfigDict, dict)):
            _check_all_numbers_finite(value, prefix=f"{path}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config.{path}={value!r} is not a finite number")


def _check_no_unknown_fields(config, reference, prefix: str = ""):
    for key in config.keys():
        path = f"{prefix}{key}"
        if key not in reference:
            raise ConfigError(f"config.{path} is not a known field; known fields here: {sorted(reference.keys())}")
        if isinstance(reference[key], ml_collections.ConfigDict) and key not in ("frontend", "encoder"):
            _check_no_unknown_fields(config[key], reference[key], prefix=f"{path}.")


def validate_config(config: ml_collections.ConfigDict, num_devices: int, num_processes: int = 1) -> None:
    """Raises a ConfigError naming the first bad field. Call before any compile."""
    name = configuration.objective(config)
    _check_choice("objective", name, tuple(OBJECTIVES))
    supervised = name == "supervised"
    if supervised and "supervised" not in config:
        raise ConfigError("config.objective='supervised' needs a config.supervised section: start the config from "
                          "leaf_ssl.model.configuration.supervised_config()")
    _check_no_unknown_fields(config, OBJECTIVES[name].schema())
    _check_all_numbers_finite(config)
    if supervised and not config.supervised.task_dir:
        raise ConfigError("config.supervised.task_dir is empty: pass --config.supervised.task_dir=DIR (a folder "
                         "with task.json and train-*.tfrecord shards)")
    if "name" not in config.frontend:
        raise ConfigError("config.frontend.name is missing")
    if "name" not in config.encoder:
        raise ConfigError("config.encoder.name is missing")
    for section, make in (("frontend", frontend_factory.make_frontend), ("encoder", encoder_factory.make_encoder)):
        try:  # the constructors check names, fields and choices without building anything
            make(config[section])
        except ValueError as error:
            raise ConfigError(f"config.{section}: {error}") from error
    _check_choice("encoder.dtype", config.encoder.get("dtype", "float32"), ENCODER_DTYPES)
    _check_choice("encoder.depthwise_impl", config.encoder.get("depthwise_impl", "auto"), DEPTHWISE_IMPLS)
    _check_choice("model.negatives", config.model.negatives, NEGATIVES)
    try:
        cola.check_head(config.model.projection_head, config.model.similarity)
    except ValueError as error:
        raise ConfigError(f"config.{error}") from error
    _check_choice("train.batch_norm", config.train.batch_norm, BATCH_NORM_MODES)
    _check_choice("data.reader", config.data.get("reader", "auto"), READERS)
    for path in ("model.embedding_dim", "model.temperature", "data.sample_rate", "data.crop_seconds",
                 "data.shuffle_buffer", "train.batch_size", "train.base_learning_rate",
                 "train.log_every_steps", "train.checkpoint_every_steps", "train.keep_checkpoints",
                 "train.stop_check_every_steps"):
        section, field = path.split(".")
        _check_positive(path, config[section][field])
    for path in ("model.freq_masks", "model.freq_mask_width", "model.time_masks", "model.time_mask_width",
                 "data.noise_std", "data.num_clips", "train.num_epochs", "train.total_steps",
                 "train.warmup_epochs", "train.weight_decay", "train.max_consecutive_nonfinite"):
        section, field = path.split(".")
        _check_positive(path, config[section][field], allow_zero=True)
    if config.train.batch_size % num_devices:
        raise ConfigError(f"config.train.batch_size={config.train.batch_size} does not divide over "
                         f"{num_devices} devices; use a multiple of {num_devices}")
    if config.train.batch_size % num_processes:
        raise ConfigError(f"config.train.batch_size={config.train.batch_size} does not divide over "
                         f"{num_processes} processes; use a multiple of {num_processes}")
    if config.train.total_steps == 0 and config.train.num_epochs == 0:
        raise ConfigError("config.train.num_epochs and config.train.total_steps are both 0: nothing to train")
    if not config.data.train_shards and not supervised:
        raise ConfigError("config.data.train_shards is empty: pass --config.data.train_shards=DIR_OR_GLOB")
