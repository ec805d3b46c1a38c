"""A user's own loss or NumPyro model, loaded from ``path/to/file.py:function``."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp

from models.target import Box, Target
from models.toy import make_loss_target

__all__ = ["load_function", "custom_loss_target", "check_loss_fn"]


def load_function(spec: str) -> Callable:
    """Import ``FILE.py:NAME`` and return the callable ``NAME``.

    Raises ``ValueError`` with one line naming what is wrong (missing file,
    import error, missing or non-callable attribute).
    """
    path_text, sep, name = str(spec).rpartition(":")
    if not sep or not path_text or not name:
        raise ValueError(f"expected FILE.py:FUNCTION, got {spec!r}")
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"file not found: {path}; give the path to a .py file as FILE.py:FUNCTION")
    module_name = f"surf_user_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"cannot import {path}: not a Python source file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # the user's code: any failure is reported as one line
        sys.modules.pop(module_name, None)
        raise ValueError(f"importing {path} failed: {_first_line(err)}") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise ValueError(f"{path} has no function {name!r}")
    if not callable(fn):
        raise ValueError(f"{path}:{name} is not callable")
    return fn


def _first_line(err: BaseException) -> str:
    """``Type: first line of the message``: user errors are reported on one line."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def check_loss_fn(loss_fn: Callable, dim: int, point: jax.Array) -> None:
    """Call the loss once at ``point`` and insist on a finite scalar."""
    try:
        value = loss_fn(point)
    except Exception as err:  # the user's code
        raise ValueError(
            f"the loss failed on a position of shape ({dim},): {_first_line(err)}; "
            "it must take a flat array of length --dim"
        ) from None
    shape = jnp.shape(value)
    if shape != ():
        raise ValueError(
            f"the loss must return a scalar, got shape {shape} for a position of shape ({dim},)"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"the loss is not finite at the starting point {point.tolist()}: {value}")
    try:
        grad = jax.grad(lambda x: jnp.asarray(loss_fn(x), dtype=jnp.float32))(point)
    except Exception as err:
        raise ValueError(
            f"the loss is not differentiable with JAX: {_first_line(err)}; "
            "write it with jax.numpy"
        ) from None
    if not bool(jnp.all(jnp.isfinite(grad))):
        raise ValueError(f"the loss gradient is not finite at the starting point {point.tolist()}")


def custom_loss_target(
    spec: str,
    dim: int,
    *,
    beta: float | str = 1.0,
    box: Box | None = None,
    center: tuple[float, ...] | None = None,
    start_key: jax.Array | None = None,
    num_chains: int = 1,
    num_data: int | None = None,
) -> Target:
    """A :class:`Target` from a user's loss ``FILE.py:FUNCTION`` of a flat position.

    ``center`` is the singular point to measure occupancy around, if any.
    """
    if int(dim) < 1:
        raise ValueError(f"--dim must be a positive integer, got {dim}")
    loss_fn = load_function(spec)
    if center is not None and len(center) != int(dim):
        raise ValueError(f"--center has {len(center)} coordinates but --dim is {dim}")
    target = make_loss_target(
        f"custom:{spec}",
        loss_fn,
        int(dim),
        beta=1.0 if isinstance(beta, str) else beta,
        box=box,
        singular_point=center,
        num_data=num_data,
        config={"loss": spec},
    )
    start = target.to_original(target.init_fn(start_key if start_key is not None else jax.random.key(0), 1)[0])
    check_loss_fn(loss_fn, int(dim), start)
    if isinstance(beta, str):  # equipartition reads the loss: only after the checks above
        target = make_loss_target(
            f"custom:{spec}",
            loss_fn,
            int(dim),
            beta=beta,
            box=box,
            singular_point=center,
            num_data=num_data,
            start_key=start_key,
            num_chains=num_chains,
            config={"loss": spec},
        )
    return target
