"""Damaging a saved checkpoint the way storage does: bytes that change without a torn file."""
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp


def flip_bytes_in_params(step_dir: Path, count: int = 64) -> Path:
    """Inverts `count` bytes in the middle of one of the step's array data files, chosen so that
    the parameters change (what a reader of params alone must notice); returns the file.

    The file keeps its size and orbax still reads it: the arrays come back with other values,
    which only the digests recorded at save can tell. Files whose flip changes no parameter, or
    makes orbax fail, are put back.
    """
    original = _params(step_dir)
    for data in sorted(_data_files(step_dir), key=lambda p: -p.stat().st_size):
        saved = data.read_bytes()
        _flip(data, count)
        try:
            changed = any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(_params(step_dir)),
                                                                  jax.tree.leaves(original)))
        except Exception:  # this flip tore an index: not the silent damage wanted
            changed = False
        if changed:
            return data
        data.write_bytes(saved)
    raise AssertionError(f"no byte flip in {step_dir} changes a parameter silently")


def _data_files(step_dir: Path) -> list[Path]:
    return [p for p in (step_dir / "state").rglob("d/*") if p.is_file()]


def _params(step_dir: Path):
    return ocp.StandardCheckpointer().restore(step_dir / "state")["params"]


def _flip(data: Path, count: int) -> Path:
    raw = bytearray(data.read_bytes())
    middle = len(raw) // 2
    raw[middle:middle + count] = bytes(255 - byte for byte in raw[middle:middle + count])
    data.write_bytes(bytes(raw))
    return data
