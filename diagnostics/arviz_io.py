"""Trace to ArviZ ``DataTree``, and safe netCDF files.

Every result file carries its provenance in the root attributes, as JSON
strings (netCDF attributes must be flat): ``surf_config`` (the full resolved
configuration, seed included), ``surf_versions`` (package versions),
``surf_kind`` (what wrote it) and ``surf_created``.
Files are written to a temporary name in the same folder and renamed, so a
reader never sees half a file, and an existing file is only replaced when the
caller says so.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import arviz_base as az  # conversion only: the diagnostics (arviz_stats) and plots load where used
import numpy as np
import xarray as xr

__all__ = [
    "trace_to_datatree",
    "save_datatree",
    "load_datatree",
    "versions",
    "provenance_attrs",
    "read_config",
    "atomic_write",
    "check_writable",
]

_PACKAGES = ("gradient-surfing", "jax", "jaxlib", "blackjax", "numpyro", "arviz", "optax", "numpy", "xarray")


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a result."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    commit = _git_commit()
    if commit:
        out["git_commit"] = commit
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent.parent
    if not (here / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def provenance_attrs(config: dict[str, Any], *, kind: str) -> dict[str, str]:
    """Root attributes every result file carries."""
    return {
        "surf_kind": kind,
        "surf_config": json.dumps(config, default=_json_default, sort_keys=True),
        "surf_versions": json.dumps(versions(), sort_keys=True),
        "surf_created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "surf_placement": json.dumps(_placement(), sort_keys=True),
    }


def _placement() -> dict[str, Any]:
    """Where the run ran (the draws do not depend on it; timings do)."""
    import jax

    from samplers.placement import default_devices

    return {
        "backend": jax.default_backend(),
        # at most: a run never uses more devices than it has chains
        "device_limit_per_process": default_devices() or jax.local_device_count(),
        "process_count": jax.process_count(),
    }


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def trace_to_datatree(trace, *, config: dict[str, Any], kind: str = "sample") -> xr.DataTree:
    """Turn a :class:`~samplers.run.Trace` into an ArviZ ``DataTree``.

    ``posterior`` holds what the target records per draw, ``sample_stats`` the
    sampler's per-step statistics (``diverging``, ``acceptance_rate``,
    ``energy``, ``lp``, ``is_finite``, ...), both with dims ``chain, draw``.
    Per-chain adapted parameters (step size, mass matrix) go to the
    ``surf_sampler_params`` attribute.
    """
    dims = {name: [f"{name}_dim_{i}" for i in range(v.ndim - 2)] for name, v in trace.draws.items()}
    dt = az.from_dict(
        {"posterior": dict(trace.draws), "sample_stats": dict(trace.stats)},
        dims=dims,
    )
    attrs = provenance_attrs(config, kind=kind)
    attrs["surf_sampler_params"] = json.dumps(
        {k: np.asarray(v).tolist() for k, v in trace.params.items()}
    )
    attrs["surf_timing"] = json.dumps(
        {"warmup_seconds": trace.warmup_seconds, "sampling_seconds": trace.sampling_seconds}
    )
    dt.attrs.update(attrs)
    return dt


def check_writable(path: str | os.PathLike, *, force: bool) -> Path:
    """Refuse an existing file without ``force`` and a folder we cannot write, before any work."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite it or choose another --out")
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name for --out")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is not a folder")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise PermissionError(f"cannot write {path}: {probe} is not writable")
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], *, force: bool) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path`` (same folder, so the rename is atomic).

    In a multi-process run (``surf --distributed``) only process 0 writes.
    """
    from samplers.placement import is_writer

    if not is_writer():
        return Path(path)
    path = check_writable(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        if path.exists() and not force:  # appeared while we worked
            raise FileExistsError(f"{path} appeared while writing; pass --force to overwrite it")
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return path


def save_datatree(dt: xr.DataTree, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``dt`` as netCDF (h5netcdf), atomically; ``force`` to replace a file."""
    return atomic_write(path, lambda tmp: dt.to_netcdf(tmp, engine="h5netcdf"), force=force)


def load_datatree(path: str | os.PathLike) -> xr.DataTree:
    """Load a result file this toolkit wrote, with a one-line error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such result file: {path}")
    try:
        dt = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as err:  # corrupt, truncated, not netCDF
        raise ValueError(
            f"{path} is not a readable netCDF file ({type(err).__name__}); was it truncated?"
        ) from None
    if "surf_config" not in dt.attrs:
        raise ValueError(f"{path} is a netCDF file but not a gradient-surfing result (no surf_config)")
    return dt


def read_config(dt: xr.DataTree) -> dict[str, Any]:
    """The configuration a result file was made with."""
    return json.loads(dt.attrs["surf_config"])
