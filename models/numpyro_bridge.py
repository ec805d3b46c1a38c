"""A NumPyro model as a :class:`~models.target.Target`.

NumPyro's ``potential_fn`` is the *negative* log density on unconstrained
sites; this module is the one place where that sign is flipped. Constrained
sites are handled by NumPyro's own transforms (``initialize_model``), and
draws are reported in constrained space (``postprocess_fn``), deterministic
sites included.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from numpyro import handlers
from numpyro.infer.util import initialize_model

from models.target import Target

__all__ = ["numpyro_target"]


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def numpyro_target(
    model: Callable,
    *,
    model_args: tuple = (),
    model_kwargs: dict | None = None,
    beta: float = 1.0,
    name: str = "numpyro",
    rng_key: jax.Array | None = None,
) -> Target:
    """Wrap a NumPyro model; ``beta`` tempers the whole log joint.

    Examples
    --------
    >>> import numpyro, numpyro.distributions as dist
    >>> def model():
    ...     numpyro.sample("sigma", dist.HalfNormal(1.0))
    >>> t = numpyro_target(model)
    >>> t.dim
    1
    """
    if not (isinstance(beta, (int, float)) and beta > 0):
        raise ValueError(f"beta for a NumPyro model must be a positive number, got {beta!r}")
    model_kwargs = model_kwargs or {}
    key = jax.random.PRNGKey(0) if rng_key is None else rng_key
    try:  # look at the sites first: NumPyro's own error for a discrete latent is obscure
        trace = handlers.trace(handlers.seed(model, key)).get_trace(*model_args, **model_kwargs)
    except Exception as err:  # a user's model: one line
        raise ValueError(f"running the NumPyro model failed: {_first_line(err)}") from None
    discrete = [
        site_name
        for site_name, site in trace.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and getattr(site["fn"], "is_discrete", False)
    ]
    if discrete:
        raise ValueError(
            f"the model has discrete latent sites {discrete}; gradient-based samplers need "
            "continuous latents (marginalize them out, e.g. with numpyro.contrib.funsor)"
        )
    try:
        info = initialize_model(key, model, model_args=model_args, model_kwargs=model_kwargs)
    except Exception as err:  # a user's model: one line
        raise ValueError(f"NumPyro could not initialize the model: {_first_line(err)}") from None
    flat, unravel = ravel_pytree(info.param_info.z)
    potential_fn = info.potential_fn
    postprocess_fn = info.postprocess_fn

    def logdensity_fn(z):
        return -beta * potential_fn(unravel(z))

    def init_fn(rng_key, num_chains: int):
        keys = jax.random.split(rng_key, num_chains)
        if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
            keys = jax.random.key_data(keys)
        batch = initialize_model(keys, model, model_args=model_args, model_kwargs=model_kwargs)
        return jax.vmap(lambda tree: ravel_pytree(tree)[0])(batch.param_info.z)

    def record_fn(z):
        return dict(postprocess_fn(unravel(z)))

    return Target(
        name=name,
        dim=int(flat.shape[0]),
        logdensity_fn=logdensity_fn,
        loss_fn=None,
        beta=float(beta),
        init_fn=init_fn,
        record_fn=record_fn,
        config={"model": name, "beta": float(beta), "beta_spec": str(beta)},
    )
