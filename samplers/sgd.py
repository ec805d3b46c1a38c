"""The seed's noisy momentum SGD as a kernel (SCIENCE.md section 2).

    v(t+1) = beta v(t) + (1 - beta) (-grad U(x(t)))
    x(t+1) = x(t) + eta v(t+1) + delta(t),      delta(t) ~ N(0, eps^2 I)

BlackJAX has no such kernel (it is an optimizer with injected noise, not a
sampler), so it is written here in BlackJAX's shape: ``State``/``Info``
NamedTuples, a pure ``init`` and ``build_kernel()`` returning
``kernel(rng_key, state, loss_fn, learning_rate, noise, momentum)``, with the
tunables as arguments so they can be vmapped.

With ``momentum = 0`` one step is an Euler-Maruyama step of Langevin dynamics
at temperature ``eps^2 / (2 eta)``: to sample ``exp(-beta U)`` use
``noise = sqrt(2 eta / beta)`` (:func:`matching_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["SGDState", "SGDInfo", "init", "build_kernel", "matching_noise"]


class SGDState(NamedTuple):
    """Position, velocity, and the loss and its gradient at the position."""

    position: jax.Array
    velocity: jax.Array
    loss: jax.Array
    loss_grad: jax.Array


class SGDInfo(NamedTuple):
    """Size of the gradient step taken (``eta * ||v||``)."""

    step_norm: jax.Array


def init(position: jax.Array, loss_fn: Callable) -> SGDState:
    """Start at rest: zero velocity."""
    loss, grad = jax.value_and_grad(loss_fn)(position)
    return SGDState(position, jnp.zeros_like(position), loss, grad)


def build_kernel() -> Callable:
    """Build the noisy momentum SGD kernel.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> loss = lambda x: jnp.sum(x**2)
    >>> kernel = build_kernel()
    >>> state = init(jnp.ones(2), loss)
    >>> state, info = kernel(jax.random.key(0), state, loss, 0.1, 0.0, 0.0)
    >>> state.position.tolist()  # 1 - 0.1 * 2
    [0.800000011920929, 0.800000011920929]
    """

    def kernel(
        rng_key: jax.Array,
        state: SGDState,
        loss_fn: Callable,
        learning_rate: float,
        noise: float,
        momentum: float = 0.0,
    ) -> tuple[SGDState, SGDInfo]:
        velocity = momentum * state.velocity - (1.0 - momentum) * state.loss_grad
        delta = noise * jax.random.normal(rng_key, state.position.shape, state.position.dtype)
        position = state.position + learning_rate * velocity + delta
        loss, grad = jax.value_and_grad(loss_fn)(position)
        info = SGDInfo(learning_rate * jnp.linalg.norm(velocity))
        return SGDState(position, velocity, loss, grad), info

    return kernel


def matching_noise(learning_rate: float, beta: float) -> float:
    """Noise ``eps = sqrt(2 eta / beta)`` whose Langevin limit is ``exp(-beta U)``."""
    if not (learning_rate > 0 and beta > 0):
        raise ValueError(
            f"matching noise needs learning_rate > 0 and beta > 0, got {learning_rate}, {beta}"
        )
    return math.sqrt(2.0 * learning_rate / beta)
