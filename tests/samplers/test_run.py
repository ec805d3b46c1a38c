"""The run loop: addressed randomness, chunking, thinning, non-finite chains, no retracing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.toy import make_loss_target, toy_target
from samplers.kernels import SamplerOptions, build_sampler
from samplers.run import _make_chunk_fn, chain_keys, run_chains

CHAINS, DRAWS, WARMUP = 4, 30, 10


@pytest.fixture(scope="module")
def target():
    return toy_target("quadratic", {"dim": 3}, beta=1.0)


@pytest.fixture(scope="module")
def sampler(target):
    # MALA with a fixed step: both a Gaussian proposal and a uniform accept draw per step,
    # and a warmup that consumes keys too.
    return build_sampler("mala", target, SamplerOptions(step_size=0.4))


@pytest.fixture(scope="module")
def positions(target):
    return target.init_fn(jax.random.key(1), CHAINS)


@pytest.fixture(scope="module")
def go(target, sampler, positions):
    def run(key=0, **kwargs):
        kwargs.setdefault("num_warmup", WARMUP)
        kwargs.setdefault("num_draws", DRAWS)
        pos = kwargs.pop("positions", positions)
        return run_chains(
            jax.random.key(key), sampler, pos, record_fn=target.record_fn, progress=False, **kwargs
        )

    return run


@pytest.fixture(scope="module")
def base(go):
    return go()


def test_trace_layout(base):
    assert base.draws["x"].shape == (CHAINS, DRAWS, 3)
    assert base.draws["loss"].shape == (CHAINS, DRAWS)
    assert base.stats["is_finite"].dtype == bool and base.stats["is_finite"].all()
    assert base.params["step_size"].shape == (CHAINS,)
    assert base.num_warmup == WARMUP and base.thin == 1
    assert base.warmup_seconds >= 0 and base.sampling_seconds >= 0
    assert np.all(np.isfinite(base.draws["x"]))


def test_same_key_same_draws(go, base):
    again = go()
    for name in base.draws:
        assert np.array_equal(again.draws[name], base.draws[name])
    for name in base.stats:
        assert np.array_equal(again.stats[name], base.stats[name])


def test_different_key_different_draws(go, base):
    other = go(key=1)
    assert not np.allclose(other.draws["x"], base.draws["x"])


def test_chains_get_different_randomness(go):
    same_start = jnp.zeros((CHAINS, 3))
    x = go(positions=same_start).draws["x"]
    for c in range(1, CHAINS):
        assert not np.allclose(x[0], x[c])


def test_draws_do_not_depend_on_the_chunk_size(go, base):
    chunked = go(chunk_size=7)  # 5 chunks, the last one partly past num_draws
    assert np.array_equal(chunked.draws["x"], base.draws["x"])
    assert np.array_equal(chunked.stats["lp"], base.stats["lp"])
    single = go(chunk_size=DRAWS)
    assert np.array_equal(single.draws["x"], base.draws["x"])


def test_draws_of_a_chain_do_not_depend_on_the_other_chains(go, base, positions):
    # chain c owns fold_in(key, c): running the first two chains alone changes nothing
    two = go(positions=positions[:2])
    assert np.array_equal(two.draws["x"], base.draws["x"][:2])


@pytest.mark.parametrize("thin", [2, 3])
def test_thinning_keeps_every_kth_step_of_the_unthinned_run(go, base, thin):
    # step t of a chain uses fold_in(chain_key, t), so draw i of a thinned run is the
    # state after step i * thin + thin - 1 of the unthinned run.
    thinned = go(num_draws=DRAWS // thin, thin=thin)
    assert thinned.thin == thin
    assert np.array_equal(thinned.draws["x"], base.draws["x"][:, thin - 1 :: thin])
    assert np.array_equal(thinned.stats["lp"], base.stats["lp"][:, thin - 1 :: thin])


def test_on_chunk_reports_progress(go):
    seen = []
    go(chunk_size=8, on_chunk=lambda done, carry: seen.append(done))
    assert seen == [8, 16, 24, 30]


def test_by_default_a_run_is_chunked_only_when_someone_watches_it(go, base, monkeypatch):
    import samplers.run as run_mod

    chunks = []
    real = run_mod._pipelined

    def counting(chunk_fns, draw_blocks, carry, chunk_indices, chunk_size):
        chunk_indices = list(chunk_indices)
        chunks.append((len(chunk_fns), len(chunk_indices), chunk_size))
        return real(chunk_fns, draw_blocks, carry, chunk_indices, chunk_size)

    monkeypatch.setattr(run_mod, "_pipelined", counting)
    quiet = go()  # no progress bar, checkpoint or on_chunk: 4 chunks
    assert chunks == [(1, 4, 8)]  # one device; 30 draws in chunks of 8
    chunks.clear()
    seen = []
    watched = go(on_chunk=lambda done, carry: seen.append(done))  # about 20 chunks
    assert chunks == [(1, 15, 2)] and len(seen) == 15 and seen[-1] == DRAWS
    for trace in (quiet, watched):
        assert np.array_equal(trace.draws["x"], base.draws["x"])


def test_chain_keys_are_fold_in(base):
    key = jax.random.key(3)
    keys = chain_keys(key, 3, start=2)
    for i, k in enumerate(keys):
        assert np.array_equal(
            jax.random.key_data(k), jax.random.key_data(jax.random.fold_in(key, 2 + i))
        )


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"num_draws": 0}, "num_draws"),
        ({"num_draws": 2.5}, "num_draws"),
        ({"num_warmup": -1}, "num_warmup"),
        ({"thin": 0}, "thin"),
    ],
)
def test_bad_counts_are_refused(go, kwargs, words):
    with pytest.raises(ValueError, match=words):
        go(**kwargs)


def test_positions_must_be_a_matrix(go):
    with pytest.raises(ValueError, match="num_chains, dim"):
        go(positions=jnp.zeros(3))


# ------------------------------------------------------------------ non-finite chains


def test_a_nan_region_stops_only_the_chains_that_enter_it():
    """Noiseless SGD on U = -x0^2/2 + x1^2/2, NaN where |x0| > 1.

    Gradient descent pushes x0 away from 0 geometrically: after step t (0-based)
    ``x0 = x0_start (1 + eta)^(t + 1)``, so a chain starting at x0 != 0 enters the NaN
    region at a predictable step, and one starting at x0 = 0 stays finite forever.
    """
    eta = 0.1

    def loss(x):
        value = -0.5 * x[0] ** 2 + 0.5 * x[1] ** 2
        return jnp.where(jnp.abs(x[0]) > 1.0, jnp.nan, value)

    target = make_loss_target("cliff", loss, 2, beta=1.0)
    sampler = build_sampler("sgd", target, SamplerOptions(step_size=eta, noise=0.0))
    starts = np.array([[0.0, 0.3], [0.5, 0.3], [-0.2, -0.4], [0.0, -0.5]], dtype=np.float32)
    draws, carries = 40, []
    trace = run_chains(
        jax.random.key(0),
        sampler,
        jnp.asarray(starts),
        record_fn=target.record_fn,
        num_warmup=0,
        num_draws=draws,
        chunk_size=16,
        progress=False,
        on_chunk=lambda done, carry: carries.append(carry),
    )
    finite = trace.stats["is_finite"]
    x = trace.draws["x"]
    growth = (1 + eta) ** np.arange(1, draws + 1)
    for c, (x0, _) in enumerate(starts):
        alive = finite[c]
        # once stopped, a chain stays stopped
        first_dead = int(np.argmin(alive)) if not alive.all() else draws
        assert alive[:first_dead].all() and not alive[first_dead:].any()
        # before: finite draws following the dynamics; from then on: NaN (never averaged in)
        assert np.all(np.isfinite(x[c, :first_dead]))
        assert np.all(np.isnan(x[c, first_dead:]))
        assert np.all(np.isnan(trace.draws["loss"][c, first_dead:]))
        assert np.all(np.isnan(trace.stats["lp"][c, first_dead:]))
        assert np.allclose(x[c, :first_dead, 0], x0 * growth[:first_dead], rtol=1e-4, atol=1e-6)
        if x0 == 0:
            assert first_dead == draws  # unaffected chains run to the end
        else:
            predicted = int(np.argmax(np.abs(x0) * growth > 1.0))
            assert abs(first_dead - predicted) <= 1  # float32 rounding at the boundary
    assert finite[0].all() and finite[3].all()
    assert not finite[1].all() and not finite[2].all()
    # the stopped chains' state is frozen at their last finite draw
    states, alive = carries[-1]
    assert list(np.asarray(alive)) == [True, False, False, True]
    for c in (1, 2):
        last = int(np.argmin(finite[c])) - 1
        assert np.allclose(states.position[c], x[c, last])


# ------------------------------------------------------------------ no retracing


def counting(record_fn):
    calls = []

    def wrapped(z):
        calls.append(1)  # a Python side effect: runs only while JAX traces
        return record_fn(z)

    return wrapped, calls


def test_the_chunk_is_traced_once_however_many_chunks(target, sampler, positions):
    record_one, calls_one = counting(target.record_fn)
    run_chains(jax.random.key(0), sampler, positions, record_fn=record_one,
               num_warmup=0, num_draws=7, chunk_size=7, progress=False)
    record_many, calls_many = counting(target.record_fn)
    run_chains(jax.random.key(0), sampler, positions, record_fn=record_many,
               num_warmup=0, num_draws=35, chunk_size=7, progress=False)  # 5 chunks
    assert len(calls_one) >= 1
    assert len(calls_many) == len(calls_one)


def test_calling_the_jitted_chunk_again_with_new_data_does_not_retrace(target, sampler, positions):
    record, calls = counting(target.record_fn)
    chunk = _make_chunk_fn(sampler, record, 1, 5)
    keys = chain_keys(jax.random.key(0), CHAINS)
    states, params = jax.vmap(sampler.warmup, in_axes=(0, 0, None))(keys, positions, 0)
    alive = jnp.ones(CHAINS, dtype=bool)
    states, alive, out1 = chunk(keys, states, params, alive, 0)
    traced = len(calls)
    assert traced >= 1
    # new values of every argument, same shapes and dtypes
    keys2 = chain_keys(jax.random.key(9), CHAINS)
    states2, params2 = jax.vmap(sampler.warmup, in_axes=(0, 0, None))(keys2, positions * 0.5, 0)
    params2 = jax.tree.map(lambda p: p * 0.5, params2)
    _, _, out2 = chunk(keys2, states2, params2, alive, 5)
    assert len(calls) == traced
    assert not np.allclose(out1[0]["x"], out2[0]["x"])


def test_pipelined_chunks_hand_back_errors_and_stop_when_closed():
    import time

    import samplers.run as run_mod

    calls = []

    def fn(keys, states, params, alive, start):
        calls.append(int(start))
        if int(start) == 20:
            raise RuntimeError("chunk 2 failed")
        return states + 1, alive, {"x": states}

    keys = jnp.zeros(2)
    carry = [(jnp.zeros(2), None, jnp.ones(2, bool))]
    chunks = run_mod._pipelined([fn], [keys], carry, range(5), 10)
    (first, _), (second, _) = next(chunks), next(chunks)
    assert float(first[0][0][0]) == 1.0 and float(second[0][0][0]) == 2.0
    with pytest.raises(RuntimeError, match="chunk 2 failed"):
        next(chunks)
    calls.clear()
    slow = run_mod._pipelined([lambda *a: (time.sleep(0.05), fn(*a))[1]], [keys], carry, range(50), 1)
    next(slow)
    slow.close()  # an interrupt or an error in the caller
    time.sleep(0.3)
    n = len(calls)
    time.sleep(0.2)
    assert len(calls) == n < 10, "workers kept running after the caller stopped"


def test_a_run_stopped_right_after_warmup_resumes_with_the_same_bits(go, base, tmp_path, monkeypatch):
    """The first checkpoint (no chunk yet: its empty records come from the compiled program)."""
    import samplers.run as run_mod

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop
        yield  # a generator, like the real one

    real = run_mod._pipelined
    monkeypatch.setattr(run_mod, "_pipelined", stop)
    ck = tmp_path / "ck"
    with pytest.raises(Stop):
        go(checkpoint=ck, chunk_size=8)
    monkeypatch.setattr(run_mod, "_pipelined", real)
    assert any(p.name.startswith("ck") for p in tmp_path.iterdir())  # the checkpoint written after warmup
    resumed = go(checkpoint=ck, chunk_size=8, resume=True)
    assert np.array_equal(resumed.draws["x"], base.draws["x"])
    assert np.array_equal(resumed.stats["lp"], base.stats["lp"])
    for k in base.params:
        assert np.array_equal(resumed.params[k], base.params[k]), k
