"""The unrolled Threefry keys draw exactly what JAX's threefry2x32 keys draw."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.toy import toy_target
from samplers import run as run_module
from samplers.kernels import build_sampler
from samplers.run import run_chains, run_final_positions
from samplers.threefry import UNROLLED_THREEFRY, hash_2x32, unrolled

SHAPES = [(), (2,), (7,), (4, 1, 5)]

DRAWS = {
    "normal": lambda k, s: jax.random.normal(k, s),
    "uniform": lambda k, s: jax.random.uniform(k, s, minval=-2.0, maxval=3.0),
    "bits8": lambda k, s: jax.random.bits(k, s, dtype=jnp.uint8),
    "bits16": lambda k, s: jax.random.bits(k, s, dtype=jnp.uint16),
    "bits32": lambda k, s: jax.random.bits(k, s, dtype=jnp.uint32),
    "randint": lambda k, s: jax.random.randint(k, s, -5, 1000),
    "bernoulli": lambda k, s: jax.random.bernoulli(k, 0.3, s),
    "exponential": lambda k, s: jax.random.exponential(k, s),
    "truncated_normal": lambda k, s: jax.random.truncated_normal(k, -1.0, 2.0, s),
    "split": lambda k, s: jax.random.key_data(jax.random.split(k, s if s else 1)),
    "fold_in": lambda k, s: jax.random.key_data(jax.random.fold_in(k, 12345)),
    "fold_in_twice": lambda k, s: jax.random.key_data(jax.random.fold_in(jax.random.fold_in(k, 7), 2**32 - 1)),
}


def _both(key):
    return key, jax.random.wrap_key_data(jax.random.key_data(key), impl=UNROLLED_THREEFRY)


def _assert_same(ours, ref):
    """Integers (bits, keys, indices) exactly; floats to 2 ulps.

    The random bits are identical. A float transform of them (``erf_inv`` for
    ``normal``) sits in other fused code when the hash is unrolled, and XLA
    may vectorize it differently: one of the 20 normals of shape (4, 1, 5)
    comes out 1 ulp apart.
    """
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    if np.issubdtype(ref.dtype, np.floating):
        np.testing.assert_array_max_ulp(ours, ref, maxulp=2)
    else:
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("name", sorted(DRAWS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_same_bits_as_jax_threefry(name, shape):
    ref, ours = _both(jax.random.key(20261205))
    draw = jax.jit(DRAWS[name], static_argnums=1)
    _assert_same(draw(ours, shape), draw(ref, shape))


def test_same_bits_for_permutation_choice_categorical_and_vmapped_keys():
    ref, ours = _both(jax.random.key(3))
    fns = [
        lambda k: jax.random.permutation(k, 50),
        lambda k: jax.random.choice(k, 100, (10,), replace=False),
        lambda k: jax.random.categorical(k, jnp.log(jnp.arange(1.0, 6.0)), shape=(20,)),
        lambda k: jax.vmap(lambda kk: jax.random.normal(kk, (3,)))(jax.random.split(k, 9)),
        lambda k: jax.random.key_data(jax.vmap(jax.random.fold_in, (None, 0))(k, jnp.arange(5, dtype=jnp.uint32))),
    ]
    for fn in fns:
        _assert_same(jax.jit(fn)(ours), jax.jit(fn)(ref))
        _assert_same(fn(ours), fn(ref))  # eagerly too


@pytest.mark.parametrize("seed", [0, 1, 2**31 - 1, -7])
def test_seeding_matches(seed):
    ref = jax.random.key_data(jax.random.key(seed))
    ours = jax.random.key_data(jax.random.key(seed, impl=UNROLLED_THREEFRY))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


def test_same_bits_with_x64():
    """64-bit words, 64-bit seeds and float64 draws, as JAX's."""
    with jax.enable_x64(True):
        ref, ours = _both(jax.random.key(2**40 + 3))
        np.testing.assert_array_equal(
            jax.random.key_data(jax.random.key(2**40 + 3, impl=UNROLLED_THREEFRY)), jax.random.key_data(ref)
        )
        for fn in (
            lambda k: jax.random.bits(k, (3, 4), dtype=jnp.uint64),
            lambda k: jax.random.normal(k, (5,), dtype=jnp.float64),
        ):
            _assert_same(jax.jit(fn)(ours), jax.jit(fn)(ref))


def test_hash_matches_jax_primitive():
    from jax.extend.random import threefry_2x32

    key = jax.random.key_data(jax.random.key(42))
    count = jnp.arange(64, dtype=jnp.uint32)
    ref = threefry_2x32((key[0], key[1]), count)
    a, b = hash_2x32(key[0], key[1], count[:32], count[32:])
    np.testing.assert_array_equal(np.concatenate([a, b]), np.asarray(ref))


def test_unrolled_relabels_only_threefry_keys_on_cpu():
    key = jax.random.key(0)
    out = unrolled(key)
    assert jax.random.key_impl(out) != jax.random.key_impl(key)
    np.testing.assert_array_equal(jax.random.key_data(out), jax.random.key_data(key))
    batch = unrolled(jax.random.split(key, 4))  # any shape of keys
    assert batch.shape == (4,)
    rbg = jax.random.key(0, impl="rbg")
    assert unrolled(rbg) is rbg  # another implementation: untouched
    with jax.threefry_partitionable(False):  # JAX's other bit layout: untouched
        assert unrolled(key) is key


def test_run_loop_draws_do_not_depend_on_the_lowering(monkeypatch):
    """The run loop relabels keys inside its programs; turning that off gives the same draws."""
    target = toy_target("cross", beta=20.0)
    positions = target.init_fn(jax.random.key(1), 6)

    def runs():
        out = {}
        for name in ("mala", "nuts", "sgld"):
            trace = run_chains(
                jax.random.key(2), build_sampler(name, target), positions, record_fn=target.record_fn,
                num_warmup=50, num_draws=40, progress=False,
            )
            out[name] = trace.draws["x"]
        sgd = build_sampler("sgd", toy_target("cross", {"box": "none"}, beta=1.0))
        out["sgd"] = run_final_positions(
            jax.random.key(3), sgd, positions, num_steps=30, record_fn=lambda z: {"x": z}, progress=False
        )["x"]
        return out

    fast = runs()
    run_module._make_chunk_fn.cache_clear()
    run_module._make_warmup_fn.cache_clear()
    run_module._COMPILED.clear()
    monkeypatch.setattr(run_module, "unrolled", lambda key: key)
    try:
        plain = runs()
    finally:
        run_module._make_chunk_fn.cache_clear()
        run_module._make_warmup_fn.cache_clear()
        run_module._COMPILED.clear()
    for name in fast:
        np.testing.assert_array_equal(fast[name], plain[name], err_msg=name)


def test_gamma_and_poisson_are_the_exceptions():
    """JAX looks at the key's implementation for these: why samplers opt in (``Sampler.unrolled_keys``)."""
    ref, ours = _both(jax.random.key(20261205))
    with pytest.raises(NotImplementedError):
        jax.random.poisson(ours, 3.0, (5,))
    a, b = np.asarray(jax.random.gamma(ours, 2.5, (4000,))), np.asarray(jax.random.gamma(ref, 2.5, (4000,)))
    np.testing.assert_allclose(a, b, rtol=1e-5)  # another code path (lax.map), rounded differently


def test_only_samplers_that_allow_it_get_the_unrolled_keys():
    target = toy_target("cross", beta=20.0)
    base = build_sampler("mala", target)
    seen = []

    def step(key, state, params):
        seen.append(jax.random.key_impl(key))  # at trace time
        return base.step(key, state, params)

    positions = target.init_fn(jax.random.key(1), 2)
    for allow in (True, False):
        sampler = base._replace(step=step, unrolled_keys=allow)
        run_chains(jax.random.key(2), sampler, positions, record_fn=target.record_fn, num_warmup=0,
                   num_draws=3, progress=False)
    assert seen[0] == jax.random.key_impl(unrolled(jax.random.key(0)))
    assert seen[-1] == "threefry2x32"
