"""Traced programs kept across processes, so a repeated run skips tracing.

JAX's persistent compilation cache (``surf.common.enable_compilation_cache``)
skips XLA's compilation, but it is keyed by the lowered program: every run
still traces the sampler in Python and lowers it first. For NUTS with window
adaptation that is most of what a repeated ``surf sample`` spends inside the
process. This module keeps the traced program itself: the run loop hands
:func:`compile_program` a jitted function, its arguments and *facts* that
determine the function completely (the run's configuration); the function is
exported with :func:`jax.export.export` and its serialized StableHLO stored in
``<compilation cache>/programs``. A later run with the same facts deserializes
it and compiles ``exported.call`` (a persistent-cache hit) without tracing.

What the key holds, so a stored program is never used for a different one:
the caller's facts (JSON), the program's role, the argument shapes and dtypes,
the versions of the packages that shape the program (jax, jaxlib, blackjax,
numpyro, optax), a digest of this package's own source files, every JAX option
that JAX itself counts in its trace context (x64, Threefry partitioning,
accurate ``erf_inv``, matmul precision, ...) plus the PRNG implementation, and
the backend. Facts must have an exact JSON form (numbers, strings, lists,
dicts; arrays by their bytes' digest); anything else is not stored. Callers pass facts only when their configuration
does determine the program: the CLI does so for built-in models, never for a
user's ``--loss`` or ``--numpyro`` file (its code can change between runs
without its name changing).

The first run goes through the same exported program as later runs, so a
run's draws do not depend on whether its program came from the store; they
also equal those of a traced run (tested). A missing, unreadable or corrupt
entry is traced again and rewritten; a program that cannot be exported (an
unsupported pytree, a host callback) is compiled directly as before.

Files are plain bytes: a header line of JSON (the key, the NamedTuple types of
its pytrees, the SHA-256 of the rest) and JAX's flatbuffer serialization. An
entry whose checksum fails, or that JAX cannot compile, is dropped and traced
again. Nothing is pickled.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib
import json
import os
import tempfile
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["compile_program", "program_folder"]

_MAGIC = b"surf-program 1\n"
_PACKAGES = ("jax", "jaxlib", "blackjax", "numpyro", "optax")
_OPTIONS = (
    "jax_enable_x64",
    "jax_default_prng_impl",
    "jax_threefry_partitionable",
    "jax_default_matmul_precision",
)
# Modules whose NamedTuples may appear in a stored program's pytrees (imported on load).
_TYPE_MODULES = ("blackjax.", "jax.", "optax.", "numpyro.", "samplers.", "models.", "diagnostics.")
_LOCK = threading.Lock()
_DIGEST_LOCKS: dict[str, threading.Lock] = {}
_DIRECT = object()  # marks a program that cannot be exported
_EXPORTED: dict[str, Any] = {}  # this process's programs by key, so each is read or traced once


def program_folder() -> Path | None:
    """``<compilation cache>/programs``, or ``None`` when no compilation cache is enabled."""
    root = jax.config.jax_compilation_cache_dir
    return None if not root else Path(root) / "programs"


def _tree_digest(root: Path, packages=("samplers", "models", "diagnostics", "surf")) -> str:
    """SHA-256 over the Python sources of ``packages`` under ``root``."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
    """This package's sources (a code change invalidates every entry)."""
    return _tree_digest(Path(__file__).resolve().parent.parent)


class _NotStorable(TypeError):
    """A fact or value with no exact, stable JSON form: the program is not stored."""


def _plain(value: Any) -> Any:
    """``value`` as exact JSON (no repr that rounds, truncates or holds an address)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value  # json writes floats with repr, which round-trips exactly
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NotStorable(f"a dict with non-string keys: {list(value)[:3]}")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json.dumps(_plain(v), sort_keys=True) for v in value)
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": str(data.dtype), "shape": list(data.shape), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    raise _NotStorable(f"no exact JSON form for {type(value).__name__}")


def _jax_options() -> dict[str, Any]:
    """Every JAX option that enters tracing (JAX's own trace-context list), else a known few."""
    try:
        from jax._src.config import trace_context, trace_context_names

        pairs = [(n, v) for n, v in zip(trace_context_names(), trace_context(), strict=True) if n.startswith("jax_")]
    except Exception:  # noqa: BLE001 - a JAX without the list: the options known to change numerics
        pairs = [(n, getattr(jax.config, n)) for n in _OPTIONS]
    out = {}
    for name, value in pairs:
        try:
            out[name] = _plain(value)
        except _NotStorable:
            text = str(value)
            if " at 0x" in text:
                raise
            out[name] = f"{type(value).__name__}:{text}"
    for name in _OPTIONS:  # not all of these are trace-context options
        out.setdefault(name, _plain(getattr(jax.config, name)))
    return out


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _avals(args) -> list:
    leaves, treedef = jax.tree.flatten(args)
    return [str(treedef)] + [[list(jax.numpy.shape(x)), str(jax.numpy.result_type(x))] for x in leaves]


def _key(role: str, facts: Any, args) -> tuple[str, dict[str, Any]]:
    """``(digest, record)``; raises :class:`_NotStorable` when the facts have no exact JSON form."""
    backend = jax.devices()[0]
    record = {
        "role": role,
        "facts": _plain(facts),
        "arguments": _avals(args),
        "versions": _versions(),
        "source": _source_digest(),
        "options": _jax_options(),
        "backend": [backend.platform, backend.device_kind],
    }
    return hashlib.sha256(_dumps(record).encode()).hexdigest()[:32], record


def _dumps(record: Any) -> str:
    return json.dumps(record, sort_keys=True, allow_nan=True)


def _namedtuples(treedef) -> set[type]:
    """Every NamedTuple type among the nodes of ``treedef``."""
    found: set[type] = set()

    def walk(node):
        data = node.node_data()
        if data is not None:
            kind = data[0]
            if isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields"):
                found.add(kind)
        for child in node.children():
            walk(child)

    walk(treedef)
    return found


def _type_name(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


def _register(kind: type) -> None:
    with _LOCK:
        try:
            jax.export.register_namedtuple_serialization(kind, serialized_name=_type_name(kind))
        except ValueError:  # already registered (by us or by its package)
            pass


def _resolve(name: str) -> type:
    module, _, qualname = name.partition(":")
    if not module.startswith(_TYPE_MODULES):
        raise ValueError(f"unexpected type {name}")
    kind: Any = importlib.import_module(module)
    for part in qualname.split("."):
        kind = getattr(kind, part)
    if not (isinstance(kind, type) and issubclass(kind, tuple) and hasattr(kind, "_fields")):
        raise ValueError(f"{name} is not a NamedTuple")
    return kind


def _load(path: Path, record: dict[str, Any]):
    """The stored :class:`jax.export.Exported`, or ``None`` (absent, unreadable, corrupt, other key)."""
    try:
        data = path.read_bytes()
        if not data.startswith(_MAGIC):
            return None
        header, _, blob = data[len(_MAGIC) :].partition(b"\n")
        meta = json.loads(header)
        if _dumps(meta.get("key")) != _dumps(record):
            return None  # a hash collision or a hand-edited file: trace again
        if meta.get("blob_sha256") != hashlib.sha256(blob).hexdigest():
            return None  # damaged on disk: JAX would parse it only later, and may crash on it
        for name in meta.get("types", []):
            _register(_resolve(name))
        return jax.export.deserialize(bytearray(blob))
    except Exception:  # noqa: BLE001 - any bad entry is traced again and rewritten
        return None


def _store(path: Path, exported, record: dict[str, Any]) -> None:
    types = _namedtuples(exported.in_tree) | _namedtuples(exported.out_tree)
    for kind in types:
        _register(kind)
    blob = bytes(exported.serialize())
    header = _dumps(
        {"key": record, "types": sorted(_type_name(k) for k in types), "blob_sha256": hashlib.sha256(blob).hexdigest()}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_MAGIC + header.encode() + b"\n" + blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_program(fn, args: tuple, *, role: str, facts: Any = None):
    """``fn`` compiled for ``args``, through a stored exported program when ``facts`` allow.

    ``facts``: JSON-able values that, with ``role``, determine ``fn`` completely
    (``None``: not storable, compile directly). Without a compilation cache
    (:func:`program_folder` is ``None``) the program is compiled directly too.
    """
    folder = program_folder()
    if facts is None or folder is None:
        return fn.lower(*args).compile()
    try:
        digest, record = _key(role, facts, args)
    except _NotStorable:
        return fn.lower(*args).compile()
    with _LOCK:
        lock = _DIGEST_LOCKS.setdefault(digest, threading.Lock())
    with lock:  # devices compiling the same program concurrently trace (or load) it once
        exported = _EXPORTED.get(digest)
        if exported is None:
            path = folder / f"{digest}.jaxprog"
            exported = _load(path, record)
            if exported is None:
                try:
                    exported = jax.export.export(fn)(*args)
                    _store(path, exported, record)
                except OSError:
                    pass  # an unwritable cache is not an error: the program is just not kept
                except Exception:  # noqa: BLE001 - not exportable (pytree, callback): compile as before
                    exported = _DIRECT
            _EXPORTED[digest] = exported
    if exported is _DIRECT:
        return fn.lower(*args).compile()
    try:  # outside the lock: devices compile their copies concurrently
        return jax.jit(exported.call).lower(*args).compile()
    except Exception:  # noqa: BLE001 - a stored program JAX cannot compile: drop it, trace as before
        with lock:
            _EXPORTED[digest] = _DIRECT
            (folder / f"{digest}.jaxprog").unlink(missing_ok=True)
        return fn.lower(*args).compile()


def remembered(kind: str, facts: Any, compute):
    """``compute()`` (a JSON value), kept under ``kind`` and ``facts`` like a program.

    For deterministic, costly numbers that a repeated run would compute again
    (the exact Gibbs occupancy by quadrature). The key holds the same versions,
    source digest, options and backend as a program's; ``facts=None`` or no
    compilation cache: just compute. A bad entry is computed again.
    """
    folder = program_folder()
    if facts is None or folder is None:
        return compute()
    try:
        digest, record = _key(kind, facts, ())
    except _NotStorable:
        return compute()
    path = folder / f"{digest}.json"
    try:
        saved = json.loads(path.read_text())
        if _dumps(saved["key"]) == _dumps(record):
            return saved["value"]
    except Exception:  # noqa: BLE001 - absent or bad: compute again
        pass
    value = compute()
    try:
        text = _dumps({"key": record, "value": _plain(value)})
    except _NotStorable:
        return value
    if json.loads(text)["value"] != value:
        return value  # would not come back equal (a tuple, a numpy scalar): not kept
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass
    return value
