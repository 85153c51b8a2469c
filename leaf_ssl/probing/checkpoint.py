"""The frozen model a probe reads: a run's checkpoint, or the same architecture untrained.

Accepted `--ckpt` forms:

* a run's workdir (holding `checkpoints/`), its `checkpoints/` folder, or one step folder
  `checkpoints/<step>`. For the first two the newest step is used; a step that cannot be read
  (interrupted write, truncated files, arrays that do not match their saved digests) is skipped
  with a warning and the previous one is used. A step that vanishes while it is read (a
  running trainer rotated it away) is no failure: the steps are listed again and the newest
  is read. A step folder named explicitly is used as is, and an unreadable one is an error.
* `random:<config file>[:<args>]`, e.g. `random:configs/demo.py:leaf,random`: the untrained
  floor. Its variables are exactly those a training run of that config starts from (same seed,
  same key split as `trainer.create_train_state`).
* `random:<run workdir>`: the same floor for the config a run saved in its `config.json`, so
  a run started with command-line overrides has its own floor.

Only `params` and `batch_stats` are kept: no optimizer is built, so a checkpoint restores
whatever optimizer wrote it. The model is rebuilt from the config saved in the step's meta
(or the workdir's `config.json`), and the restored parameter shapes are checked against the
rebuilt model before anything runs, so a checkpoint of another architecture is refused with
the first differing parameter named.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import jax
import ml_collections
import orbax.checkpoint as ocp

from leaf_ssl import checkpointing, cola, experiment, trainer

logger = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"
BATCH_NORM_AS_SAVED = "as saved"


@dataclasses.dataclass(frozen=True)
class FrozenModel:
    """A model and the variables it is evaluated with (never updated).

    Attributes:
      model: the COLA model rebuilt from `config` (single-program BatchNorm).
      variables: {'params': ..., 'batch_stats': ...} on the default device.
      config: the config the model was built from.
      source: what was loaded: the resolved step folder, or the `random:` spec.
      step: the checkpoint's step (0 for the untrained floor).
      batch_norm: where the BatchNorm statistics come from: 'as saved' (the checkpoint's, or
        the initial ones of `random:`), or a description of their re-estimation
        (`probing.batch_norm`).
    """

    model: cola.ColaModel
    variables: dict
    config: ml_collections.ConfigDict
    source: str
    step: int
    batch_norm: str = BATCH_NORM_AS_SAVED

    @property
    def trained(self) -> bool:
        return not self.source.startswith(RANDOM_PREFIX)

    @property
    def window_samples(self) -> int:
        """Samples per window the frozen model embeds: its training crop (0.96 s by default).

        Windows of the length the encoder was trained on: its 'SAME'-padded stride-2 convolutions
        and global pooling see edge positions only at that length. Measured on the demo keyword
        task, a supervised tiny-EfficientNet classifier scores 53% on 0.96 s windows of its own
        test clips and 29% on 1 s ones (the extra 40 ms is silence)."""
        return experiment.crop_samples(self.config)


def load_frozen_model(spec: str) -> FrozenModel:
    """Restores `spec` (see module docstring). Raises CheckpointError with a readable reason."""
    if spec.startswith(RANDOM_PREFIX):
        return untrained_model(spec)
    path = Path(spec).expanduser().absolute()  # orbax reads nothing through a relative path
    if not path.exists():
        raise checkpointing.CheckpointError(f"checkpoint path {path} does not exist")
    if _is_step_folder(path):
        return _restore_step(path)
    checkpoints = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    failures, tried = [], set()
    while True:
        untried = [step_dir for step_dir in _step_folders(checkpoints) if step_dir not in tried]
        if not untried:
            break
        step_dir = untried[0]
        tried.add(step_dir)
        try:
            return _restore_step(step_dir)
        except checkpointing.ArchitectureMismatch:
            raise
        except checkpointing.CheckpointError as error:
            if not step_dir.exists():
                logger.info("checkpoint %s was removed while it was read (rotated by its trainer); listing again",
                            step_dir)
                continue
            failures.append(str(error))
            logger.warning("%s; trying the previous step", error)
    if not failures:
        raise checkpointing.CheckpointError(
            f"no checkpoint in {path}: expected a run workdir, its checkpoints/ folder or a step folder "
            f"checkpoints/<step> holding state/ and meta/")
    raise checkpointing.CheckpointError(f"no readable checkpoint in {path}:\n  " + "\n  ".join(failures))


def _step_folders(checkpoints: Path) -> list[Path]:
    """The step folders under `checkpoints`, newest first."""
    if not checkpoints.is_dir():
        return []
    return sorted((p for p in checkpoints.iterdir() if _is_step_folder(p)), key=lambda p: int(p.name), reverse=True)


def untrained_model(spec: str) -> FrozenModel:
    """The `random:<config file>[:<args>]` floor: the initial variables of a run of that config."""
    config = load_config_spec(spec[len(RANDOM_PREFIX):])
    try:
        config = experiment.resolve_supervised_task(config)
    except (OSError, ValueError) as error:
        raise checkpointing.CheckpointError(f"{spec}: {error}") from error
    model = experiment.build_model(config, data_parallel=False)
    # trainer.create_train_state splits key(seed) into (init, step) keys: reuse its init key.
    init_key, _ = jax.random.split(jax.random.key(config.seed))
    variables = jax.jit(lambda key: trainer.init_variables(model, key, experiment.crop_samples(config)))(init_key)
    return FrozenModel(model, _params_and_batch_stats(variables), config, spec, step=0)


def load_config_spec(spec: str) -> ml_collections.ConfigDict:
    """`path/to/config.py[:args]` -> the config its get_config(args) returns; a run's workdir ->
    the config it saved."""
    if Path(spec).is_dir():
        config_json = Path(spec) / "config.json"
        if not config_json.is_file():
            raise checkpointing.CheckpointError(f"{spec} (from {RANDOM_PREFIX}{spec}) has no config.json: not a run's "
                                                "workdir")
        return ml_collections.ConfigDict(json.loads(config_json.read_text()))
    file_name, _, argument = spec.partition(":")
    path = Path(file_name)
    if not path.is_file():
        raise checkpointing.CheckpointError(f"config file {path} (from {RANDOM_PREFIX}{spec}) does not exist")
    module_spec = importlib.util.spec_from_file_location(f"probe_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    try:
        return module.get_config(argument or None)
    except ValueError as error:  # e.g. an argument the config file does not take
        raise checkpointing.CheckpointError(f"{RANDOM_PREFIX}{spec}: {error}") from error


def _is_step_folder(path: Path) -> bool:
    return path.is_dir() and path.name.isdigit() and (path / checkpointing.STATE_ITEM).is_dir()


def _read_config(step_dir: Path) -> tuple[ml_collections.ConfigDict, dict]:
    """The step's meta and the config in it, or else the workdir's config.json."""
    meta_path = step_dir / checkpointing.META_ITEM
    meta: dict = {}
    if meta_path.is_dir():
        meta = ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(meta_path)
    config = meta.get("config")
    if config is None:
        config_json = step_dir.parent.parent / "config.json"
        if not config_json.is_file():
            raise checkpointing.CheckpointError(
                f"checkpoint {step_dir} has no saved config (no meta, no {config_json}): cannot rebuild its model")
        config = json.loads(config_json.read_text())
    return ml_collections.ConfigDict(config), meta


def _restore_step(step_dir: Path) -> FrozenModel:
    try:
        config, meta = _read_config(step_dir)
    except checkpointing.CheckpointError:
        raise
    except Exception as error:  # orbax raises many types for torn files
        raise checkpointing.CheckpointError(f"checkpoint {step_dir} meta is unreadable ({type(error).__name__}: "
                                            f"{str(error)[:200]})") from error
    model = experiment.build_model(config, data_parallel=False)
    crop = experiment.crop_samples(config)
    expected = checkpointing.param_shapes(
        jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"])
    recorded = meta.get("param_shapes")
    if recorded is not None:
        mismatch = checkpointing.describe_shape_mismatch(expected, recorded)
        if mismatch:
            raise checkpointing.ArchitectureMismatch(f"checkpoint {step_dir} is of another architecture than its "
                                                     f"saved config builds: {mismatch}")
    variables = _restore_variables(step_dir)
    mismatch = checkpointing.describe_shape_mismatch(expected, checkpointing.param_shapes(variables["params"]))
    if mismatch:
        raise checkpointing.ArchitectureMismatch(f"checkpoint {step_dir} is of another architecture: {mismatch}")
    if "digests" in meta:
        corrupt = checkpointing.digest_mismatch(meta["digests"], variables)
        if corrupt:
            raise checkpointing.CheckpointError(f"checkpoint {step_dir} is corrupt: {corrupt}")
    return FrozenModel(model, variables, config, str(step_dir.resolve()), step=int(step_dir.name))


def _restore_variables(step_dir: Path) -> dict:
    """params and batch_stats of a step, placed on the default device whatever mesh saved them."""
    state_dir = step_dir / checkpointing.STATE_ITEM
    checkpointer = ocp.StandardCheckpointer()
    try:
        tree = checkpointer.metadata(state_dir).item_metadata
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
                              dict(tree))
        state = checkpointer.restore(state_dir, target)
    except Exception as error:  # orbax raises many types for torn or truncated files
        raise checkpointing.CheckpointError(f"checkpoint {step_dir} is unreadable ({type(error).__name__}: "
                                            f"{str(error)[:200]})") from error
    finally:
        checkpointer.close()
    if "params" not in state:
        raise checkpointing.CheckpointError(f"checkpoint {step_dir} holds no 'params'")
    return _params_and_batch_stats(state)


def _params_and_batch_stats(tree: Any) -> dict:
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats", {})}
