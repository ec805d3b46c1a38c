"""JAX's Threefry-2x32 keys with the hash unrolled: the same bits, compiled better on CPU.

JAX lowers its Threefry-2x32 hash (``threefry2x32_p``) to a *rolled* loop of
five iterations on CPU, to keep compilation short, and to straight-line code
everywhere else. Inside the run loop's step scan every hash is then a nested
loop whose inputs and outputs go through memory, once per key derivation and
once per random draw: on the seed's SGD that is most of the time of a step,
and a device's step cannot be fused into one pass over its chains.

:data:`UNROLLED_THREEFRY` is a PRNG implementation, defined with JAX's public
:func:`jax.extend.random.define_prng_impl`, that computes exactly what JAX's
``threefry2x32`` computes (seeding, ``split``, ``fold_in`` and random bits
of every width, in JAX's default "partitionable" scheme) with the 20 rounds
written out as ``lax`` operations, so XLA fuses them into the code around
them. :func:`unrolled` re-labels a key with it (same key data, so the same
streams); the run loop does this inside its compiled programs on CPU for
samplers that allow it (``Sampler.unrolled_keys``, set by every built-in
one). The random bits are JAX's (tested bit for bit for every kind of draw);
a float transform of them can come out 1 ulp apart where XLA vectorizes the
fused code differently (seen for one ``normal`` in 20), and the run loop's
draws were identical in every test (mala, nuts, sgld, sgd).

The bits are JAX's; the distributions built on them are too, except where
JAX itself looks at which implementation a key has: ``jax.random.gamma``
(and ``beta``, ``dirichlet``, ``t``, ``chisquare``, built on it) takes a
``lax.map`` path instead of ``vmap`` for keys that are not its own threefry,
which rounds differently, and ``jax.random.poisson`` refuses them. No
built-in sampler draws from these.

Measured (``benchmarks/bench_sgd.py``): the seed's SGD runs 1.8x faster per
device with it; bulk ``jax.random.normal`` 5x.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import define_prng_impl

__all__ = ["UNROLLED_THREEFRY", "hash_2x32", "unrolled"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def hash_2x32(k0, k1, x0, x1):
    """Threefry-2x32 with 20 rounds on ``(x0, x1)`` under the key ``(k0, k1)``, elementwise.

    The algorithm of ``jax.extend.random.threefry_2x32`` (Salmon et al. 2011,
    Random123), unrolled; all arguments ``uint32``, broadcast together.
    """
    u32 = np.uint32
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
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


def _iota_2x32(shape: tuple[int, ...]):
    """The flat index of every element of ``shape`` as (high, low) ``uint32`` words.

    What JAX's ``iota_2x32_shape`` computes, for arrays of fewer than 2**32
    elements (the high word is then 0).
    """
    size = math.prod(shape)
    if isinstance(size, int) and size > 2**32:  # (a symbolic size is left to XLA)
        raise NotImplementedError(f"random arrays of more than 2**32 elements (shape {shape})")
    low = jax.lax.iota(np.uint32, size).reshape(shape)
    return jnp.zeros_like(low), low


def _seed(seed):
    """JAX's ``threefry_seed``: a 64-bit seed as two words, a 32-bit one padded with 0."""
    seed = jnp.asarray(seed)
    if seed.shape or not jnp.issubdtype(seed.dtype, jnp.integer):
        raise TypeError(f"PRNG key seed must be an integer scalar; got {seed!r}")
    if seed.dtype.itemsize == 8:
        high = jax.lax.shift_right_logical(seed, jnp.asarray(32, seed.dtype))
        low = seed & jnp.asarray(0xFFFFFFFF, seed.dtype)
    else:
        high, low = jnp.zeros_like(seed), seed
    convert = lambda v: jax.lax.convert_element_type(v, np.uint32)  # noqa: E731
    return jnp.stack([convert(high), convert(low)])


def _split(key, shape):
    """JAX's ``split`` in the partitionable scheme: key ``i`` hashes the flat index ``i``."""
    high, low = _iota_2x32(tuple(shape))
    b0, b1 = hash_2x32(key[0], key[1], high, low)
    return jnp.stack([b0, b1], axis=b0.ndim)


def _fold_in(key, data):
    """JAX's ``fold_in``: the key hashes ``(0, data)``."""
    data = jnp.asarray(data).astype(np.uint32)
    b0, b1 = hash_2x32(key[0], key[1], np.uint32(0), data)
    return jnp.stack([b0, b1])


def _random_bits(key, bit_width, shape):
    """JAX's partitionable random bits: element ``i`` from the hash of its flat index ``i``."""
    if bit_width not in (8, 16, 32, 64):
        raise TypeError("requires 8-, 16-, 32- or 64-bit field width.")
    high, low = _iota_2x32(tuple(shape))
    b0, b1 = hash_2x32(key[0], key[1], high, low)
    if bit_width == 64:
        return (b0.astype(np.uint64) << np.uint64(32)) | b1.astype(np.uint64)
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bit_width]
    return (b0 ^ b1).astype(dtype)


UNROLLED_THREEFRY = define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32 (unrolled)",
    tag="fry_u",
)


def unrolled(key: jax.Array) -> jax.Array:
    """``key`` under :data:`UNROLLED_THREEFRY` if it is a ``threefry2x32`` key, else ``key``.

    Only on a CPU backend (elsewhere JAX already unrolls the hash, or calls a
    kernel) and only in JAX's default partitionable scheme (the other scheme
    lays the bits out differently). Works on typed keys of any shape, inside
    or outside ``jit``.
    """
    if (
        jax.default_backend() != "cpu"
        or not jax.config.jax_threefry_partitionable
        or not jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or jax.random.key_impl(key) != "threefry2x32"
    ):
        return key
    return jax.random.wrap_key_data(jax.random.key_data(key), impl=UNROLLED_THREEFRY)
