"""Minibatch SG-MCMC (SGLD, SGHMC) on a localized posterior, in the Sampler shape.

BlackJAX's ``sgld`` / ``sghmc`` kernels with a gradient estimator that takes
one gradient of the minibatch *mean* loss scaled by ``n beta`` (BlackJAX's
``grad_estimator`` differentiates per example, which costs batch x d floats
per chain: too much for a network of 50 000 weights).
"""

from __future__ import annotations

import blackjax
import jax
import jax.numpy as jnp

from models.llc_problem import LLCProblem, llc_logdensity
from samplers.kernels import Sampler, SGState, burn_in

__all__ = ["SGState", "sg_sampler"]


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
    full = llc_logdensity(problem, nbeta, localization)
    n = int(problem.data[0].shape[0]) if problem.data is not None else problem.num_data
    use_batches = batch_size is not None and problem.batch_loss_fn is not None and int(batch_size) < n
    if batch_size is not None and problem.batch_loss_fn is None:
        raise ValueError("--batch-size needs a target with data (a checkpoint); toy potentials are full batch")
    center_w = problem.to_original(problem.center)

    if use_batches:
        B = int(batch_size)

        def batch_logdensity(z, batch):
            w = problem.to_original(z)
            out = -nbeta * problem.batch_loss_fn(z, batch) + problem.log_det_fn(z)
            if localization > 0:
                out = out - 0.5 * localization * jnp.sum((w - center_w) ** 2)
            return out

        grad_batch = jax.grad(batch_logdensity)

        def draw_batch(key):
            idx = jax.random.choice(key, n, (B,), replace=False)
            return tuple(a[idx] for a in problem.data)

        def grad_estimator(position, minibatch):
            return grad_batch(position, minibatch)
    else:
        grad_full = jax.grad(full)

        def draw_batch(key):
            return None

        def grad_estimator(position, minibatch):
            return grad_full(position)

    params = {"step_size": jnp.asarray(step_size, jnp.float32)}
    if name == "sgld":
        kernel = blackjax.sgld.build_kernel()

        def step(rng_key, state, params):
            k_batch, k_noise = jax.random.split(rng_key)
            pos = kernel(k_noise, state.position, grad_estimator, draw_batch(k_batch), params["step_size"])
            return SGState(pos), None
    else:
        kernel = blackjax.sghmc.build_kernel(alpha=sghmc_alpha)

        def step(rng_key, state, params):
            # one minibatch per proposal (all its leapfrog steps)
            k_batch, k_noise = jax.random.split(rng_key)
            pos = kernel(k_noise, state.position, grad_estimator, draw_batch(k_batch), params["step_size"],
                         int(num_integration_steps))
            return SGState(pos), None

    warmup = burn_in(step, SGState, params)

    def stats(state, info, params):
        return {"lp": full(state.position), "step_size": params["step_size"]}

    return Sampler(name, warmup, step, stats, adjusted=False)


# ------------------------------------------------------------------ estimate


