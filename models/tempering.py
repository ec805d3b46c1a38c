"""From a loss to a log density at an inverse temperature.

    log p(theta) = -beta * L(theta) + log prior(theta) - (gamma / 2) ||theta - theta0||^2

Conventions (documented once, used everywhere):

* ``L`` is the loss *as the caller defines it*. If ``L`` is a mean over ``n``
  training examples, ``beta`` multiplies that mean; the usual Bayesian
  posterior at unit temperature then needs ``beta = n``. If ``L`` is a sum,
  ``beta = 1`` is the posterior. ``loss_reduction`` says which one a loss is,
  and only matters for :func:`wbic_beta`.
* **Equipartition** (SCIENCE.md section 3): in ``d`` dimensions a quadratic
  well at inverse temperature ``beta`` has mean excess energy ``d / (2 beta)``.
  Read backwards, the loss ``L0`` at a starting point defines
  ``beta = d / (2 (L0 - L_ref))`` with ``L_ref = 0`` by default.
* **WBIC** (Watanabe): the posterior at ``n * beta`` with ``beta = 1 / log n``
  for a *mean* loss, i.e. multiply the mean loss by ``n / log n``; for a *sum*
  loss multiply by ``1 / log n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import jax.numpy as jnp

__all__ = ["equipartition_beta", "wbic_beta", "tempered_logdensity", "resolve_beta"]


def equipartition_beta(loss_at_start: float, dim: int, *, loss_ref: float = 0.0) -> float:
    """Inverse temperature at which ``loss_at_start`` is the mean energy.

    Parameters
    ----------
    loss_at_start
        ``L0``, the loss at the starting point (or the mean over starting points).
    dim
        Number of parameters ``d``.
    loss_ref
        ``L_ref``, the loss of the minimum the energy is measured from.

    Examples
    --------
    >>> equipartition_beta(1.0, 2)
    1.0
    """
    excess = float(loss_at_start) - float(loss_ref)
    if not math.isfinite(excess):
        raise ValueError(
            f"equipartition needs a finite loss at the start, got {loss_at_start}; "
            "start from a point where the loss is finite"
        )
    if excess <= 0:
        raise ValueError(
            f"equipartition needs a loss above L_ref={loss_ref} at the start, got {loss_at_start}; "
            "pass --beta NUMBER or start away from the minimum"
        )
    return dim / (2.0 * excess)


def wbic_beta(num_data: int, *, loss_reduction: Literal["mean", "sum"] = "mean") -> float:
    """The WBIC inverse temperature multiplying a loss over ``num_data`` examples."""
    if num_data is None or int(num_data) < 2:
        raise ValueError(f"WBIC needs the number of data n >= 2, got {num_data}; pass --num-data N")
    n = int(num_data)
    base = 1.0 / math.log(n)
    if loss_reduction == "mean":
        return n * base
    if loss_reduction == "sum":
        return base
    raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")


def resolve_beta(
    spec: float | str,
    *,
    dim: int,
    loss_at_start: Callable[[], float] | None = None,
    num_data: int | None = None,
    loss_reduction: Literal["mean", "sum"] = "mean",
) -> float:
    """Turn ``NUMBER``, ``"equipartition"`` or ``"wbic"`` into a number."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "equipartition":
            if loss_at_start is None:
                raise ValueError("equipartition needs a starting point to read the loss at")
            return equipartition_beta(loss_at_start(), dim)
        if key == "wbic":
            return wbic_beta(num_data, loss_reduction=loss_reduction)
        try:
            spec = float(key)
        except ValueError:
            raise ValueError(
                f"beta must be a positive number, 'equipartition' or 'wbic', got {spec!r}"
            ) from None
    beta = float(spec)
    if not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a positive finite number, got {spec!r}")
    return beta


def tempered_logdensity(
    loss_fn: Callable,
    beta: float,
    *,
    prior_scale: float | None = None,
    localization: float = 0.0,
    center=None,
) -> Callable:
    """``theta -> -beta * L(theta) + log N(theta | 0, prior_scale^2) - gamma/2 ||theta - center||^2``.

    Parameters
    ----------
    loss_fn
        ``theta -> L(theta)`` (a scalar).
    beta
        Inverse temperature multiplying the loss.
    prior_scale
        Standard deviation of an isotropic Gaussian prior, or ``None`` for a flat
        prior. A weight decay ``wd`` in ``L + (wd / 2) ||theta||^2`` corresponds
        to ``prior_scale = 1 / sqrt(beta * wd)``.
    localization
        ``gamma >= 0``, strength of the pull toward ``center`` (the local
        learning coefficient localizes the posterior this way).
    center
        The point ``theta0`` for the localization term.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> logp = tempered_logdensity(lambda x: jnp.sum(x**2), 2.0)
    >>> float(logp(jnp.ones(2)))
    -4.0
    """
    if localization < 0:
        raise ValueError(f"localization gamma must be >= 0, got {localization}")
    if localization > 0 and center is None:
        raise ValueError("localization needs a center theta0")
    if prior_scale is not None and not prior_scale > 0:
        raise ValueError(f"prior_scale must be > 0, got {prior_scale}")

    def logdensity_fn(theta):
        logp = -beta * loss_fn(theta)
        if prior_scale is not None:
            logp = logp - 0.5 * jnp.sum(theta**2) / prior_scale**2
        if localization > 0:
            logp = logp - 0.5 * localization * jnp.sum((theta - center) ** 2)
        return logp

    return logdensity_fn
