"""Optimizers as dynamics: optax updates behind the :class:`~samplers.kernels.Sampler` shape.

An optimizer step is a kernel step: ``state = OptimState(position, opt_state)``
with ``position`` the flat parameter vector, and
``step(rng_key, state, params)`` takes the gradient of the loss at the
position and applies one optax update. The step is deterministic except
through the optimizer's own state (the weight-noise intervention carries its
PRNG key there), so a checkpoint of ``(position, opt_state)`` continues a run
exactly.

The seed's interventions (SCIENCE.md section 5) are small optax
``GradientTransformation`` pieces that compose with :func:`optax.chain`:

* :func:`add_weight_noise`: ``N(0, sigma^2)`` added to the *update*, so the
  weights receive that noise after every step (place it last in the chain);
* :func:`anti_regularization`: adds the gradient of
  ``-gamma ||theta - theta0||^2`` to the gradient (pushes away from
  ``theta0``; place it first, before the optimizer's scaling);
* :func:`large_norm`: adds the gradient of ``gamma (||theta|| - k norm0)^2``.

:func:`build_optimizer` assembles ``chain(gradient pieces, optimizer, noise)``.
Momentum is optax's: ``b1`` is Adam's first-moment decay, and for SGD the
trace ``v <- g + b1 v`` (not the seed's ``(1 - b1)``-weighted average).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from samplers.kernels import Sampler

__all__ = [
    "OPTIMIZERS",
    "OptimState",
    "OptimInfo",
    "WeightNoiseState",
    "ReferenceState",
    "add_weight_noise",
    "anti_regularization",
    "large_norm",
    "learning_rate_schedule",
    "build_optimizer",
    "optimizer_sampler",
]

OPTIMIZERS = ("adamw", "adam", "sgd")


# ------------------------------------------------------------ interventions


class WeightNoiseState(NamedTuple):
    """The PRNG key (raw ``uint32[2]``, so it can be checkpointed) for the next step."""

    rng_key: jax.Array


def add_weight_noise(*, sigma: float, seed: int = 0) -> optax.GradientTransformation:
    """Add ``N(0, sigma^2)`` to every coordinate of the update.

    Placed last in a chain, the parameters then receive exactly that noise
    after each optimizer step (the seed's "extra noise").

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> tx = add_weight_noise(sigma=0.1, seed=0)
    >>> updates, state = tx.update(jnp.zeros(3), tx.init(jnp.zeros(3)))
    >>> updates.shape
    (3,)
    """
    if not sigma >= 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")

    def init_fn(params):
        del params
        return WeightNoiseState(jax.random.PRNGKey(int(seed)))

    def update_fn(updates, state, params=None):
        del params
        key, sub = jax.random.split(state.rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sub, len(leaves))
        noisy = [
            u + sigma * jax.random.normal(k, jnp.shape(u), jnp.result_type(u))
            for u, k in zip(leaves, keys, strict=True)
        ]
        return jax.tree.unflatten(treedef, noisy), WeightNoiseState(key)

    return optax.GradientTransformation(init_fn, update_fn)


class ReferenceState(NamedTuple):
    """The reference point ``theta0`` (a pytree like the params) and its norm."""

    theta0: Any
    norm0: jax.Array


def _reference_init(theta0, norm0):
    def init_fn(params):
        t0 = params if theta0 is None else theta0
        t0 = jax.tree.map(jnp.asarray, t0)
        n0 = optax.tree_utils.tree_norm(t0) if norm0 is None else jnp.asarray(norm0, jnp.float32)
        return ReferenceState(t0, n0)

    return init_fn


def anti_regularization(*, gamma: float, theta0: Any | None = None) -> optax.GradientTransformation:
    """Add the gradient of ``-gamma ||theta - theta0||^2``: a reward for distance from ``theta0``.

    ``theta0=None`` takes the parameters given to ``init`` (the starting
    checkpoint); the reference lives in the state, so one compiled
    transformation serves many chains and a checkpoint carries it.
    Needs ``params`` in ``update``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> tx = anti_regularization(gamma=0.5, theta0=jnp.zeros(2))
    >>> tx.update(jnp.zeros(2), tx.init(jnp.zeros(2)), jnp.ones(2))[0].tolist()
    [-1.0, -1.0]
    """
    if not gamma >= 0:
        raise ValueError(f"anti-regularization gamma must be >= 0, got {gamma}")

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("anti_regularization needs params in update(updates, state, params)")
        out = jax.tree.map(lambda g, t, t0: g - 2.0 * gamma * (t - t0), updates, params, state.theta0)
        return out, state

    return optax.GradientTransformation(_reference_init(theta0, None), update_fn)


def large_norm(*, gamma: float, k: float, norm0: float | None = None) -> optax.GradientTransformation:
    """Add the gradient of ``gamma (||theta|| - k norm0)^2``: pull the norm toward ``k norm0``.

    ``||theta||`` is the Euclidean norm over all leaves; ``norm0=None`` takes
    the norm of the parameters given to ``init``. Needs ``params``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> tx = large_norm(gamma=1.0, k=2.0, norm0=1.0)
    >>> tx.update(jnp.zeros(1), tx.init(jnp.ones(1)), jnp.ones(1))[0].tolist()  # 2 (1 - 2) * 1
    [-2.0]
    """
    if not gamma >= 0:
        raise ValueError(f"large-norm gamma must be >= 0, got {gamma}")
    if not k > 0:
        raise ValueError(f"large-norm k must be > 0, got {k}")

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("large_norm needs params in update(updates, state, params)")
        norm = optax.tree_utils.tree_norm(params)
        coef = 2.0 * gamma * (norm - k * state.norm0) / jnp.maximum(norm, 1e-12)
        return jax.tree.map(lambda g, t: g + coef * t, updates, params), state

    def init_fn(params):
        n0 = optax.tree_utils.tree_norm(params) if norm0 is None else jnp.asarray(norm0, jnp.float32)
        return ReferenceState(optax.EmptyState(), n0)

    return optax.GradientTransformation(init_fn, update_fn)


# ------------------------------------------------------------ optimizers


def learning_rate_schedule(learning_rate: float, warmup_steps: int = 0) -> optax.Schedule | float:
    """Linear warmup from 0 to ``learning_rate`` over ``warmup_steps``, then constant."""
    if int(warmup_steps) <= 0:
        return learning_rate
    return optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, int(warmup_steps)), optax.constant_schedule(learning_rate)],
        [int(warmup_steps)],
    )


def build_optimizer(
    name: str,
    *,
    learning_rate: float,
    b1: float = 0.9,
    b2: float = 0.98,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    interventions: Sequence[optax.GradientTransformation] = (),
    noise: optax.GradientTransformation | None = None,
) -> optax.GradientTransformation:
    """``chain(*interventions, optimizer, noise)``.

    ``interventions`` act on the gradient (before the optimizer's scaling),
    ``noise`` on the final update. ``weight_decay`` is decoupled for ``adamw``
    and refused for ``adam``/``sgd`` (say ``adamw`` to have it).

    Examples
    --------
    >>> tx = build_optimizer("adamw", learning_rate=3e-3, weight_decay=1.0)
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not learning_rate > 0:
        raise ValueError(f"learning rate must be > 0, got {learning_rate}")
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"b1 and b2 must be in [0, 1), got b1={b1}, b2={b2}")
    if not weight_decay >= 0:
        raise ValueError(f"weight decay must be >= 0, got {weight_decay}")
    if weight_decay and name != "adamw":
        raise ValueError(f"weight decay {weight_decay} needs optimizer 'adamw', not {name!r}")
    lr = learning_rate_schedule(learning_rate, warmup_steps)
    if name == "adamw":
        opt = optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay)
    elif name == "adam":
        opt = optax.adam(lr, b1=b1, b2=b2)
    else:
        opt = optax.sgd(lr, momentum=b1 or None)
    parts = [*interventions, opt] + ([noise] if noise is not None else [])
    return optax.chain(*parts)


class OptimState(NamedTuple):
    """Flat parameters and the optax state."""

    position: jax.Array
    opt_state: Any


class OptimInfo(NamedTuple):
    """Training loss at the position the step started from, and the step sizes."""

    loss: jax.Array
    grad_norm: jax.Array
    update_norm: jax.Array


def optimizer_sampler(
    loss_fn: Callable[[jax.Array], jax.Array],
    tx: optax.GradientTransformation,
    *,
    name: str = "optimizer",
    opt_state: Any | None = None,
) -> Sampler:
    """``tx`` descending ``loss_fn`` as a :class:`~samplers.kernels.Sampler`.

    ``warmup(rng_key, position, num_steps)`` initializes the optimizer state
    (or uses ``opt_state``, e.g. from a checkpoint, so a run continues where
    it stopped) and takes ``num_steps`` plain steps; ``params`` is empty.
    ``stats`` reports ``lp = -loss`` at the step's starting point.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> sampler = optimizer_sampler(lambda x: jnp.sum(x**2), build_optimizer("sgd", learning_rate=0.1, b1=0.0))
    >>> state, params = sampler.warmup(jax.random.key(0), jnp.ones(2), 0)
    >>> state, info = sampler.step(jax.random.key(1), state, params)
    >>> state.position.tolist()
    [0.800000011920929, 0.800000011920929]
    """

    def init(position):
        return OptimState(position, tx.init(position) if opt_state is None else opt_state)

    def step(rng_key, state, params):
        del rng_key, params  # deterministic given the optimizer state
        loss, grad = jax.value_and_grad(loss_fn)(state.position)
        updates, new_opt_state = tx.update(grad, state.opt_state, state.position)
        position = optax.apply_updates(state.position, updates)
        info = OptimInfo(loss, jnp.linalg.norm(grad), jnp.linalg.norm(updates))
        return OptimState(position, new_opt_state), info

    def warmup(rng_key, position, num_steps: int):
        state = init(position)
        if num_steps == 0:
            return state, {}

        def body(state, key):
            return step(key, state, {})[0], None

        state, _ = jax.lax.scan(body, state, jax.random.split(rng_key, num_steps))
        return state, {}

    def stats(state, info, params):
        del state, params
        return {"lp": -info.loss, "grad_norm": info.grad_norm, "update_norm": info.update_norm}

    return Sampler(name, warmup, step, stats, False, unrolled_keys=True)
