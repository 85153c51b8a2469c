"""Orbax checkpoints of a training run: the train state plus a JSON record of what it is.

Layout under the run's workdir:

    checkpoints/<step>/state/   TrainState arrays (params, batch_stats, opt_state, step, rng, ...)
    checkpoints/<step>/meta/    JSON: resolved config, data position, parameter shapes
    config.json                 the resolved config, for people and for jobs given only a workdir

The parameter shapes in `meta` let a restore refuse, with a readable message, a checkpoint of
another architecture before orbax is asked to fit mismatched arrays. `meta` also holds a SHA-256
digest of every array saved (`array_digests`); every restore recomputes them, so a checkpoint
whose bytes changed after the save (a flipped bit on disk, a bad copy) is caught, not run. A
latest checkpoint that cannot be read (killed mid-write, truncated files) or whose digests do
not match is reported, moved to `unreadable_checkpoints/`, and the previous one is used.

Paths may be local or on cloud storage (``gs://bucket/run``): `etils.epath` and orbax handle
both, so a pod's processes write one checkpoint into a bucket together.
"""
import hashlib
import json
import logging
import os
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from leaf_ssl.training import distributed

STATE_ITEM = "state"
META_ITEM = "meta"
UNREADABLE_DIR = "unreadable_checkpoints"  # beside checkpoints/: the steps that failed to restore


def resolve_dir(path: str | os.PathLike) -> epath.Path:
    """A run folder as an absolute path (orbax refuses relative ones); cloud URLs are kept as they are."""
    path = os.fspath(path)
    return epath.Path(path if "://" in path else os.path.abspath(path))


def param_shapes(params) -> dict[str, list[int]]:
    """{'frontend/filterbank/gabor': [40, 2], ...}: the architecture as JSON."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"/".join(str(getattr(k, "key", k)) for k in path): list(leaf.shape) for path, leaf in flat}


def describe_shape_mismatch(expected: dict, found: dict) -> str | None:
    """First difference between two `param_shapes` records, in words, or None."""
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            return f"the model has parameter {name} {expected[name]} but the checkpoint does not"
        if name not in expected:
            return f"the checkpoint has parameter {name} {found[name]} that the model does not"
        if list(expected[name]) != list(found[name]):
            return f"parameter {name} has shape {found[name]} in the checkpoint but {expected[name]} in the model"
    return None


def _leaf_name(path) -> str:
    """'params/frontend/filterbank/gabor' for a key path, whatever containers hold the leaf
    (a dataclass saved by training, the nested dicts a reader restores it as)."""
    parts = (getattr(key, "name", getattr(key, "key", getattr(key, "idx", key))) for key in path)
    return "/".join(str(part) for part in parts)


def _host_array(leaf) -> np.ndarray:
    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        leaf = leaf.addressable_data(0)  # the state is replicated: any local copy is the whole array
    return np.ascontiguousarray(np.asarray(leaf))


def host_arrays(tree) -> dict[str, np.ndarray]:
    """{leaf name: the leaf on the host} for every array of `tree`; a flat tree of the same names, so the
    checks below take it in place of `tree` when one host copy must serve several of them."""
    return {_leaf_name(path): _host_array(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def array_digests(tree) -> dict[str, str]:
    """{leaf name: SHA-256 of its dtype, shape and bytes} for every array of `tree`."""
    digests = {}
    for name, array in host_arrays(tree).items():
        digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.reshape(-1).view(np.uint8))
        digests[name] = digest.hexdigest()
    return digests


def digest_mismatch(recorded: dict[str, str], tree) -> str | None:
    """The first array of `tree` whose digest differs from the one recorded at save, in words, or
    None. Arrays of `tree` must all have been recorded (a reader may restore fewer than saved)."""
    for name, digest in array_digests(tree).items():
        if name not in recorded:
            return f"array {name} has no digest recorded at save"
        if recorded[name] != digest:
            return f"array {name} does not match the digest recorded at save (its bytes changed on storage)"
    return None


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or of another architecture."""


class ArchitectureMismatch(CheckpointError):
    """A checkpoint of another architecture than the model: its older steps would mismatch too,
    so readers never fall back past it."""


class CorruptCheckpoint(CheckpointError):
    """A checkpoint that restored, but whose arrays are not the bytes that were saved."""


# --- Reading one step: what training's resume and every frozen-model reader share ----------------


def is_step_folder(path: epath.Path) -> bool:
    return path.name.isdigit() and (path / STATE_ITEM).is_dir()


def step_folders(directory: epath.Path) -> list[epath.Path]:
    """The step folders under a `checkpoints/` folder, newest first (none if it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if is_step_folder(p)), key=lambda p: int(p.name), reverse=True)


def read_meta(step_dir: epath.Path) -> dict:
    """The step's JSON record (config, data position, parameter shapes, digests); {} if it has none."""
    meta_dir = step_dir / META_ITEM
    if not meta_dir.is_dir():
        return {}
    return ocp.Checkpointer(ocp.JsonCheckpointHandler()).restore(meta_dir)


class _WithoutItemMetadataNotice(logging.Filter):
    """Drops orbax's warning that the state item's folder has no `_CHECKPOINT_METADATA`: the
    CheckpointManager writes that file one level up, in the step folder, so every restore of an
    item alone would warn about a file that is where it should be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Metadata file does not exist: %s"


def restore_step(step_dir: epath.Path, meta: dict, expected_shapes: dict, target: Any = None) -> Any:
    """The step's saved tree, checked before and after the read.

    Refuses a checkpoint of another architecture (its recorded parameter shapes, then the restored
    ones, against `expected_shapes`) and one whose arrays do not match their recorded digests.
    `target`: ShapeDtypeStructs (with shardings) of the tree to restore, e.g. the train state on a
    mesh; None restores whatever was saved onto the default device.
    """
    mismatch = describe_shape_mismatch(expected_shapes, meta.get("param_shapes", expected_shapes))
    if mismatch:
        raise ArchitectureMismatch(f"checkpoint {step_dir} is of another architecture: {mismatch}")
    checkpointer = ocp.StandardCheckpointer()
    quiet = _WithoutItemMetadataNotice()
    logging.getLogger("absl").addFilter(quiet)
    try:
        if target is None:
            device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
            saved = checkpointer.metadata(step_dir / STATE_ITEM).item_metadata
            if saved is None:
                raise CheckpointError(f"checkpoint {step_dir} is unreadable: orbax found no description of its "
                                      f"arrays (its {STATE_ITEM}/_METADATA or {STATE_ITEM}/manifest.ocdbt is "
                                      "missing or damaged)")
            target = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
                                  dict(saved))
        restored = checkpointer.restore(step_dir / STATE_ITEM, target)
    finally:
        checkpointer.close()
        logging.getLogger("absl").removeFilter(quiet)
    params = restored.get("params") if isinstance(restored, dict) else getattr(restored, "params", None)
    if params is None:
        raise CheckpointError(f"checkpoint {step_dir} holds no 'params'")
    mismatch = describe_shape_mismatch(expected_shapes, param_shapes(params))
    if mismatch:
        raise ArchitectureMismatch(f"checkpoint {step_dir} is of another architecture: {mismatch}")
    arrays = host_arrays(restored)  # one host copy for both checks below
    if "digests" in meta:
        corrupt = digest_mismatch(meta["digests"], arrays)
        if corrupt:
            raise CorruptCheckpoint(f"checkpoint {step_dir} is corrupt: {corrupt}")
    else:  # written before digests were recorded, or its meta/ folder is gone: say so, every time
        logging.warning("checkpoint %s has no recorded digests%s: its arrays cannot be checked against what was "
                        "saved", step_dir, "" if meta else " (no meta/ folder)")
    # Training saves only states checked finite, so a non-finite array is damage whatever the digests say.
    nonfinite = first_nonfinite_array(arrays)
    if nonfinite:
        raise CorruptCheckpoint(f"checkpoint {step_dir} is corrupt: {nonfinite}")
    return restored


def first_nonfinite_array(tree) -> str | None:
    """'array <name> holds N non-finite values' for the first floating array of `tree` with NaN or Inf, or None."""
    for name, array in host_arrays(tree).items():
        if jax.dtypes.issubdtype(array.dtype, np.floating):  # bfloat16 included
            count = int(array.size - np.count_nonzero(np.isfinite(array.astype(np.float32))))
            if count:
                return f"array {name} holds {count} non-finite values"
    return None


class CheckpointSaveError(RuntimeError):
    """A save that failed (a full disk, lost permissions), in one line: the cause and the step that is safe."""


def _save_failure_cause(error: Exception) -> str:
    text = str(error)
    if "No space left" in text or "os_error_code='28'" in text:
        return "no space left on the device"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:300]


def _save_whole_arrays() -> None:
    """Every array saved whole, by the process holding its first replica. Orbax's default splits a
    replicated array into one slice per device, each a dispatched (and, at the first save, compiled)
    slice op: for a data-parallel state of a few tens of MB that costs more than it spreads
    (docs/performance.md, "Checkpoint saves")."""
    ocp.type_handlers.register_type_handler(jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False),
                                            override=True)


class CheckpointStore:
    """Async orbax CheckpointManager over `<workdir>/checkpoints`, keeping the last `keep`."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3, async_save: bool = True):
        self.directory = resolve_dir(directory)
        _save_whole_arrays()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save,
                                               create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=(STATE_ITEM, META_ITEM))
        self._saving: int | None = None  # the step of the save in flight
        self._failed = False

    def _save_failed(self, error: Exception) -> CheckpointSaveError:
        """The one-line error of a failed save; orbax's own lines about it add nothing to it."""
        self._failed = True
        complete = [int(path.name) for path in step_folders(self.directory) if int(path.name) != self._saving]
        safe = (f"the newest complete checkpoint is step {complete[0]}: free space and run the same command "
                "to resume from it") if complete else "no complete checkpoint exists yet"
        return CheckpointSaveError(f"saving step {self._saving} in {self.directory} failed: "
                                   f"{_save_failure_cause(error)}; {safe}")

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Starts an async save of `state`, and `meta` with the state's array digests added;
        `wait()` blocks until it is on disk."""
        meta = {**meta, "digests": array_digests(state)}
        self.wait()  # orbax waits for the previous save anyway; a failure of it is then reported as its own
        self._saving = step
        try:
            self._manager.save(step, args=ocp.args.Composite(
                **{STATE_ITEM: ocp.args.StandardSave(state), META_ITEM: ocp.args.JsonSave(meta)}), force=True)
        except Exception as error:
            raise self._save_failed(error) from error

    def restore(self, step: int, abstract_state: Any, expected_shapes: dict) -> tuple[Any, dict]:
        """State and meta of `step`, checked as `restore_step` checks them."""
        step_dir = self.directory / str(step)
        meta = read_meta(step_dir)
        return restore_step(step_dir, meta, expected_shapes, abstract_state), meta

    def restore_latest_readable(self, abstract_state: Any, expected_shapes: dict) -> tuple[Any, dict] | None:
        """The newest checkpoint that restores, falling back past unreadable ones; None if none exist.

        An architecture mismatch is not a fallback case: it is raised at once, since older
        checkpoints of the same workdir would mismatch too.
        """
        for step in reversed(self.all_steps()):
            try:
                return self.restore(step, abstract_state, expected_shapes)
            except ArchitectureMismatch:
                raise
            except Exception as error:  # orbax raises many types for torn or truncated files; or corrupt
                aside = self._set_aside(step)
                logging.warning("checkpoint %s/%d is unreadable (%s: %s); moved to %s, trying the previous one",
                                self.directory, step, type(error).__name__, str(error)[:300], aside)
        return None

    def _set_aside(self, step: int) -> epath.Path:
        """Moves an unreadable step out of the manager's folder (kept for inspection), so the
        resumed run can write that step again. Process 0 moves it; the others wait for it."""
        aside = self.directory.parent / UNREADABLE_DIR / f"{step}-{int(time.time())}"
        if jax.process_index() == 0:
            aside.parent.mkdir(parents=True, exist_ok=True)
            (self.directory / str(step)).rename(aside)
        distributed.wait_for_all(f"unreadable checkpoint {step} set aside")
        self._manager.reload()
        return aside

    def wait(self) -> None:
        try:
            self._manager.wait_until_finished()
        except Exception as error:
            raise self._save_failed(error) from error
        self._saving = None

    def close(self) -> None:
        try:
            self._manager.close()
        except Exception:
            if not self._failed:  # after a failed save, closing reports that failure again
                raise


def write_config_json(workdir: str | os.PathLike, config_dict: dict) -> None:
    path = resolve_dir(workdir) / "config.json"
    path.write_text(json.dumps(config_dict, indent=2, sort_keys=True))
