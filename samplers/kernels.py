"""Every dynamics as one kind of thing: a :class:`Sampler`.

A sampler wraps a BlackJAX kernel (or, where BlackJAX has none, our own kernel
written in its shape, :mod:`samplers.sgd`) behind three pure functions:

* ``warmup(rng_key, position, num_steps) -> (state, params)``: adaptation
  (NUTS/HMC: BlackJAX window adaptation; MALA: dual averaging of the step
  size) or plain burn-in for unadjusted dynamics. ``params`` is a dict pytree
  of per-chain tunables, so the run loop can vmap over chains that adapted
  to different step sizes.
* ``step(rng_key, state, params) -> (state, info)``.
* ``stats(state, info, params) -> dict`` of per-step scalars named as ArviZ
  expects in ``sample_stats`` (``lp``, ``acceptance_rate``, ``diverging``,
  ``energy``, ``n_steps``, ``tree_depth``, ``step_size``).

Step-size conventions (they differ between libraries): ``ula`` and ``sgld``
take ``x + h grad log p + sqrt(2 h) N(0, I)`` (BlackJAX's, so ``h`` is the
Euler-Maruyama time step); ``mala`` uses the same proposal plus a Metropolis
test; ``sgd`` takes ``eta`` as its learning rate on the potential
``-log p / beta`` with noise ``eps``, and ``eps = sqrt(2 eta / beta)`` makes it
the same Langevin step (``h = eta / beta``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import blackjax
import jax
import jax.numpy as jnp
from blackjax.mcmc.diffusions import DiffusionState, overdamped_langevin

from models.target import Target
from samplers import sgd as sgd_kernel

__all__ = ["Sampler", "SamplerOptions", "SAMPLERS", "ADJUSTED", "build_sampler"]

# Metropolis-adjusted samplers are unbiased; the others have a step-size bias.
ADJUSTED = ("nuts", "hmc", "mala")
SAMPLERS = ("nuts", "hmc", "mala", "ula", "sgld", "sghmc", "sgd")

# Warmups shorter than this cannot run BlackJAX's windowed adaptation.
MIN_WINDOW_ADAPTATION = 20


class Sampler(NamedTuple):
    """A dynamics on a target; see the module docstring.

    ``variable_cost`` marks kernels whose work per step differs between
    chains (NUTS builds trajectories of different lengths): vmapped, every
    chain would pay for the longest one, so on a CPU the run loop maps over
    such chains one after another instead.

    ``unrolled_keys`` says that the kernel draws only through ``split``,
    ``fold_in``, bits, ``normal``, ``uniform`` and the like, for which
    :mod:`samplers.threefry`'s keys give JAX's own bits, so the run loop may
    hand it those (faster on CPU). Not ``gamma`` (and the distributions built
    on it) or ``poisson``: JAX takes another path for keys that are not its
    own threefry. Every built-in sampler sets it; a hand-made ``Sampler``
    gets JAX's keys unless it does.
    """

    name: str
    warmup: Callable
    step: Callable
    stats: Callable
    adjusted: bool
    variable_cost: bool = False
    unrolled_keys: bool = False


@dataclass(frozen=True)
class SamplerOptions:
    """Tunables of the samplers, with the defaults the CLI uses.

    Parameters
    ----------
    step_size
        ``h`` (``eta`` for ``sgd``). ``None``: adapt it (nuts, hmc, mala) or
        use ``default_step_size`` (unadjusted dynamics).
    num_integration_steps
        Leapfrog steps per HMC / SGHMC proposal.
    target_acceptance
        Acceptance rate the adaptation aims for (``None``: 0.8 for NUTS/HMC,
        0.57 for MALA).
    noise
        ``eps`` for ``sgd`` (``None``: ``sqrt(2 eta / beta)``, the Gibbs match).
    momentum
        ``beta`` of the seed's momentum SGD.
    max_num_doublings
        NUTS tree depth limit.
    sghmc_alpha
        Friction of SGHMC.
    mass_matrix
        NUTS/HMC metric: ``"diagonal"`` (BlackJAX window adaptation, per
        chain) or ``"identity"`` (only the step size is adapted, by dual
        averaging). On a singular target, where the valleys through the
        singular point run in different directions, a chain adapts its
        diagonal metric to the arm it sits in and then cannot turn into the
        other arm; the identity metric treats all directions alike.
    """

    step_size: float | None = None
    num_integration_steps: int = 10
    target_acceptance: float | None = None
    noise: float | None = None
    momentum: float = 0.0
    max_num_doublings: int = 10
    sghmc_alpha: float = 0.01
    default_step_size: float = 1e-3
    mass_matrix: str = "diagonal"

    def __post_init__(self) -> None:
        if self.step_size is not None and not self.step_size > 0:
            raise ValueError(f"step size must be > 0, got {self.step_size}")
        if self.noise is not None and not self.noise >= 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if int(self.num_integration_steps) < 1:
            raise ValueError(
                f"num_integration_steps must be >= 1, got {self.num_integration_steps}"
            )
        if self.mass_matrix not in ("diagonal", "identity"):
            raise ValueError(f"mass_matrix must be 'diagonal' or 'identity', got {self.mass_matrix!r}")
        if self.target_acceptance is not None and not 0 < self.target_acceptance < 1:
            raise ValueError(f"target acceptance must be in (0, 1), got {self.target_acceptance}")


def build_sampler(name: str, target: Target, options: SamplerOptions | None = None) -> Sampler:
    """The sampler called ``name`` on ``target``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from models.toy import toy_target
    >>> sampler = build_sampler("mala", toy_target("quadratic", beta=1.0))
    >>> state, params = sampler.warmup(jax.random.key(0), jnp.zeros(2), 50)
    >>> state, info = sampler.step(jax.random.key(1), state, params)
    """
    options = options or SamplerOptions()
    builders = {
        "nuts": _nuts,
        "hmc": _hmc,
        "mala": _mala,
        "ula": _ula,
        "sgld": _sgld,
        "sghmc": _sghmc,
        "sgd": _sgd,
    }
    if name not in builders:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return builders[name](target, options)


# ----------------------------------------------------------------- shared warmups


def burn_in(step: Callable, init: Callable, params: dict) -> Callable:
    """Warmup for samplers without adaptation: ``num_steps`` plain steps."""

    def warmup(rng_key, position, num_steps: int):
        state = init(position)
        if num_steps == 0:
            return state, params

        def body(state, key):
            return step(key, state, params)[0], None

        state, _ = jax.lax.scan(body, state, jax.random.split(rng_key, num_steps))
        return state, params

    return warmup


def _dual_averaging(step: Callable, init: Callable, params: dict, target: float) -> Callable:
    """Warmup adapting ``params['step_size']`` to an acceptance rate (BlackJAX dual averaging)."""
    da_init, da_update, da_final = blackjax.adaptation.step_size.dual_averaging_adaptation(target)

    def warmup(rng_key, position, num_steps: int):
        state = init(position)
        if num_steps == 0:
            return state, params

        def body(carry, key):
            state, da_state = carry
            p = dict(params, step_size=jnp.exp(da_state.log_step_size))
            state, info = step(key, state, p)
            return (state, da_update(da_state, info.acceptance_rate)), None

        (state, da_state), _ = jax.lax.scan(
            body, (state, da_init(params["step_size"])), jax.random.split(rng_key, num_steps)
        )
        return state, dict(params, step_size=da_final(da_state))

    return warmup


def _hmc_stats(state, info, params) -> dict:
    return {
        "lp": state.logdensity,
        "acceptance_rate": info.acceptance_rate,
        "diverging": info.is_divergent,
        "energy": info.energy,
        "n_steps": info.num_integration_steps,
        "step_size": params["step_size"],
    }


def _hmc_family(target: Target, options: SamplerOptions, algorithm, kernel, extra: dict):
    """NUTS and HMC: window adaptation of step size and diagonal mass matrix."""
    logdensity_fn = target.logdensity_fn
    fixed = {
        "step_size": jnp.asarray(options.step_size or 0.1, jnp.float32),  # start of adaptation
        "inverse_mass_matrix": jnp.ones(target.dim),
    }

    def init(position):
        return blackjax.mcmc.hmc.init(position, logdensity_fn)

    def step(rng_key, state, params):
        return kernel(rng_key, state, logdensity_fn, **params, **extra)

    adapt = options.step_size is None
    target_acceptance = options.target_acceptance or 0.8

    def warmup(rng_key, position, num_steps: int):
        if not adapt:
            return burn_in(step, init, fixed)(rng_key, position, num_steps)
        if options.mass_matrix == "identity" or num_steps < MIN_WINDOW_ADAPTATION:
            return _dual_averaging(step, init, fixed, target_acceptance)(rng_key, position, num_steps)
        adaptation = blackjax.window_adaptation(
            algorithm,
            logdensity_fn,
            target_acceptance_rate=target_acceptance,
            adaptation_info_fn=blackjax.adaptation.base.get_filter_adapt_info_fn(),
            **extra,
        )
        (state, params), _ = adaptation.run(rng_key, position, num_steps)
        return state, {key: params[key] for key in fixed}

    return init, step, warmup


def _nuts(target: Target, options: SamplerOptions) -> Sampler:
    kernel = blackjax.nuts.build_kernel()
    extra = {"max_num_doublings": int(options.max_num_doublings)}
    _, step, warmup = _hmc_family(target, options, blackjax.nuts, kernel, extra)

    def stats(state, info, params):
        out = _hmc_stats(state, info, params)
        out["tree_depth"] = info.num_trajectory_expansions
        return out

    return Sampler("nuts", warmup, step, stats, adjusted=True, variable_cost=True, unrolled_keys=True)


def _hmc(target: Target, options: SamplerOptions) -> Sampler:
    kernel = blackjax.hmc.build_kernel()
    extra = {"num_integration_steps": int(options.num_integration_steps)}
    _, step, warmup = _hmc_family(target, options, blackjax.hmc, kernel, extra)
    return Sampler("hmc", warmup, step, _hmc_stats, adjusted=True, unrolled_keys=True)


def _mala(target: Target, options: SamplerOptions) -> Sampler:
    logdensity_fn = target.logdensity_fn
    kernel = blackjax.mala.build_kernel()
    params = {"step_size": jnp.asarray(options.step_size or 0.01, jnp.float32)}

    def init(position):
        return blackjax.mala.init(position, logdensity_fn)

    def step(rng_key, state, params):
        return kernel(rng_key, state, logdensity_fn, params["step_size"])

    def stats(state, info, params):
        return {
            "lp": state.logdensity,
            "acceptance_rate": info.acceptance_rate,
            "step_size": params["step_size"],
        }

    if options.step_size is None:
        warmup = _dual_averaging(step, init, params, options.target_acceptance or 0.57)
    else:
        warmup = burn_in(step, init, params)
    return Sampler("mala", warmup, step, stats, adjusted=True, unrolled_keys=True)


def _ula(target: Target, options: SamplerOptions) -> Sampler:
    """Unadjusted Langevin: MALA's proposal (BlackJAX's Euler solver) always accepted."""
    logdensity_fn = target.logdensity_fn
    integrator = overdamped_langevin(jax.value_and_grad(logdensity_fn))
    params = {"step_size": jnp.asarray(options.step_size or options.default_step_size, jnp.float32)}

    def init(position):
        return DiffusionState(*blackjax.mala.init(position, logdensity_fn))

    def step(rng_key, state, params):
        return integrator(rng_key, state, params["step_size"]), None

    def stats(state, info, params):
        return {"lp": state.logdensity, "step_size": params["step_size"]}

    return Sampler("ula", burn_in(step, init, params), step, stats, adjusted=False, unrolled_keys=True)


class SGState(NamedTuple):
    """BlackJAX's SG-MCMC kernels return a bare position; we give it a state."""

    position: jax.Array


def _full_batch_grad(target: Target) -> Callable:
    """BlackJAX gradient-estimator signature, full batch (toy targets have no data)."""
    grad_fn = jax.grad(target.logdensity_fn)
    return lambda position, minibatch: grad_fn(position)


def _sg_stats(target: Target) -> Callable:
    def stats(state, info, params):
        return {"lp": target.logdensity_fn(state.position), "step_size": params["step_size"]}

    return stats


def _sgld(target: Target, options: SamplerOptions) -> Sampler:
    kernel = blackjax.sgld.build_kernel()
    grad_estimator = _full_batch_grad(target)
    params = {"step_size": jnp.asarray(options.step_size or options.default_step_size, jnp.float32)}

    def step(rng_key, state, params):
        position = kernel(rng_key, state.position, grad_estimator, None, params["step_size"])
        return SGState(position), None

    warmup = burn_in(step, SGState, params)
    return Sampler("sgld", warmup, step, _sg_stats(target), adjusted=False, unrolled_keys=True)


def _sghmc(target: Target, options: SamplerOptions) -> Sampler:
    kernel = blackjax.sghmc.build_kernel(alpha=options.sghmc_alpha)
    grad_estimator = _full_batch_grad(target)
    num_steps = int(options.num_integration_steps)
    params = {"step_size": jnp.asarray(options.step_size or options.default_step_size, jnp.float32)}

    def step(rng_key, state, params):
        position = kernel(
            rng_key, state.position, grad_estimator, None, params["step_size"], num_steps
        )
        return SGState(position), None

    warmup = burn_in(step, SGState, params)
    return Sampler("sghmc", warmup, step, _sg_stats(target), adjusted=False, unrolled_keys=True)


def _sgd(target: Target, options: SamplerOptions) -> Sampler:
    """The seed's noisy SGD on the target's potential ``-log p / beta``."""
    loss_fn = target.potential_fn
    kernel = sgd_kernel.build_kernel()
    lr = float(options.step_size or options.default_step_size)
    noise = options.noise if options.noise is not None else sgd_kernel.matching_noise(lr, target.beta)
    params = {
        "step_size": jnp.asarray(lr, jnp.float32),
        "noise": jnp.asarray(noise, jnp.float32),
        "momentum": jnp.asarray(options.momentum, jnp.float32),
    }

    def init(position):
        return sgd_kernel.init(position, loss_fn)

    def step(rng_key, state, params):
        return kernel(
            rng_key, state, loss_fn, params["step_size"], params["noise"], params["momentum"]
        )

    def stats(state, info, params):
        return {"lp": -target.beta * state.loss, "step_size": params["step_size"]}

    return Sampler("sgd", burn_in(step, init, params), step, stats, adjusted=False, unrolled_keys=True)


def describe(options: SamplerOptions) -> dict[str, Any]:
    """The options as a JSON-friendly dict (for result attributes)."""
    return {k: v for k, v in options.__dict__.items()}
