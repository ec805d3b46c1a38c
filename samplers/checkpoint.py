"""Checkpoints as plain arrays plus JSON: never a pickle.

A checkpoint is ``NAME.npz``, written atomically, holding the leaves of a
pytree as ``leaf_0, leaf_1, ...`` (NumPy's format, loaded with
``allow_pickle=False``) and the metadata (configuration, step, versions) as
UTF-8 JSON bytes in ``meta_json``: one file, one rename, so a process killed
at any moment leaves either the old checkpoint or the new one, never a mix.
``NAME.json`` is a readable copy of the metadata, written after the arrays. The tree *structure* is not stored:
the reader supplies a template pytree of the same structure (for a sampler
state, ``jax.eval_shape`` of its init), so nothing executable is ever read
from disk.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from samplers.placement import is_writer

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_paths", "CheckpointError"]

FORMAT = "gradient-surfing-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, foreign or does not fit."""


def checkpoint_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """``(arrays.npz, meta.json)`` for a checkpoint path given with or without suffix."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    return stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_checkpoint(path: str | os.PathLike, tree: Any, meta: dict[str, Any]) -> Path:
    """Write the leaves of ``tree`` and ``meta`` (one atomic file) plus a readable JSON copy.

    In a multi-process run only process 0 writes (the others return the path).
    """
    npz_path, json_path = checkpoint_paths(path)
    if not is_writer():
        return npz_path
    leaves = [np.asarray(jax.device_get(x)) for x in jax.tree.leaves(tree)]
    for i, leaf in enumerate(leaves):
        if leaf.dtype == object:
            raise TypeError(f"checkpoint leaf {i} has dtype object; only numeric arrays are stored")
    full = {"format": FORMAT, "num_leaves": len(leaves), **meta}
    text = json.dumps(full, indent=1, default=_default)
    arrays = {f"leaf_{i}": leaf for i, leaf in enumerate(leaves)}
    arrays["meta_json"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def write_npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    _atomic(npz_path, write_npz)
    _atomic(json_path, lambda tmp: tmp.write_text(text))
    return npz_path


def _default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def load_checkpoint(path: str | os.PathLike, template: Any | None = None) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint; returns ``(tree or list of leaves, meta)``.

    With ``template`` the leaves are put back into its structure, after
    checking that their number and shapes match.
    """
    npz_path, _ = checkpoint_paths(path)
    if not npz_path.is_file():
        raise CheckpointError(f"no checkpoint at {npz_path}")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            if "meta_json" not in data.files:
                raise CheckpointError(f"{npz_path} is not a gradient-surfing checkpoint")
            meta = json.loads(bytes(data["meta_json"]).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise CheckpointError(f"{npz_path} is not a gradient-surfing checkpoint")
            leaves = [data[f"leaf_{i}"] for i in range(int(meta["num_leaves"]))]
    except CheckpointError:
        raise
    except Exception as err:  # zip errors, bad JSON, missing keys, a pickle refused
        raise CheckpointError(
            f"{npz_path} cannot be read ({type(err).__name__}); the checkpoint is corrupt or truncated"
        ) from None
    if template is None:
        return leaves, meta
    expected, treedef = jax.tree.flatten(template)
    if len(expected) != len(leaves):
        raise CheckpointError(f"checkpoint has {len(leaves)} arrays but this run needs {len(expected)}; was it made with other settings?")
    for i, (have, want) in enumerate(zip(leaves, expected, strict=True)):
        if tuple(have.shape) != tuple(np.shape(want)):
            raise CheckpointError(f"checkpoint array {i} has shape {have.shape}, this run needs {np.shape(want)}; was it made with other settings?")
    return jax.tree.unflatten(treedef, leaves), meta
