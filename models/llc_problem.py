"""What a local learning coefficient is measured on: a loss over data and a point w*.

The LLC's posterior is localized at ``w*``:
``log p(w) = -n beta L_n(w) - (gamma / 2) ||w - w*||^2`` (see
:mod:`diagnostics.llc` for the estimator and its conventions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["LLCProblem", "toy_llc_problem", "llc_logdensity", "llc_logdensity_and_loss", "TOY_NUM_DATA"]

# Toy potentials have no data: L_n = U and n is nominal; it only sets nbeta.
TOY_NUM_DATA = 1_000_000


class LLCProblem(NamedTuple):
    """What the LLC is measured on.

    ``loss_fn(z)``: ``L_n`` at sampling coordinates ``z`` (mean over data, or
    the toy's ``U``); ``center``: ``w*`` in sampling coordinates;
    ``log_det_fn(z)``: the log-Jacobian of the box bijection (0 when
    unbounded); ``to_original``: ``z -> w``, used for the localization term,
    which is measured in the original coordinates; ``record_fn(z)``: extra
    observables to keep per draw (scalars); ``batch_loss_fn(z, batch)`` and
    ``data`` (a tuple of arrays with ``n`` rows), for minibatch gradients.
    """

    name: str
    dim: int
    loss_fn: Callable
    center: jax.Array
    num_data: int
    log_det_fn: Callable = lambda z: 0.0
    to_original: Callable = lambda z: z
    record_fn: Callable | None = None
    batch_loss_fn: Callable | None = None
    data: tuple | None = None
    config: dict | None = None


def toy_llc_problem(model: str, params=None, *, num_data: int | None = None) -> LLCProblem:
    """A toy potential (``models.toy``) as an LLC problem, ``w* = 0``, ``L_n = U``."""
    from models.toy import toy_target

    target = toy_target(model, params, beta=1.0)
    forward = target.to_original
    center_x = jnp.zeros(target.dim) if target.singular_point is None else jnp.asarray(target.singular_point, jnp.float32)
    if target.box is not None:
        from models.target import box_bijection

        _, inverse, log_det = box_bijection(target.box)
        center = inverse(center_x)
    else:
        center, log_det = center_x, (lambda z: 0.0)
    loss = target.loss_fn
    return LLCProblem(
        name=model, dim=target.dim, loss_fn=lambda z: loss(forward(z)), center=jnp.asarray(center, jnp.float32),
        num_data=int(num_data or TOY_NUM_DATA), log_det_fn=log_det, to_original=forward,
        config={"model": model, "params": target.config.get("params"), "box": target.config.get("box")},
    )


def llc_logdensity(problem: LLCProblem, nbeta: float, localization: float) -> Callable:
    """``z -> -nbeta L_n(w) - gamma/2 ||w - w*||^2 + log|dw/dz|`` (``w = to_original(z)``)."""
    pair = llc_logdensity_and_loss(problem, nbeta, localization)
    return lambda z: pair(z, None)[0]


def llc_logdensity_and_loss(
    problem: LLCProblem, nbeta: float, localization: float, loss_of: Callable | None = None
) -> Callable:
    """``(z, batch) -> (log density, loss)``: :func:`llc_logdensity` with the loss it used.

    ``loss_of(z, batch)`` is the loss (default: the full ``L_n``, ``batch``
    ignored); a minibatch loss makes the log density the minibatch estimate.
    """
    center_w = problem.to_original(problem.center)
    if loss_of is None:
        loss_of = lambda z, _: problem.loss_fn(z)  # noqa: E731

    def logdensity(z, batch):
        w = problem.to_original(z)
        loss = loss_of(z, batch)
        out = -nbeta * loss + problem.log_det_fn(z)
        if localization > 0:
            out = out - 0.5 * localization * jnp.sum((w - center_w) ** 2)
        return out, loss

    return logdensity


