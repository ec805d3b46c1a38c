"""Pieces every command shares: argument types, targets from flags, output."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "UserError",
    "Interrupted",
    "prepare_checkpoint",
    "remove_checkpoint",
    "positive_int",
    "nonnegative_int",
    "positive_float",
    "nonnegative_float",
    "probability",
    "float_list",
    "add_target_arguments",
    "target_from_args",
    "enable_compilation_cache",
    "emit_json",
]


class UserError(Exception):
    """Bad input: reported as one line on stderr with exit code 2, no traceback."""


class Interrupted(Exception):
    """SIGINT/SIGTERM during a run: one line saying how to resume, exit code 130."""


def checkpoint_for(out: str | None) -> Path | None:
    """Where a run writing ``out`` keeps its checkpoint (``OUT.partial.npz/.json``)."""
    return None if not out else Path(str(out) + ".partial")


def prepare_checkpoint(out: str | None, *, resume: bool, force: bool) -> Path | None:
    """Refuse to silently drop or invent a partial run; returns the checkpoint path."""
    from samplers.checkpoint import checkpoint_paths

    path = checkpoint_for(out)
    if path is None:
        if resume:
            raise UserError("--resume needs --out: the checkpoint lives next to the output file")
        return None
    exists = any(p.exists() for p in checkpoint_paths(path))
    if resume and not exists:
        raise UserError(f"--resume: no interrupted run to continue at {path}.npz; run without --resume")
    if exists and not resume:
        if not force:
            raise UserError(
                f"an interrupted run left {path}.npz; add --resume to continue it or --force to start over"
            )
        _unlink_checkpoint(path)
    return path


def remove_checkpoint(path: Path | None) -> None:
    if path is not None:
        _unlink_checkpoint(path)


def _unlink_checkpoint(path: Path) -> None:
    """Delete a checkpoint (process 0 only: in a multi-process run it owns the files)."""
    from samplers.checkpoint import checkpoint_paths
    from samplers.placement import is_writer

    if is_writer():
        for p in checkpoint_paths(path):
            p.unlink(missing_ok=True)


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    value = _number(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "a positive number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    value = _number(text, float, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    value = _number(text, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def float_list(text: str) -> tuple[float, ...]:
    """``"a,b,c"`` -> floats, all finite."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return tuple(_number(p.strip(), float, "comma-separated numbers") for p in parts)


def beta_spec(text: str) -> str | float:
    key = str(text).strip().lower()
    if key in ("equipartition", "wbic"):
        return key
    value = _number(key, float, "a positive number, 'equipartition' or 'wbic'")
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number, 'equipartition' or 'wbic', got {text!r}"
        )
    return value


def add_target_arguments(parser: argparse.ArgumentParser, *, numpyro: bool = True) -> None:
    """``--model/--param``, ``--loss/--dim/--box/--center`` and ``--numpyro``."""
    from models.toy import TOY_MODELS

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", choices=sorted(TOY_MODELS), help="a built-in toy potential")
    source.add_argument("--loss", metavar="FILE:FN", help="your own loss U(x) of a flat array")
    if numpyro:
        source.add_argument("--numpyro", metavar="FILE:FN", help="a NumPyro model function")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="toy model parameter, repeatable (cross: a, lam, c0, c1, box)",
    )
    parser.add_argument("--dim", type=positive_int, help="dimension of --loss's position")
    parser.add_argument(
        "--box", type=float_list, metavar="LO,HI", help="support of --loss as a box [LO, HI]^dim (write --box=-1,1)"
    )
    parser.add_argument(
        "--center", type=float_list, metavar="X0,X1", help="singular point of --loss to measure at"
    )
    parser.add_argument(
        "--beta",
        type=beta_spec,
        default=None,
        help="inverse temperature: NUMBER, 'equipartition' (from the starting loss) or 'wbic'",
    )
    parser.add_argument(
        "--num-data", type=positive_int, help="n behind the loss (needed by --beta wbic)"
    )


def target_from_args(args: argparse.Namespace, *, start_key, num_chains: int):
    """Build the :class:`~models.target.Target` the flags describe."""
    from models.custom import custom_loss_target, load_function
    from models.target import Box
    from models.toy import toy_target

    beta = args.beta if args.beta is not None else 1.0
    numpyro_spec = getattr(args, "numpyro", None)
    if args.model is None and args.loss is None and numpyro_spec is None:
        raise UserError("say what to sample: --model NAME, --loss FILE:FN --dim D, or --numpyro FILE:FN")
    if args.model is None and args.param:
        raise UserError("--param only applies to --model; drop it or add --model NAME")
    try:
        if args.model is not None:
            return toy_target(
                args.model,
                args.param,
                beta=beta,
                start_key=start_key,
                num_chains=num_chains,
                num_data=args.num_data,
            )
        if args.loss is not None:
            if args.dim is None:
                raise UserError("--loss needs --dim D, the length of the position vector")
            box = None
            if args.box is not None:
                if len(args.box) != 2:
                    raise UserError(f"--box takes LO,HI, got {len(args.box)} numbers")
                box = Box(*args.box)
            return custom_loss_target(
                args.loss,
                args.dim,
                beta=beta,
                box=box,
                center=args.center,
                start_key=start_key,
                num_chains=num_chains,
                num_data=args.num_data,
            )
        if isinstance(beta, str):
            raise UserError(f"--beta {beta} needs a loss; a NumPyro model takes a number (default 1)")
        from models.numpyro_bridge import numpyro_target  # NumPyro loads only when asked for

        model = load_function(numpyro_spec)
        return numpyro_target(model, beta=float(beta), name=f"numpyro:{numpyro_spec}")
    except ValueError as err:
        raise UserError(str(err)) from None


def program_facts(args: argparse.Namespace, target, sampler: str, options) -> dict[str, Any] | None:
    """What determines a run's traced programs (``run_chains``' ``program_key``), or ``None``.

    Only for a built-in ``--model``: its configuration pins the code. A user's
    ``--loss`` or ``--numpyro`` file can change under the same name, so those
    runs are traced every time. Not the seed, nor the sizes: keys are
    arguments, and shapes are part of the stored program's key.
    """
    if getattr(args, "model", None) is None:
        return None
    from samplers.kernels import describe

    return {"target": target.config, "sampler": sampler, "sampler_options": describe(options)}


def enable_compilation_cache(path: str | None = None) -> Path:
    """Turn on JAX's persistent compilation cache (``$SURF_CACHE_DIR`` or the user cache)."""
    import jax

    folder = Path(
        path
        or os.environ.get("SURF_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gradient-surfing" / "jax"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return folder  # no cache is not an error: compilation just is not reused
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Every program, however small: a CLI run compiles ~25 small ones (keys, initial
    # positions, the reference quadrature) that together cost more than a second.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def emit_json(obj: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout."""
    sys.stdout.write(json.dumps(obj, default=_default) + "\n")
    sys.stdout.flush()


def _default(value):
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)
