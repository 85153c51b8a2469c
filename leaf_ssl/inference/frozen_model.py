"""The frozen model a probe reads: a run's checkpoint, or the same architecture untrained.

Accepted `--ckpt` forms:

* a run's workdir (holding `checkpoints/`), its `checkpoints/` folder, or one step folder
  `checkpoints/<step>`, wherever training wrote them: a local path (relative or absolute) or a
  `gs://bucket/runs/x` URI, read through etils.epath and orbax by the step reader training
  resumes with (`training.checkpointing.restore_step`). For the first two the newest step is
  used; a step that cannot be read (interrupted write, truncated files, arrays that do not match
  their saved digests) is skipped with a warning and the previous one is used. A step that vanishes while it is read (a
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
import os
from pathlib import Path
from typing import Any, Callable

import jax
import ml_collections
from etils import epath

from leaf_ssl.training import checkpointing, trainer
from leaf_ssl.model import build, cola, configuration

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
      run_dir: the workdir of the run the checkpoint belongs to (None for `random:` and for a
        step folder outside a run's `checkpoints/`).
      batch_norm: where the BatchNorm statistics come from: 'as saved' (the checkpoint's, or
        the initial ones of `random:`), or a description of their re-estimation
        (`evaluation.batch_norm`).
      run_id: the id of the run that saved the checkpoint (`training.run_history`; None for
        `random:` and for checkpoints saved before runs had ids).
    """

    model: cola.ColaModel
    variables: dict
    config: ml_collections.ConfigDict
    source: str
    step: int
    run_dir: str | None = None
    batch_norm: str = BATCH_NORM_AS_SAVED
    run_id: str | None = None

    @property
    def trained(self) -> bool:
        return not self.source.startswith(RANDOM_PREFIX)

    @property
    def window_samples(self) -> int:
        """Samples per window the frozen model embeds: its training crop (0.96 s by default).

        Windows of the length the encoder was trained on: its 'SAME'-padded stride-2 convolutions
        and global pooling see edge positions only at that length, and other lengths cost
        accuracy (docs/results.md)."""
        return build.crop_samples(self.config)


ConfigChange = Callable[[ml_collections.ConfigDict], ml_collections.ConfigDict]


def load_frozen_model(spec: str, *, configure: ConfigChange | None = None) -> FrozenModel:
    """Restores `spec` (see module docstring). Raises CheckpointError with a readable reason.

    configure: for a `random:` spec, changes its config before the model is built (the command
    lines' `--config.x=y` overrides); a checkpoint's architecture is its own, so refused there.
    """
    if spec.startswith(RANDOM_PREFIX):
        return untrained_model(spec, configure)
    if configure is not None:
        raise checkpointing.CheckpointError(f"config overrides apply to {RANDOM_PREFIX} specs only, not to the "
                                            f"checkpoint {spec}, whose architecture is saved with it")
    path = _as_path(spec)
    if not path.exists():
        raise checkpointing.CheckpointError(f"checkpoint path {path} does not exist")
    if checkpointing.is_step_folder(path):
        return _restore(path)
    checkpoints = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    failures, tried = [], set()
    while True:
        untried = [step_dir for step_dir in checkpointing.step_folders(checkpoints) if step_dir not in tried]
        if not untried:
            break
        step_dir = untried[0]
        tried.add(step_dir)
        try:
            return _restore(step_dir)
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


def _as_path(spec: str) -> epath.Path:
    """A local path made absolute (orbax reads nothing through a relative one); a URI as it is."""
    return checkpointing.resolve_dir(spec if "://" in spec else os.path.expanduser(spec))


def untrained_model(spec: str, configure: ConfigChange | None = None) -> FrozenModel:
    """The `random:<config file>[:<args>]` floor: the initial variables of a run of that config
    (changed by `configure` first, if given)."""
    config = load_config_spec(spec[len(RANDOM_PREFIX):])
    try:
        if configure is not None:
            config = configure(config)
        config = build.resolve_supervised_task(config)
    except (OSError, ValueError) as error:
        raise checkpointing.CheckpointError(f"{spec}: {error}") from error
    model = build.build_model(config, data_parallel=False)
    # trainer.create_train_state splits key(seed) into (init, step) keys: reuse its init key.
    init_key, _ = jax.random.split(jax.random.key(config.seed))
    variables = jax.jit(lambda key: trainer.init_variables(model, key, build.crop_samples(config)))(init_key)
    return FrozenModel(model, _params_and_batch_stats(variables), config, spec, step=0)


def load_config_spec(spec: str) -> ml_collections.ConfigDict:
    """`path/to/config.py[:args]` -> the config its get_config(args) returns; a run's workdir (local
    or a URI) -> the config it saved."""
    run = _as_path(spec)
    if run.is_dir():
        config_json = run / "config.json"
        if not config_json.is_file():
            raise checkpointing.CheckpointError(f"{spec} (from {RANDOM_PREFIX}{spec}) has no config.json: not a run's "
                                                "workdir")
        saved = ml_collections.ConfigDict(json.loads(config_json.read_text()))
        return configuration.with_readers_compute_paths(saved)
    file_name, _, argument = spec.partition(":")
    path = Path(file_name)
    if not path.is_file():
        raise checkpointing.CheckpointError(f"config file {path} (from {RANDOM_PREFIX}{spec}) does not exist")
    module_spec = importlib.util.spec_from_file_location(f"probe_config_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:  # the config file's own code failed: a syntax error, an import
        raise checkpointing.CheckpointError(f"config file {path} failed to load: {type(error).__name__}: {error}") \
            from error
    try:
        return module.get_config(argument or None)
    except ValueError as error:  # e.g. an argument the config file does not take
        raise checkpointing.CheckpointError(f"{RANDOM_PREFIX}{spec}: {error}") from error


def _run_dir(step_dir: epath.Path) -> epath.Path | None:
    return step_dir.parent.parent if step_dir.parent.name == "checkpoints" else None


def _read_config(step_dir: epath.Path) -> tuple[ml_collections.ConfigDict, dict]:
    """The step's meta and the config in it, or else the workdir's config.json."""
    meta = checkpointing.read_meta(step_dir)
    config = meta.get("config")
    if config is None:
        config_json = step_dir.parent.parent / "config.json"
        if not config_json.is_file():
            raise checkpointing.CheckpointError(
                f"checkpoint {step_dir} has no saved config (no meta, no {config_json}): cannot rebuild its model")
        config = json.loads(config_json.read_text())
    return configuration.with_readers_compute_paths(ml_collections.ConfigDict(config)), meta


def _restore(step_dir: epath.Path) -> FrozenModel:
    try:
        config, meta = _read_config(step_dir)
    except checkpointing.CheckpointError:
        raise
    except Exception as error:  # orbax raises many types for torn files
        raise checkpointing.CheckpointError(f"checkpoint {step_dir} meta is unreadable ({type(error).__name__}: "
                                            f"{str(error)[:200]})") from error
    model = build.build_model(config, data_parallel=False)
    crop = build.crop_samples(config)
    expected = checkpointing.param_shapes(
        jax.eval_shape(lambda: trainer.init_variables(model, jax.random.key(0), crop))["params"])
    try:
        state = checkpointing.restore_step(step_dir, meta, expected)
    except checkpointing.CheckpointError:
        raise
    except Exception as error:  # orbax raises many types for torn or truncated files
        raise checkpointing.CheckpointError(f"checkpoint {step_dir} is unreadable ({type(error).__name__}: "
                                            f"{str(error)[:200]})") from error
    run_dir = _run_dir(step_dir)
    return FrozenModel(model, _params_and_batch_stats(state), config, str(step_dir), step=int(step_dir.name),
                       run_dir=None if run_dir is None else str(run_dir), run_id=meta.get("run_id"))


def _params_and_batch_stats(tree: Any) -> dict:
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats", {})}
