"""Minibatch SG-MCMC (SGLD, SGHMC) on a localized posterior, in the Sampler shape.

BlackJAX's ``sgld`` / ``sghmc`` kernels with a gradient estimator that takes
one gradient of the minibatch *mean* loss scaled by ``n beta`` (BlackJAX's
``grad_estimator`` differentiates per example, which costs batch x d floats
per chain: too much for a network of 50 000 weights).
"""

from __future__ import annotations

from typing import NamedTuple

import blackjax
import jax
import jax.numpy as jnp

from models.llc_problem import LLCProblem, llc_logdensity_and_loss
from samplers.kernels import Sampler, SGState, burn_in

__all__ = ["SGState", "SGLDState", "sg_sampler"]


class SGLDState(NamedTuple):
    """SGLD's state: the position with its log density, gradient and loss.

    The gradient for the next step is taken where the chain lands, and its
    forward pass gives the loss and log density there, so a step costs one
    forward and one backward pass (on the minibatch when there is one: the
    loss is then the minibatch's, an unbiased estimate of ``L_n``, as in
    devinterp).
    """

    position: jax.Array
    logdensity: jax.Array
    logdensity_grad: jax.Array
    loss: jax.Array


def sg_sampler(
    name: str,
    problem: LLCProblem,
    nbeta: float,
    localization: float,
    *,
    step_size: float,
    batch_size: int | None = None,
    sghmc_alpha: float = 0.01,
    num_integration_steps: int = 1,
) -> Sampler:
    """SGLD or SGHMC on the localized posterior, with minibatch gradients.

    Same :class:`~samplers.kernels.Sampler` shape as ``samplers.kernels``
    (which only has full-batch SG gradients). Kernels are BlackJAX's
    ``sgld`` / ``sghmc`` ``build_kernel``; the gradient estimator is ours:
    ``grad[-nbeta * mean_batch loss(w) - gamma/2 ||w - w*||^2 + log|J|]``,
    computed on the batch as a whole (``blackjax.sgmcmc.gradients.grad_estimator``
    vmaps per-example gradients, ``B x d`` floats per chain, too much memory
    for a network). ``batch_size=None`` (or >= n) uses the full batch.
    Minibatches are drawn without replacement, fresh every step.
    """
    if name not in ("sgld", "sghmc"):
        raise ValueError(f"sg_sampler runs sgld or sghmc, got {name!r}")
    n = int(problem.data[0].shape[0]) if problem.data is not None else problem.num_data
    use_batches = batch_size is not None and problem.batch_loss_fn is not None and int(batch_size) < n
    if batch_size is not None and problem.batch_loss_fn is None:
        raise ValueError("--batch-size needs a target with data (a checkpoint); toy potentials are full batch")
    full_pair = jax.value_and_grad(llc_logdensity_and_loss(problem, nbeta, localization), has_aux=True)
    if use_batches:
        B = int(batch_size)
        batch_pair = jax.value_and_grad(
            llc_logdensity_and_loss(problem, nbeta, localization, problem.batch_loss_fn), has_aux=True
        )

        def draw_batch(key):
            idx = jax.random.choice(key, n, (B,), replace=False)
            return tuple(a[idx] for a in problem.data)
    else:
        batch_pair = full_pair

        def draw_batch(key):
            return None

    params = {"step_size": jnp.asarray(step_size, jnp.float32)}
    if name == "sgld":
        langevin = blackjax.sgmcmc.diffusions.overdamped_langevin()

        def init(position):
            (lp, loss), grad = full_pair(position, None)
            return SGLDState(position, lp, grad, loss)

        def step(rng_key, state, params):
            # BlackJAX's SGLD update (its kernel's integrator) with the gradient
            # carried from the previous step: one forward + backward pass per step
            k_batch, k_noise = jax.random.split(rng_key)
            position = langevin(k_noise, state.position, state.logdensity_grad, params["step_size"], 1.0)
            (lp, loss), grad = batch_pair(position, draw_batch(k_batch))
            return SGLDState(position, lp, grad, loss), None

        def stats(state, info, params):
            return {"lp": state.logdensity, "loss": state.loss, "step_size": params["step_size"]}

        return Sampler(name, burn_in(step, init, params), step, stats, adjusted=False, unrolled_keys=True)

    kernel = blackjax.sghmc.build_kernel(alpha=sghmc_alpha)

    def grad_estimator(position, minibatch):
        return batch_pair(position, minibatch)[1]

    def step(rng_key, state, params):
        # one minibatch per proposal (all its leapfrog steps)
        k_batch, k_noise = jax.random.split(rng_key)
        pos = kernel(k_noise, state.position, grad_estimator, draw_batch(k_batch), params["step_size"],
                     int(num_integration_steps))
        return SGState(pos), None

    def stats(state, info, params):
        lp, loss = full_pair(state.position, None)[0]  # value only: XLA drops the unused gradient
        return {"lp": lp, "loss": loss, "step_size": params["step_size"]}

    return Sampler(name, burn_in(step, SGState, params), step, stats, adjusted=False, unrolled_keys=True)
