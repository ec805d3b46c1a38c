"""The one run loop: any :class:`~samplers.kernels.Sampler`, many chains.

Chains are vmapped (on a CPU, variable-cost kernels such as NUTS are mapped
one after another instead), steps are a ``lax.scan`` inside a jitted chunk,
and the chunks are driven from Python so the loop can show progress, keep
memory bounded, checkpoint and hand results back between chunks. Each
device's chunks run back to back on a worker thread while the caller handles
the previous chunk (:func:`_pipelined`). With ``program_key`` the traced
programs are kept across processes (:mod:`samplers.programs`).

Randomness is addressed, not threaded: chain ``c`` owns
``fold_in(rng_key, c)`` and step ``t`` of that chain uses
``fold_in(draw_key_c, t)``. The draws therefore do not depend on the chunk
size, on how chains are batched, or on where a run was resumed.

A chain whose position, log density or recorded values become non-finite is
stopped: its state is frozen at the last finite step, later draws are NaN,
``sample_stats.is_finite`` says from which draw on, and
``sample_stats.nonfinite_reason`` says why at that draw (1: position,
2: log density, 3: a recorded value; 0 otherwise). Such values are never
averaged in.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from samplers.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from samplers.kernels import Sampler
from samplers.placement import ChainLayout, chain_layout, gather, is_writer
from samplers.programs import compile_program
from samplers.threefry import unrolled

__all__ = ["Trace", "run_chains", "chain_keys", "run_final_positions"]


class Trace(NamedTuple):
    """What a run produced, as host arrays in ``(chain, draw, ...)`` layout."""

    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    warmup_seconds: float
    sampling_seconds: float
    num_warmup: int
    thin: int
    compile_seconds: float = 0.0


def chain_keys(rng_key: jax.Array, num_chains: int, start: int = 0) -> jax.Array:
    """Key of each chain, ``fold_in(rng_key, chain_index)``."""
    return _chain_keys(rng_key, jnp.uint32(start), int(num_chains))


@functools.partial(jax.jit, static_argnums=2)
def _chain_keys(rng_key, start, num_chains: int):
    index = start + jnp.arange(num_chains, dtype=jnp.uint32)
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(rng_key, index)


@functools.partial(jax.jit, static_argnums=2)
def _warmup_and_draw_keys(rng_key, start, num_chains: int):
    """Per chain: (warmup key, draw key) = ``split(fold_in(rng_key, chain))`` (one compiled program)."""
    split = jax.vmap(jax.random.split)(_chain_keys(rng_key, start, num_chains))
    return split[:, 0], split[:, 1]


def _keys_for(sampler: Sampler, key):
    """The key a kernel gets: :mod:`samplers.threefry`'s relabeling where the sampler allows it."""
    return unrolled(key) if getattr(sampler, "unrolled_keys", False) else key


def _tree_where(flag, new, old):
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(tree)]
    checks = [jnp.all(jnp.isfinite(x)) for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)


@functools.lru_cache(maxsize=64)
def _make_chunk_fn(sampler: Sampler, record_fn: Callable, thin: int, num_draws: int):
    """Jitted ``(keys, states, params, alive, start) -> (states, alive, (records, stats))``."""

    def one_chain(key, state, params, alive, start):
        key = _keys_for(sampler, key)

        def kernel_step(state, alive, reason, t):
            new_state, info = sampler.step(jax.random.fold_in(key, t), state, params)
            stats = sampler.stats(new_state, info, params)
            position_ok = _all_finite(new_state.position)
            lp_ok = _all_finite(stats["lp"])
            ok = alive & position_ok & lp_ok
            why = jnp.where(alive & ~position_ok, 1, jnp.where(alive & ~lp_ok, 2, 0))
            return _tree_where(ok, new_state, state), ok, jnp.maximum(reason, why), stats

        def draw(carry, i):
            state, alive = carry
            reason = jnp.zeros((), jnp.int8)
            state, alive, reason, stats = kernel_step(state, alive, reason, i * thin)
            if thin > 1:  # only the last step of each draw is kept

                (state, alive, reason, stats), _ = jax.lax.scan(
                    lambda c, j: (kernel_step(c[0], c[1], c[2], i * thin + j), None),
                    (state, alive, reason, stats),
                    jnp.arange(1, thin, dtype=jnp.uint32),
                )
            rec = record_fn(state.position)
            record_ok = _all_finite(rec)
            reason = jnp.where(alive & ~record_ok, 3, reason).astype(jnp.int8)
            alive = alive & record_ok
            rec = jax.tree.map(lambda x: _mask(alive, x), rec)
            stats = dict(
                jax.tree.map(lambda x: _mask(alive, x), stats),
                is_finite=alive,
                nonfinite_reason=reason,
            )
            return (state, alive), (rec, stats)

        steps = start + jnp.arange(num_draws, dtype=jnp.uint32)
        (state, alive), out = jax.lax.scan(draw, (state, alive), steps)
        return state, alive, out

    if _sequential(sampler):

        def over_chains(keys, states, params, alive, start):
            return jax.lax.map(lambda xs: one_chain(*xs, start), (keys, states, params, alive))

        return jax.jit(over_chains)
    return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, 0, 0, None)))


def _sequential(sampler: Sampler) -> bool:
    """Map over chains one by one: variable-cost kernels on a CPU (see ``Sampler``)."""
    return bool(getattr(sampler, "variable_cost", False)) and jax.default_backend() == "cpu"


@functools.lru_cache(maxsize=64)
def _make_warmup_fn(sampler: Sampler, num_steps: int):
    """Jitted ``(keys, positions) -> (states, params)`` over chains; cached so runs do not trace again."""
    if _sequential(sampler):

        def over_chains(keys, positions):
            return jax.lax.map(
                lambda xs: sampler.warmup(_keys_for(sampler, xs[0]), xs[1], num_steps), (keys, positions)
            )

        return jax.jit(over_chains)
    return jax.jit(jax.vmap(lambda k, p: sampler.warmup(_keys_for(sampler, k), p, num_steps)))


def _concat_chains(blocks):
    """Per-device pieces (on device) -> one host tree along the chain axis."""
    blocks = jax.device_get(blocks)
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *blocks)


def _join(layout: ChainLayout, carry):
    """Per-device blocks -> the whole run's host arrays, padding chains dropped."""
    return jax.tree.map(lambda x: x[: layout.num_chains], gather(_concat_chains(carry)))


def _split(layout: ChainLayout, tree):
    """The whole run's host arrays -> this process's per-device blocks (padded as the layout says)."""
    leaves, treedef = jax.tree.flatten(tree)
    extra = layout.padded - layout.num_chains
    leaves = [np.concatenate([x, np.repeat(x[-1:], extra, 0)]) if extra else np.asarray(x) for x in leaves]
    per_leaf = [layout.blocks(x) for x in leaves]
    return [jax.tree.unflatten(treedef, list(block)) for block in zip(*per_leaf, strict=True)]


def _concat(pieces):
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *pieces)


def _empty_records(out, num_chains: int):
    """One chunk's records (shapes ``out``) with the draw axis emptied, for ``num_chains`` chains."""
    return jax.tree.map(lambda s: np.zeros((num_chains, 0, *s.shape[2:]), s.dtype), out)


def _out_template(chunk_maker, draw_keys, states, params, alive):
    """Shapes of one chunk's records, with the draw axis emptied (traces the chunk)."""
    _, _, out = jax.eval_shape(chunk_maker, draw_keys, states, params, alive, jnp.uint32(0))
    return _empty_records(out, draw_keys.shape[0])


def _save(path, states, params, alive, pieces, chunks_done, warmup_seconds, meta, empty_records):
    records = _concat(pieces) if pieces else empty_records
    tree = (states, params, alive, records)
    save_checkpoint(path, tree, dict(meta, chunks_done=chunks_done, warmup_seconds=warmup_seconds))


def _resume(path, sampler, chunk_maker, warmup_keys, draw_keys, positions, num_warmup, meta):
    """States and records from a checkpoint written by :func:`_save` for the same run."""
    leaves, saved = load_checkpoint(path)
    for key, value in meta.items():
        if json.loads(json.dumps(saved.get(key), default=str)) != json.loads(json.dumps(value, default=str)):
            raise CheckpointError(
                f"the checkpoint at {path} was made with {key}={saved.get(key)!r}, this run has "
                f"{value!r}; resume with the same settings or start over with --force"
            )
    states, params = jax.eval_shape(
        _make_warmup_fn(sampler, int(num_warmup)), warmup_keys, positions
    )
    alive = jax.ShapeDtypeStruct((positions.shape[0],), jnp.bool_)
    records = _out_template(chunk_maker, draw_keys, states, params, alive)
    template = (states, params, alive, records)
    expected, treedef = jax.tree.flatten(template)
    if len(expected) != len(leaves):
        raise CheckpointError(f"the checkpoint at {path} does not fit this run ({len(leaves)} arrays, need {len(expected)})")
    for have, want in zip(leaves[: len(expected)], expected, strict=True):
        if have.shape[:1] != tuple(np.shape(want))[:1] or have.dtype != want.dtype:
            raise CheckpointError(f"the checkpoint at {path} does not fit this run (shape {have.shape} vs {np.shape(want)})")
    states, params, alive, records = jax.tree.unflatten(treedef, [jnp.asarray(x) for x in leaves])
    records = jax.tree.map(np.asarray, records)
    chunks_done = int(saved["chunks_done"])
    pieces = [records] if chunks_done else []
    return states, params, alive, pieces, chunks_done, float(saved.get("warmup_seconds", 0.0))


_COMPILED: dict[Any, Any] = {}
_COMPILED_LOCK = threading.Lock()


def _compiled(fn, *args, role: str = "", facts: Any = None):
    """Ahead-of-time compiled ``fn`` for these argument shapes, kept for reuse.

    Compiling before the clock starts keeps compilation out of the sampling
    time (ESS per second is about sampling), and the cache means batches of
    chains and repeated runs in one process never trace again. With ``facts``
    (see :func:`run_chains`' ``program_key``) the traced program is also kept
    across processes (:mod:`samplers.programs`).
    """
    leaves, treedef = jax.tree.flatten(args)
    key = (
        fn,
        treedef,
        tuple((jnp.shape(x), jnp.result_type(x), getattr(x, "sharding", None)) for x in leaves),
    )
    with _COMPILED_LOCK:  # devices compile concurrently (see _compile_each)
        hit = _COMPILED.get(key)
    if hit is None:
        hit = compile_program(fn, args, role=role, facts=facts)
        with _COMPILED_LOCK:
            if len(_COMPILED) > 128:
                _COMPILED.clear()
            _COMPILED[key] = hit
    return hit


def _compile_each(compile_one, per_device_args):
    """One compiled program per device, compiled concurrently (XLA releases the GIL)."""
    return _on_each_device([functools.partial(compile_one, *a) for a in per_device_args])


_POOLS: dict[int, Any] = {}
if hasattr(os, "register_at_fork"):  # a forked child has the executors but not their threads
    os.register_at_fork(after_in_child=_POOLS.clear)


def _on_each_device(calls):
    """Run one call per device, concurrently, and return their results in order.

    JAX dispatches asynchronously, but a CPU device executes a program on the
    thread that dispatched it: a loop over devices would run their blocks one
    after another. One thread per device lets host devices (one per core, see
    :func:`samplers.placement.use_host_cores`) run at the same time; on GPUs it
    only adds a thread hop. Each result is awaited in its thread.
    """
    if len(calls) == 1:
        return [calls[0]()]
    return list(_pool(len(calls)).map(lambda call: jax.block_until_ready(call()), calls))  # (non-arrays pass through)


def _pipelined(chunk_fns, draw_blocks, carry, chunk_indices, chunk_size: int):
    """Yield ``(carry, records)`` per chunk, each a list over devices, while the devices run ahead.

    One worker per device runs that device's chunks one after another and
    hands each result over; the caller joins, checkpoints and reports chunk
    ``c`` while the devices already compute ``c + 1``. No device waits for
    another (chains' costs vary chunk to chunk, so a barrier per chunk would
    cost the slowest device's time every chunk), and the caller waits in a
    queue, where Ctrl-C reaches it at once. Closing the generator (an
    interrupt, an error) stops the workers after the chunk they are in.
    """
    import queue

    chunk_indices = list(chunk_indices)
    stop = threading.Event()
    queues = [queue.Queue() for _ in chunk_fns]

    def work(i):
        fn, keys, (states, params, alive) = chunk_fns[i], draw_blocks[i], carry[i]
        device = next(iter(keys.devices()))
        try:
            for c in chunk_indices:
                if stop.is_set():
                    return
                states, alive, out = jax.block_until_ready(
                    fn(keys, states, params, alive, jax.device_put(np.uint32(c * chunk_size), device))
                )
                queues[i].put(((states, params, alive), out))
        except BaseException as err:  # noqa: BLE001 - handed to the caller, which raises it
            queues[i].put(err)

    pool = _pool(len(chunk_fns))
    for i in range(len(chunk_fns)):
        pool.submit(work, i)
    try:
        for _ in chunk_indices:
            got = [q.get() for q in queues]
            for item in got:
                if isinstance(item, BaseException):
                    raise item
            yield [g[0] for g in got], [g[1] for g in got]
    finally:
        stop.set()  # workers still in a chunk finish it and return


def _pool(size: int):
    with _COMPILED_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            from concurrent.futures import ThreadPoolExecutor

            pool = _POOLS[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="surf-device")
    return pool


def _mask(alive, x):
    """NaN for a stopped chain's values (integers and booleans are kept)."""
    x = jnp.asarray(x)
    return jnp.where(alive, x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.inexact) else x


def run_chains(
    rng_key: jax.Array,
    sampler: Sampler,
    positions: jax.Array,
    *,
    record_fn: Callable[[jax.Array], dict[str, jax.Array]],
    num_warmup: int,
    num_draws: int,
    thin: int = 1,
    chunk_size: int | None = None,
    progress: bool | None = None,
    description: str = "sampling",
    on_chunk: Callable[[int, Any], None] | None = None,
    first_chain: int = 0,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    checkpoint_meta: dict[str, Any] | None = None,
    devices: int | None = None,
    program_key: Any = None,
) -> Trace:
    """Run ``sampler`` from ``positions`` (shape ``(num_chains, dim)``).

    Parameters
    ----------
    rng_key
        The run's key; chain ``c`` uses ``fold_in(rng_key, c)``.
    sampler
        From :func:`samplers.kernels.build_sampler`.
    positions
        Initial positions in sampling coordinates, one row per chain.
    record_fn
        ``position -> dict`` of what to keep per draw.
    num_warmup, num_draws, thin
        Warmup (adaptation or burn-in) steps, draws kept, kernel steps per draw.
    chunk_size
        Draws per jitted chunk, at most 10 000 by default: about 20 chunks
        when a progress bar, a checkpoint or ``on_chunk`` watches the run,
        else 4 (each chunk costs a dispatch and a host transfer; an
        interrupt waits for the chunk in flight). The draws do not depend
        on it.
    progress
        Show a rich progress bar (default: when stderr is a terminal).
    on_chunk
        Called as ``on_chunk(draws_done, carry)`` after each chunk.
    first_chain
        Index of the first chain, so a run split into batches of chains draws
        exactly what one big run would.
    checkpoint
        Where to keep a checkpoint (:mod:`samplers.checkpoint`), rewritten
        atomically after warmup and after every chunk. A run killed at any
        moment can continue from the last one.
    resume
        Continue from ``checkpoint`` instead of starting: the draws are then
        identical, bit for bit, to those of an uninterrupted run, because
        every step's key is addressed by its index.
    checkpoint_meta
        JSON-able facts stored with the checkpoint (the configuration); on
        resume they must match, so a checkpoint is never continued with
        other settings.
    devices
        Local devices per process to spread the chains over (``None``: the
        default of :func:`samplers.placement.use_devices`, normally every
        local device). Chains are padded to fill equal blocks, one block per
        device (the padding is dropped); each device runs the same
        one-device program, so the draws are the same bits on any device
        count and in a multi-process run (:mod:`samplers.placement`).
    program_key
        JSON-able facts that determine ``sampler``, its target and
        ``record_fn`` completely (a built-in model's configuration). With a
        persistent compilation cache enabled, the traced programs are kept
        under this key and a later run with the same key skips tracing
        (:mod:`samplers.programs`); ``None`` (the default): trace every run.
        Never pass a key that does not pin the code (a user's loss file).

    Returns
    -------
    Trace
        Draws and stats as NumPy arrays of shape ``(num_chains, num_draws, ...)``.

    Examples
    --------
    >>> import jax
    >>> from models.toy import toy_target
    >>> from samplers.kernels import build_sampler
    >>> target = toy_target("quadratic", beta=1.0)
    >>> trace = run_chains(jax.random.key(0), build_sampler("mala", target),
    ...                    target.init_fn(jax.random.key(1), 4), record_fn=target.record_fn,
    ...                    num_warmup=100, num_draws=200, progress=False)
    >>> trace.draws["x"].shape
    (4, 200, 2)
    """
    for label, value, low in (("num_warmup", num_warmup, 0), ("num_draws", num_draws, 1), ("thin", thin, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value}")
    positions = jnp.asarray(positions)
    if positions.ndim != 2:
        raise ValueError(f"positions must have shape (num_chains, dim), got {positions.shape}")
    num_chains = positions.shape[0]
    layout = chain_layout(num_chains, devices)
    padded = layout.padded
    if padded > num_chains:  # extra chains keep the blocks even; they are dropped at the end
        positions = jnp.concatenate([positions, jnp.repeat(positions[-1:], padded - num_chains, 0)])
    warmup_keys, draw_keys = _warmup_and_draw_keys(rng_key, jnp.uint32(first_chain), padded)
    draw_blocks = layout.blocks(draw_keys)

    progress = sys.stderr.isatty() if progress is None else bool(progress)
    if chunk_size is None:  # chunks are for whoever watches the run; each costs a dispatch and a transfer
        watched = progress or checkpoint is not None or on_chunk is not None
        chunk_size = min(10_000, max(1, math.ceil(num_draws / (20 if watched else 4))))
    num_chunks = math.ceil(num_draws / chunk_size)
    chunk_size = math.ceil(num_draws / num_chunks)
    chunk_maker = _make_chunk_fn(sampler, record_fn, int(thin), chunk_size)
    meta = dict(checkpoint_meta or {}, num_draws=int(num_draws), chunk_size=chunk_size,
                num_chains=int(num_chains), num_warmup=int(num_warmup), thin=int(thin))

    def save(joined, pieces, chunks_done):
        """``joined``: the whole run's ``(states, params, alive)``, gathered by every process; process 0 writes."""
        states, params, alive = joined
        if is_writer():
            _save(checkpoint, states, params, alive, pieces, chunks_done, warmup_seconds, meta, empty_records)

    start = time.perf_counter()
    if resume:
        real = slice(0, num_chains)  # checkpoints hold the real chains only: any layout can resume them
        states, params, alive, pieces, first_chunk, warmup_seconds = _resume(
            checkpoint, sampler, chunk_maker, warmup_keys[real], draw_keys[real], positions[real], num_warmup, meta
        )
        carry = _split(layout, (states, params, alive))
    else:
        warmup = _make_warmup_fn(sampler, int(num_warmup))
        args = list(zip(layout.blocks(warmup_keys), layout.blocks(positions), strict=True))
        warmups = _compile_each(
            functools.partial(
                _compiled, warmup, role=f"warmup {int(num_warmup)} {_sequential(sampler)}", facts=program_key
            ),
            args,
        )
        carry = _on_each_device(
            [
                functools.partial(lambda fn, k, p, d: (*fn(k, p), jax.device_put(jnp.ones(layout.per_device, bool), d)),
                                  fn, k, p, d)
                for fn, (k, p), d in zip(warmups, args, layout.devices, strict=True)
            ]
        )
        jax.block_until_ready(carry)
        warmup_seconds = time.perf_counter() - start
        pieces, first_chunk = [], 0

    start = time.perf_counter()
    chunk_role = f"chunk {int(thin)} {chunk_size} {_sequential(sampler)}"
    chunk_fns = _compile_each(
        lambda k, c, d: _compiled(
            chunk_maker, k, *c, jax.device_put(np.uint32(0), d), role=chunk_role, facts=program_key
        ),
        list(zip(draw_blocks, carry, layout.devices, strict=True)),
    )
    compile_seconds = time.perf_counter() - start
    # the compiled program knows its output shapes: no second trace for the checkpoint's template
    empty_records = _empty_records(chunk_fns[0].out_info[2], num_chains)
    if checkpoint is not None and not resume:
        save(_join(layout, carry), pieces, 0)

    start = time.perf_counter()
    with _progress(progress, description, num_draws) as advance:
        advance(min(num_draws, first_chunk * chunk_size))
        chunks = _pipelined(chunk_fns, draw_blocks, carry, range(first_chunk, num_chunks), chunk_size)
        for c, (carry, outs) in zip(range(first_chunk, num_chunks), chunks, strict=True):
            pieces.append(_join(layout, outs))
            done = min(num_draws, (c + 1) * chunk_size)
            joined = _join(layout, carry) if checkpoint is not None or on_chunk is not None else None
            if checkpoint is not None:
                save(joined, pieces, c + 1)
            advance(done)
            if on_chunk is not None:
                on_chunk(done, (joined[0], joined[2]))
    sampling_seconds = time.perf_counter() - start
    params = _join(layout, carry)[1]

    records, stats = _concat(pieces)
    records, stats = jax.tree.map(lambda x: x[:num_chains, :num_draws], (records, stats))
    return Trace(
        draws={k: np.asarray(v) for k, v in records.items()},
        stats={k: np.asarray(v) for k, v in stats.items()},
        params={k: np.asarray(v)[:num_chains] for k, v in params.items()},
        warmup_seconds=warmup_seconds,
        sampling_seconds=sampling_seconds,
        num_warmup=int(num_warmup),
        thin=int(thin),
        compile_seconds=compile_seconds,
    )


def run_final_positions(
    rng_key: jax.Array,
    sampler: Sampler,
    positions: jax.Array,
    *,
    num_steps: int,
    record_fn: Callable[[jax.Array], dict[str, jax.Array]],
    batch_size: int = 131_072,
    progress: bool | None = None,
    description: str = "runs",
    devices: int | None = None,
) -> dict[str, np.ndarray]:
    """Where many independent runs end after ``num_steps`` steps.

    The runs are processed in batches of ``batch_size`` (memory stays bounded
    and the working set stays in cache), each run keyed by its global index,
    so the result does not depend on ``batch_size`` (nor on ``devices``, which
    :func:`run_chains` spreads each batch over). Returns arrays of shape
    ``(num_runs, ...)``; a run that hit a non-finite value is NaN.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    positions = jnp.asarray(positions)
    num_runs = positions.shape[0]
    size = min(int(batch_size), num_runs)
    out: list[dict[str, np.ndarray]] = []
    with _progress(progress, description, num_runs) as advance:
        for first in range(0, num_runs, size):
            batch = positions[first : first + size]
            count = batch.shape[0]
            if count < size:  # pad the last batch: one compiled shape for all batches
                batch = jnp.concatenate([batch, jnp.repeat(batch[:1], size - count, axis=0)])
            trace = run_chains(
                rng_key,
                sampler,
                batch,
                record_fn=record_fn,
                num_warmup=0,
                num_draws=1,
                thin=num_steps,
                progress=False,
                first_chain=first,
                devices=devices,
            )
            out.append({k: v[:count, 0] for k, v in trace.draws.items()})
            advance(first + count)
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


class _progress:
    """A rich progress bar over draws, or nothing (quiet or not a terminal)."""

    def __init__(self, enabled: bool | None, description: str, total: int):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description, self.total = description, total
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda done: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.description, total=self.total)
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
