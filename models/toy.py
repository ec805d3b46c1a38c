"""Toy potentials whose singular structure is known exactly (SCIENCE.md 1).

| name              | U(x)                                        | zero set   | RLCT at 0 |
|-------------------|---------------------------------------------|------------|-----------|
| ``cross``         | a min(x0^2, x1^2) + lam/2 ||x - c||^2       | two axes   | 1/2       |
| ``normal-crossing`` | x0^(2 k0) x1^(2 k1)                       | two axes   | min(1/(2k0), 1/(2k1)) |
| ``quadratic``     | sum_i x_i^2                                 | a point    | d/2       |

:func:`make_loss_target` turns any loss into a :class:`~models.target.Target`
(also used for a user's own loss in :mod:`models.custom`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from models.target import Box, Target, box_bijection
from models.tempering import resolve_beta

__all__ = [
    "cross_potential",
    "normal_crossing_potential",
    "quadratic_potential",
    "make_loss_target",
    "TOY_MODELS",
    "toy_target",
    "parse_params",
]


def cross_potential(x, *, a: float = 100.0, lam: float = 0.0, c=(-1.0, -1.0)):
    """The seed's cross: ``a * min(x0^2, x1^2) + (lam / 2) * ||x - c||^2``.

    Works on ``x`` of shape ``(..., 2)``. Its gradient jumps across the
    diagonals ``|x0| = |x1|``.
    """
    x = jnp.asarray(x)
    c = jnp.asarray(c, dtype=x.dtype)
    valley = a * jnp.minimum(x[..., 0] ** 2, x[..., 1] ** 2)
    # the two squares added by hand, not jnp.sum(axis=-1): on a CPU, a reduction
    # over the size-2 axis inside the run loop's step (the loss feeds the
    # finite check) made XLA split every step into multi-threaded kernels,
    # 3x slower per core (benchmarks/bench_sgd.py)
    return valley + 0.5 * lam * ((x[..., 0] - c[0]) ** 2 + (x[..., 1] - c[1]) ** 2)


def normal_crossing_potential(x, *, k0: int = 1, k1: int = 1):
    """``x0^(2 k0) * x1^(2 k1)`` on ``x`` of shape ``(..., 2)``."""
    x = jnp.asarray(x)
    return x[..., 0] ** (2 * k0) * x[..., 1] ** (2 * k1)


def quadratic_potential(x):
    """``sum_i x_i^2`` over the last axis."""
    return jnp.sum(jnp.asarray(x) ** 2, axis=-1)


def make_loss_target(
    name: str,
    loss_fn: Callable,
    dim: int,
    *,
    beta: float | str,
    box: Box | None = None,
    init_low: float = -1.0,
    init_high: float = 1.0,
    singular_point: tuple[float, ...] | None = None,
    num_data: int | None = None,
    start_key: jax.Array | None = None,
    num_chains: int = 1,
    config: dict[str, Any] | None = None,
) -> Target:
    """Build a :class:`Target` from a loss ``U(x)`` on R^dim or on a box.

    Initial positions are uniform on ``[init_low, init_high]^dim`` (clipped to
    the box). With ``beta="equipartition"`` the temperature comes from the
    mean loss at the chains' own starting points, drawn with ``start_key``
    (pass the same key to the run loop's ``init_fn`` call to start there).

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> t = make_loss_target("bowl", lambda x: jnp.sum(x**2), 3, beta=2.0)
    >>> float(t.logdensity_fn(jnp.ones(3)))
    -6.0
    """
    if int(dim) < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    dim = int(dim)
    if box is not None:
        forward, inverse, log_det_jacobian = box_bijection(box)
        lo, hi = max(init_low, box.low), min(init_high, box.high)
    else:
        forward, inverse, log_det_jacobian = (lambda z: z), (lambda x: x), (lambda z: 0.0)
        lo, hi = init_low, init_high
    if not lo < hi:
        raise ValueError(f"empty initial region [{lo}, {hi}]")

    def init_fn(rng_key, num_chains: int):
        x = jax.random.uniform(rng_key, (num_chains, dim), minval=lo, maxval=hi)
        if box is not None:  # keep away from the edge, where z would be infinite
            margin = 1e-6 * (box.high - box.low)
            x = jnp.clip(x, box.low + margin, box.high - margin)
        return inverse(x)

    def loss_at_start():
        if start_key is None:
            raise ValueError("equipartition needs start_key to draw the starting points")
        x0 = forward(init_fn(start_key, num_chains))
        return float(jnp.mean(jax.vmap(loss_fn)(x0)))

    beta_value = resolve_beta(beta, dim=dim, loss_at_start=loss_at_start, num_data=num_data)

    def logdensity_fn(z):
        return -beta_value * loss_fn(forward(z)) + log_det_jacobian(z)

    def record_fn(z):
        x = forward(z)
        return {"x": x, "loss": loss_fn(x)}

    resolved = dict(config or {})
    resolved.update(name=name, dim=dim, beta=beta_value, beta_spec=str(beta))
    resolved["box"] = None if box is None else [box.low, box.high]
    return Target(
        name=name,
        dim=dim,
        logdensity_fn=logdensity_fn,
        loss_fn=loss_fn,
        beta=beta_value,
        init_fn=init_fn,
        record_fn=record_fn,
        to_original=forward,
        box=box,
        singular_point=singular_point,
        num_data=num_data,
        config=resolved,
    )


# name -> (defaults, builder(params) -> (loss_fn, dim, box, singular_point))
def _cross(p):
    loss = lambda x: cross_potential(x, a=p["a"], lam=p["lam"], c=(p["c0"], p["c1"]))  # noqa: E731
    return loss, 2, _box(p["box"]), (0.0, 0.0)


def _normal_crossing(p):
    k0, k1 = int(p["k0"]), int(p["k1"])
    if k0 < 1 or k1 < 1:
        raise ValueError(f"normal-crossing needs integers k0, k1 >= 1, got k0={k0}, k1={k1}")
    loss = lambda x: normal_crossing_potential(x, k0=k0, k1=k1)  # noqa: E731
    return loss, 2, _box(p["box"]), (0.0, 0.0)


def _quadratic(p):
    dim = int(p["dim"])
    if dim < 1:
        raise ValueError(f"quadratic needs dim >= 1, got {dim}")
    return quadratic_potential, dim, _box(p["box"]), tuple([0.0] * dim)


def _box(half_width: float) -> Box | None:
    if half_width is None or (isinstance(half_width, float) and math.isinf(half_width)):
        return None
    if not half_width > 0:
        raise ValueError(f"box half-width must be > 0 (or 'none'), got {half_width}")
    return Box(-float(half_width), float(half_width))


TOY_MODELS: dict[str, tuple[dict[str, Any], Callable]] = {
    "cross": ({"a": 100.0, "lam": 0.0, "c0": -1.0, "c1": -1.0, "box": 1.0}, _cross),
    "normal-crossing": ({"k0": 1, "k1": 1, "box": 1.0}, _normal_crossing),
    "quadratic": ({"dim": 2, "box": None}, _quadratic),
}


def parse_params(model: str, items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """Parse ``["KEY=VALUE", ...]`` against a toy model's defaults.

    Values are converted to the type of the default; ``box=none`` removes the box.
    """
    if model not in TOY_MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(TOY_MODELS)}")
    defaults = TOY_MODELS[model][0]
    params = dict(defaults)
    pairs = items.items() if isinstance(items, dict) else [_split_param(s) for s in items or []]
    for key, value in pairs:
        if key not in defaults:
            raise ValueError(
                f"unknown parameter {key!r} for model {model}; known: {', '.join(defaults)}"
            )
        params[key] = _convert(key, value, defaults[key])
    return params


def _split_param(item: str) -> tuple[str, str]:
    key, sep, value = str(item).partition("=")
    if not sep or not key.strip() or not value.strip():
        raise ValueError(f"malformed --param {item!r}; write KEY=VALUE, e.g. lam=5")
    return key.strip(), value.strip()


def _convert(key: str, value: Any, default: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key == "box" and value.lower() in ("none", "inf", "off"):
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"parameter {key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"parameter {key} must be finite, got {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if number != int(number):
            raise ValueError(f"parameter {key} must be an integer, got {value!r}")
        return int(number)
    return number


def toy_target(
    model: str,
    params: list[str] | dict[str, Any] | None = None,
    *,
    beta: float | str = 1.0,
    start_key: jax.Array | None = None,
    num_chains: int = 1,
    num_data: int | None = None,
) -> Target:
    """A toy target by name, e.g. ``toy_target("cross", {"lam": 5}, beta=20)``.

    Examples
    --------
    >>> t = toy_target("cross", ["lam=5"], beta=20.0)
    >>> t.dim, t.singular_point
    (2, (0.0, 0.0))
    """
    resolved = parse_params(model, params)
    loss_fn, dim, box, singular = TOY_MODELS[model][1](resolved)
    return make_loss_target(
        model,
        loss_fn,
        dim,
        beta=beta,
        box=box,
        singular_point=singular,
        num_data=num_data,
        start_key=start_key,
        num_chains=num_chains,
        config={"model": model, "params": resolved},
    )
