"""The Target contract: what is sampled.

A :class:`Target` carries everything a dynamics needs to move on a landscape
and everything a diagnostic needs to read the result:

* ``logdensity_fn(z)``: the *positive* log density (BlackJAX's sign) in the
  sampling coordinates ``z``, a flat vector of length ``dim``. A loss ``U``
  enters as ``-beta * U`` (see :mod:`models.tempering`).
* ``init_fn(rng_key, num_chains)``: initial positions in sampling coordinates,
  shape ``(num_chains, dim)``.
* ``record_fn(z)``: what is reported for a position, a dict of named arrays in
  the *original* coordinates (for a box target the constrained point, plus
  observables such as the loss).

Positions are flat vectors everywhere (pytrees are raveled once, at the edge)
so that every kernel, the run loop and the checkpoint format stay simple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["Target", "Box", "box_bijection"]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[low, high]^dim`` (the same bounds on every axis)."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (float(self.low) < float(self.high)):
            raise ValueError(f"a box needs low < high, got low={self.low}, high={self.high}")


def box_bijection(box: Box) -> tuple[Callable, Callable, Callable]:
    """Smooth bijection from R^d onto the open box, with its log-Jacobian.

    ``x = low + (high - low) * sigmoid(z)``. Returns ``(forward, inverse,
    log_det_jacobian)`` where ``forward(z) = x`` and ``log_det_jacobian(z)`` is
    ``sum log |dx/dz|``, the term a density on the box gains when it is
    sampled in ``z``.
    """
    low, width = float(box.low), float(box.high) - float(box.low)

    def forward(z):
        return low + width * jax.nn.sigmoid(z)

    def inverse(x):
        u = (x - low) / width
        return jnp.log(u) - jnp.log1p(-u)

    def log_det_jacobian(z):
        return jnp.sum(jnp.log(width) + jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z))

    return forward, inverse, log_det_jacobian


@dataclass(frozen=True)
class Target:
    """A landscape to explore, in the sampling coordinates.

    Parameters
    ----------
    name
        Short name used in outputs (``"cross"``, ``"custom:file.py:loss"``).
    dim
        Length of the flat position vector.
    logdensity_fn
        ``z -> log p(z)`` up to a constant, positive sign, including any
        Jacobian of the box bijection.
    loss_fn
        ``x -> U(x)`` in the original coordinates, the loss the density came
        from (``None`` for a NumPyro model).
    beta
        The inverse temperature applied to the loss.
    init_fn
        ``(rng_key, num_chains) -> z`` of shape ``(num_chains, dim)``.
    record_fn
        ``z -> dict`` of named arrays reported per draw (original coordinates).
    to_original
        ``z -> x`` (identity for unconstrained targets).
    box
        The support, when it is a box; sampling then happens through
        :func:`box_bijection`.
    singular_point
        Location (original coordinates) of a known singular point, if any.
    num_data
        Number of training examples behind the loss, if known (for WBIC).
    config
        The resolved, JSON-serialisable configuration that built the target.
    """

    name: str
    dim: int
    logdensity_fn: Callable[[jax.Array], jax.Array]
    loss_fn: Callable[[jax.Array], jax.Array] | None
    beta: float
    init_fn: Callable[[jax.Array, int], jax.Array]
    record_fn: Callable[[jax.Array], dict[str, jax.Array]]
    to_original: Callable[[jax.Array], jax.Array] = lambda z: z
    box: Box | None = None
    singular_point: tuple[float, ...] | None = None
    num_data: int | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def potential_fn(self, z: jax.Array) -> jax.Array:
        """Potential in sampling coordinates, ``-logdensity(z) / beta``.

        This is the 'loss' an optimizer sees when it runs on the target: with
        noise ``sqrt(2 * eta / beta)`` its Langevin limit is ``exp(logdensity)``.
        """
        return -self.logdensity_fn(z) / self.beta
