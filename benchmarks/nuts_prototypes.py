"""Prototype: chains one after another (``lax.map``) instead of ``vmap`` in ``samplers/run.py``.

Nothing here is used by the package. :func:`sequential_chains` is a context
manager that swaps ``samplers.run._make_warmup_fn`` and
``samplers.run._make_chunk_fn`` for copies that differ in one place: the
per-chain function is mapped over the chains with ``jax.lax.map`` (a loop
inside the same jitted program) instead of ``jax.vmap``.

Why it matters on CPU: NUTS builds its trajectory in ``while_loop``s whose trip
count depends on the chain. Under ``vmap`` every chain runs until the longest
one is done (and every operation carries select masks); under ``lax.map`` each
chain runs its own trip count. On a CPU, 8 chains of a 2-D target gain nothing
from SIMD batching, so the loop is cheaper. The draws are identical (the keys
are addressed per chain and step, not threaded through the batch).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

import samplers.run as run_mod
from samplers.kernels import Sampler


def _map_chains(fn: Callable, batch_size: int | None) -> Callable:
    """``vmap(fn, in_axes=(0, ..., 0, None...))`` as a ``lax.map`` over the leading axis."""

    def mapped(*args, n_mapped: int):
        xs, rest = args[:n_mapped], args[n_mapped:]
        return jax.lax.map(lambda a: fn(*a, *rest), xs, batch_size=batch_size)

    return mapped


@functools.lru_cache(maxsize=64)
def make_warmup_fn(sampler: Sampler, num_steps: int, batch_size: int | None = None):
    mapped = _map_chains(sampler.warmup, batch_size)
    return jax.jit(lambda keys, positions: mapped(keys, positions, num_steps, n_mapped=2))


@functools.lru_cache(maxsize=64)
def make_chunk_fn(
    sampler: Sampler, record_fn: Callable, thin: int, num_draws: int, batch_size: int | None = None
):
    """``samplers.run._make_chunk_fn`` with ``lax.map`` over chains (body copied verbatim)."""
    _all_finite, _tree_where, _mask = run_mod._all_finite, run_mod._tree_where, run_mod._mask

    def one_chain(key, state, params, alive, start):
        def kernel_step(state, alive, t):
            new_state, info = sampler.step(jax.random.fold_in(key, t), state, params)
            stats = sampler.stats(new_state, info, params)
            ok = alive & _all_finite((new_state.position, stats["lp"]))
            return _tree_where(ok, new_state, state), ok, stats

        def draw(carry, i):
            state, alive = carry
            state, alive, stats = kernel_step(state, alive, i * thin)
            if thin > 1:

                def body(carry, j):
                    return kernel_step(carry[0], carry[1], i * thin + j), None

                (state, alive, stats), _ = jax.lax.scan(
                    body, (state, alive, stats), jnp.arange(1, thin, dtype=jnp.uint32)
                )
            rec = record_fn(state.position)
            alive = alive & _all_finite(rec)
            rec = jax.tree.map(lambda x: _mask(alive, x), rec)
            stats = dict(jax.tree.map(lambda x: _mask(alive, x), stats), is_finite=alive)
            return (state, alive), (rec, stats)

        steps = start + jnp.arange(num_draws, dtype=jnp.uint32)
        (state, alive), out = jax.lax.scan(draw, (state, alive), steps)
        return state, alive, out

    mapped = _map_chains(one_chain, batch_size)
    return jax.jit(
        lambda keys, states, params, alive, start: mapped(
            keys, states, params, alive, start, n_mapped=4
        )
    )


@contextlib.contextmanager
def sequential_chains(batch_size: int | None = None):
    """Within the block, ``run_chains`` maps chains with ``lax.map`` (this process only)."""
    saved = run_mod._make_warmup_fn, run_mod._make_chunk_fn
    run_mod._make_warmup_fn = lambda sampler, num_steps: make_warmup_fn(sampler, num_steps, batch_size)
    run_mod._make_chunk_fn = lambda sampler, record_fn, thin, num_draws: make_chunk_fn(
        sampler, record_fn, thin, num_draws, batch_size
    )
    try:
        yield
    finally:
        run_mod._make_warmup_fn, run_mod._make_chunk_fn = saved
