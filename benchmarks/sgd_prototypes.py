"""Prototypes of the noisy-SGD run loop, to find what bounds ``run_final_positions``.

Nothing here is used by the package; nothing in the package is patched. Each
prototype is a jitted ``(run_index, draw_keys, root, positions) -> positions``
over one batch of runs, with one aspect of ``samplers/run.py`` changed at a
time (see :class:`Variant`). The ``faithful`` variant reproduces the package's
final positions bit for bit (:func:`check_parity`).

What the package does per run and step (``samplers/run.py`` +
``samplers/sgd.py``): ``fold_in(draw_key_c, t)`` (one Threefry hash),
``normal(key, (2,))`` (with ``jax_threefry_partitionable``, one more hash per
32-bit word), the kernel (velocity, position, ``value_and_grad`` of the loss,
``eta * ||v||``), the stats (``lp``), a non-finite check of position and
``lp``, and a ``where``-select of the whole ``SGDState``. On CPU, JAX lowers
each Threefry hash to a *rolled* 5-iteration loop (``_threefry2x32_cpu_lowering_rule``),
so inside the step scan every hash is a nested loop over the batch.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from models.toy import cross_potential
from samplers import sgd as sgd_kernel
from samplers.run import chain_keys


@dataclass(frozen=True)
class Variant:
    """One prototype.

    layout
        ``vmap``: a per-run function vmapped over the batch, as in
        ``samplers/run.py``; ``aos``: a scan over steps of a ``(B, dim)`` array
        (what one writes in NumPy); ``soa``: the same on ``(dim, B)``
        (coordinates as separate contiguous rows).
    state
        ``full``: the kernel's ``SGDState`` and the ``lp`` stat, as in the
        package; ``lean``: only position and gradient.
    finite
        ``select``: per-step check and ``where``-select of the state (package);
        ``flag``: per-step check into an alive flag, no select (the output of
        ``run_final_positions`` is NaN for a dead run either way);
        ``end``: one check of the final position; ``off``: none.
    noise
        ``fold_in``: ``normal(fold_in(key_c, t), (dim,))`` per run and step
        (package); ``block``: ``normal(key_c, (T, dim))`` once per run;
        ``counter``: one unrolled Threefry hash per run and step of the counter
        ``(run index, t)`` under the step key ``fold_in(root, t)`` (two
        normals per hash; independent of batch size and chunking, like the
        package's scheme); ``batch``: ``normal(fold_in(root, t), (B, dim))``
        (depends on the batching); ``none``: no noise (the floor).
    impl
        PRNG implementation of the keys (``threefry2x32``, ``rbg``, ``unsafe_rbg``).
    partitionable
        ``jax_threefry_partitionable`` (JAX's default is ``True``).
    """

    name: str
    layout: str = "vmap"
    state: str = "full"
    finite: str = "select"
    noise: str = "fold_in"
    impl: str = "threefry2x32"
    partitionable: bool = True


FAITHFUL = Variant("faithful copy of samplers/run.py")

VARIANTS = (
    FAITHFUL,
    Variant("finite: flag only, no where-select", finite="flag"),
    Variant("finite: off", finite="off"),
    Variant("state: lean (x, grad)", state="lean"),
    Variant("lean + finite flag", state="lean", finite="flag"),
    Variant("impl=unsafe_rbg", impl="unsafe_rbg"),
    Variant("threefry_partitionable=False", partitionable=False),
    Variant("noise: block normal(key_c, (T, dim))", noise="block"),
    Variant("noise: counter hash (run, t), unrolled", noise="counter"),
    Variant("noise: none (floor of this loop)", noise="none"),
    Variant("lean + flag + counter", state="lean", finite="flag", noise="counter"),
    Variant(
        "aos scan, lean, flag, counter", layout="aos", state="lean", finite="flag", noise="counter"
    ),
    Variant(
        "soa scan, lean, flag, counter", layout="soa", state="lean", finite="flag", noise="counter"
    ),
    Variant(
        "soa scan, lean, end check, counter",
        layout="soa",
        state="lean",
        finite="end",
        noise="counter",
    ),
    Variant(
        "soa scan, lean, flag, batch normal()",
        layout="soa",
        state="lean",
        finite="flag",
        noise="batch",
    ),
    Variant(
        "soa scan, lean, flag, no noise (floor)",
        layout="soa",
        state="lean",
        finite="flag",
        noise="none",
    ),
)


def config_context(variant: Variant):
    """The JAX config a variant traces and runs under."""
    if variant.partitionable:
        return contextlib.nullcontext()
    return jax.threefry_partitionable(False)


# ---------------------------------------------------------------- counter-based noise

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32 (20 rounds), unrolled, elementwise: XLA fuses it into one loop.

    Bit-identical to ``jax.extend.random.threefry_2x32`` (checked in
    :func:`check_threefry`), which on CPU lowers to a rolled loop instead.
    """
    u32 = np.uint32
    ks = (k0, k1, k0 ^ k1 ^ u32(0x1BD11BDA))
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = (x1 << u32(r)) | (x1 >> u32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + u32(i + 1)
    return x0, x1


def bits_to_normal(bits, dtype=jnp.float32):
    """``jax.random.normal``'s transform: 23 random mantissa bits -> uniform(-1, 1) -> erf_inv."""
    one = jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    u = jnp.maximum(lo, (one - 1.0) * 2.0 - 1.0)
    return (np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)).astype(dtype)


def counter_normals(step_key_data, run_index, dim: int):
    """``dim`` standard normals per run from hashes of ``(run_index, pair)``.

    ``step_key_data``: the uint32 pair of ``fold_in(root, t)``; ``run_index``:
    uint32 array of global run indices, any shape S. Returns ``S + (dim,)``.
    """
    k0, k1 = step_key_data[0], step_key_data[1]
    out = []
    for pair in range((dim + 1) // 2):
        a, b = threefry2x32(k0, k1, run_index, jnp.full_like(run_index, pair))
        out += [bits_to_normal(a), bits_to_normal(b)]
    return jnp.stack(out[:dim], axis=-1)


def check_threefry() -> None:
    from jax.extend.random import threefry_2x32

    key = jax.random.key_data(jax.random.key(42))
    count = jnp.arange(64, dtype=jnp.uint32)
    ref = threefry_2x32((key[0], key[1]), count)
    a, b = threefry2x32(key[0], key[1], count[:32], count[32:])
    assert np.array_equal(np.concatenate([a, b]), np.asarray(ref)), "threefry mismatch"


# ---------------------------------------------------------------- the prototypes


def loss_fn(x, a=100.0, lam=0.0):
    return cross_potential(x, a=a, lam=lam)


def _finite(*xs):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in xs]))


@functools.cache
def make(variant: Variant, num_steps: int, lr: float, noise: float, a: float = 100.0):
    """Jitted ``(run_index (B,), draw_keys (B,), root, positions (B, dim)) -> positions``."""
    if variant.layout == "vmap":
        return _make_vmap(variant, num_steps, lr, noise, a)
    return _make_scan(variant, num_steps, lr, noise, a)


def _make_vmap(variant: Variant, num_steps: int, lr: float, noise: float, a: float):
    loss = functools.partial(loss_fn, a=a)
    lr32, noise32, zero, one = (jnp.float32(v) for v in (lr, noise, 0.0, 1.0))
    kernel = sgd_kernel.build_kernel()
    vg = jax.value_and_grad(loss)

    def delta_for(key, index, root, t, x):
        if variant.noise == "fold_in":
            return jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
        if variant.noise == "counter":
            step_key = jax.random.key_data(jax.random.fold_in(root, t))
            return counter_normals(step_key, index, x.shape[0])
        return jnp.zeros_like(x)  # "none"; "block" is handled by the caller

    def step_full(state, key, index, root, t, delta, alive):
        if variant.noise == "fold_in":  # exactly the package's kernel call
            new, _ = kernel(jax.random.fold_in(key, t), state, loss, lr32, noise32, zero)
        else:  # the kernel's arithmetic with a given increment
            if delta is None:
                delta = delta_for(key, index, root, t, state.position)
            velocity = zero * state.velocity - one * state.loss_grad
            position = state.position + lr32 * velocity + noise32 * delta
            value, grad = vg(position)
            new = sgd_kernel.SGDState(position, velocity, value, grad)
            _ = lr32 * jnp.linalg.norm(velocity)  # SGDInfo (dead code: XLA drops it)
        lp = -new.loss  # the ``sgd`` sampler's stats, beta = 1
        if variant.finite == "select":
            ok = alive & _finite(new.position, lp)
            return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state), ok
        if variant.finite == "flag":
            return new, alive & _finite(new.position, lp)
        return new, alive

    def step_lean(state, key, index, root, t, delta, alive):
        x, g = state
        if delta is None:
            delta = delta_for(key, index, root, t, x)
        x_new = x - lr32 * g + noise32 * delta
        g_new = jax.grad(loss)(x_new)
        if variant.finite == "select":
            ok = alive & _finite(x_new)
            return (jnp.where(ok, x_new, x), jnp.where(ok, g_new, g)), ok
        if variant.finite == "flag":
            return (x_new, g_new), alive & _finite(x_new)
        return (x_new, g_new), alive

    step = step_lean if variant.state == "lean" else step_full

    def one_run(index, key, root, x):
        state = (x, jax.grad(loss)(x)) if variant.state == "lean" else sgd_kernel.init(x, loss)
        block = variant.noise == "block"
        if block:  # scanned over as xs, not indexed
            deltas = jax.random.normal(key, (num_steps,) + x.shape, x.dtype)
        else:
            deltas = jnp.zeros((num_steps, 0), x.dtype)

        def body(carry, xs):
            state, alive = carry
            t, delta = xs
            return step(state, key, index, root, t, delta if block else None, alive), None

        ts = jnp.arange(num_steps, dtype=jnp.uint32)
        (state, alive), _ = jax.lax.scan(body, (state, jnp.asarray(True)), (ts, deltas))
        x = state[0] if variant.state == "lean" else state.position
        if variant.finite == "end":
            alive = _finite(x)
        return jnp.where(alive, x, jnp.nan)

    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, None, 0)))


def _make_scan(variant: Variant, num_steps: int, lr: float, noise: float, a: float):
    """Steps outside, the batch inside: a scan over steps of whole arrays."""
    assert variant.state == "lean", "array-layout prototypes carry (x, grad) only"
    lr32, noise32 = jnp.float32(lr), jnp.float32(noise)
    soa = variant.layout == "soa"
    # gradient of the summed loss = per-run gradients (runs are independent)
    if soa:
        grad = jax.grad(lambda x: jnp.sum(loss_fn(x.T, a=a)))
    else:
        grad = jax.grad(lambda x: jnp.sum(loss_fn(x, a=a)))

    def batch_fn(run_index, draw_keys, root, positions):
        x0 = positions.T if soa else positions
        dim = positions.shape[1]

        def body(carry, t):
            x, g, alive = carry
            if variant.noise == "counter":
                step_key = jax.random.key_data(jax.random.fold_in(root, t))
                delta = counter_normals(step_key, run_index, dim)
                delta = delta.T if soa else delta
            elif variant.noise == "batch":
                delta = jax.random.normal(jax.random.fold_in(root, t), x.shape, x.dtype)
            else:
                delta = jnp.zeros_like(x)
            x_new = x - lr32 * g + noise32 * delta
            g_new = grad(x_new)
            if variant.finite in ("flag", "select"):
                ok = alive & jnp.all(jnp.isfinite(x_new), axis=0 if soa else 1)
                if variant.finite == "select":
                    keep = ok[None, :] if soa else ok[:, None]
                    x_new, g_new = jnp.where(keep, x_new, x), jnp.where(keep, g_new, g)
                alive = ok
            return (x_new, g_new, alive), None

        alive = jnp.ones(positions.shape[0], bool)
        ts = jnp.arange(num_steps, dtype=jnp.uint32)
        (x, _, alive), _ = jax.lax.scan(body, (x0, grad(x0), alive), ts)
        x = x.T if soa else x
        if variant.finite == "end":
            alive = jnp.all(jnp.isfinite(x), axis=1)
        return jnp.where(alive[:, None], x, jnp.nan)

    return jax.jit(batch_fn)


def run(
    variant: Variant,
    positions,
    *,
    run_key: jax.Array,
    num_steps: int = 100,
    lr: float = 1e-3,
    noise: float = 0.01,
    batch_size: int = 65_536,
) -> np.ndarray:
    """Drive a prototype over all runs in padded batches, like ``run_final_positions``.

    ``run_key`` is a threefry key (as the package's); for another ``impl`` a
    key of that implementation is derived from its bits.
    """
    with config_context(variant):
        fn = make(variant, num_steps, float(lr), float(noise))
        if variant.impl != "threefry2x32":
            seed = int(jax.random.bits(run_key, dtype=jnp.uint32))
            run_key = jax.random.key(seed, impl=variant.impl)
        positions = jnp.asarray(positions)
        n = positions.shape[0]
        size = min(batch_size, n)
        out = []
        for first in range(0, n, size):
            batch = positions[first : first + size]
            count = batch.shape[0]
            if count < size:
                batch = jnp.concatenate([batch, jnp.repeat(batch[:1], size - count, axis=0)])
            keys = chain_keys(run_key, size, first)
            # run_chains splits each chain key into (warmup, draws) and uses the second
            draw_keys = jax.vmap(jax.random.split)(keys)[:, 1]
            index = jnp.arange(first, first + size, dtype=jnp.uint32)
            out.append(jax.device_get(fn(index, draw_keys, run_key, batch))[:count])
        return np.concatenate(out)


def check_parity(num_runs: int = 4096, num_steps: int = 100, seed: int = 3) -> float:
    """Max |difference| between :data:`FAITHFUL` and ``run_final_positions`` (0 expected)."""
    from models.toy import toy_target
    from samplers.kernels import SamplerOptions, build_sampler
    from samplers.run import run_final_positions

    target = toy_target("cross", {"a": 100.0, "lam": 0.0, "box": "none"}, beta=1.0)
    sampler = build_sampler("sgd", target, SamplerOptions(step_size=1e-3, noise=0.01))
    init_key, run_key = jax.random.split(jax.random.key(seed))
    positions = target.init_fn(init_key, num_runs)
    ours = run_final_positions(
        run_key,
        sampler,
        positions,
        num_steps=num_steps,
        record_fn=lambda z: {"x": z},
        batch_size=1024,
        progress=False,
    )["x"]
    proto = run(FAITHFUL, positions, run_key=run_key, num_steps=num_steps, batch_size=1024)
    return float(np.max(np.abs(proto - ours)))


# ---------------------------------------------------------------- Threefry, unrolled, as a PRNG impl


def _iota_2x32(shape):
    """``prng.iota_2x32_shape`` for arrays of fewer than 2**32 elements: (0, flat index)."""
    n = int(np.prod(shape)) if shape else 1
    if n >= 2**32:
        raise NotImplementedError("more than 2**32 random words")
    lo = jax.lax.iota(np.uint32, n).reshape(shape)
    return jnp.zeros_like(lo), lo


def _uf_seed(seed):
    seed = jnp.asarray(seed)
    hi = jnp.right_shift(seed, 32) if seed.dtype.itemsize == 8 else jnp.zeros_like(seed)
    return jnp.stack([hi.astype(np.uint32), (seed & 0xFFFFFFFF).astype(np.uint32)])


def _uf_split(key, shape):  # the "foldlike" (partitionable) split
    c1, c2 = _iota_2x32(tuple(shape))
    b1, b2 = threefry2x32(key[0], key[1], c1, c2)
    return jnp.stack([b1, b2], axis=b1.ndim)


def _uf_fold_in(key, data):  # threefry_2x32(key, threefry_seed(data)) for 32-bit data
    data = jnp.asarray(data).astype(np.uint32)
    b1, b2 = threefry2x32(key[0], key[1], jnp.zeros_like(data), data)
    return jnp.stack([b1, b2])


def _uf_random_bits(key, bit_width, shape):  # the partitionable scheme
    if bit_width != 32:
        raise NotImplementedError("prototype: 32-bit words only")
    c1, c2 = _iota_2x32(tuple(shape))
    b1, b2 = threefry2x32(key[0], key[1], c1, c2)
    return b1 ^ b2


def _define_unrolled():
    from jax.extend.random import define_prng_impl

    return define_prng_impl(
        key_shape=(2,),
        seed=_uf_seed,
        split=_uf_split,
        random_bits=_uf_random_bits,
        fold_in=_uf_fold_in,
        name="threefry2x32 (unrolled)",
        tag="fry_u",
    )


UNROLLED_THREEFRY = _define_unrolled()


def as_unrolled(key: jax.Array) -> jax.Array:
    """The same key data (so the same streams) under :data:`UNROLLED_THREEFRY`."""
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=UNROLLED_THREEFRY)


def check_unrolled_impl() -> None:
    """The unrolled impl draws exactly what the default threefry impl draws (partitionable)."""
    k = jax.random.key(7)
    u = as_unrolled(k)
    for f in (
        lambda k: jax.random.normal(jax.random.fold_in(k, 3), (5, 2)),
        lambda k: jax.random.key_data(jax.random.split(k, 4)),
        lambda k: jax.random.uniform(
            jax.vmap(jax.random.fold_in, (None, 0))(k, jnp.arange(6, dtype=jnp.uint32))[2], (3,)
        ),
    ):
        assert np.array_equal(np.asarray(f(k)), np.asarray(f(u))), "unrolled impl differs"


def use_unrolled_cpu_lowering() -> None:
    """Monkeypatch (this process only): JAX's own unrolled Threefry lowering on CPU too.

    JAX registers the rolled variant for CPU (``_threefry2x32_cpu_lowering_rule``)
    and the unrolled one elsewhere. Affects only functions compiled afterwards.
    """
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as tf

    mlir.register_lowering(tf.threefry2x32_p, tf._threefry2x32_lowering_rule, platform="cpu")
