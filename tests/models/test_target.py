"""The Target contract and the box bijection."""

from __future__ import annotations

import math

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.target import Box, Target, box_bijection
from models.toy import make_loss_target

boxes = st.tuples(st.floats(-50, 50), st.floats(1e-2, 100)).map(lambda t: Box(t[0], t[0] + t[1]))
# |z| <= 6 keeps sigmoid(z) at least 2.5e-3 away from 0 and 1, so float32 loses at
# most about eps32 / 2.5e-3 ~ 5e-5 (relative) in the inverse.
z_vectors = st.lists(st.floats(-6, 6), min_size=1, max_size=6).map(
    lambda v: jnp.asarray(v, jnp.float32)
)


@pytest.mark.parametrize("low, high", [(0.0, 0.0), (1.0, -1.0), (2.0, 1.999)])
def test_box_needs_low_below_high(low, high):
    with pytest.raises(ValueError, match="low < high"):
        Box(low, high)


@settings(max_examples=30, deadline=None)
@given(box=boxes, z=z_vectors)
def test_box_forward_lands_inside_and_inverse_undoes_it(box, z):
    forward, inverse, _ = box_bijection(box)
    x = forward(z)
    assert bool(jnp.all((x > box.low) & (x < box.high)))
    # x is float32: it resolves the box only to eps * max|bound|, which in z is amplified by
    # 1 / (width * u (1 - u)) (a narrow box far from 0 is the worst case hypothesis found)
    u = np.asarray(jax.nn.sigmoid(z), np.float64)
    eps = np.finfo(np.float32).eps * max(abs(box.low), abs(box.high), box.high - box.low)
    tol = 2e-3 + 4 * eps / ((box.high - box.low) * u * (1 - u))
    assert np.all(np.abs(np.asarray(inverse(x)) - np.asarray(z)) <= tol)


@settings(max_examples=30, deadline=None)
@given(box=boxes, u=st.lists(st.floats(0.01, 0.99), min_size=1, max_size=6))
def test_box_inverse_then_forward_is_identity(box, u):
    forward, inverse, _ = box_bijection(box)
    x = box.low + (box.high - box.low) * jnp.asarray(u, jnp.float32)
    width = box.high - box.low
    assert np.allclose(forward(inverse(x)), x, atol=1e-4 * max(width, abs(box.low), abs(box.high)))


@settings(max_examples=25, deadline=None)
@given(box=boxes, z=z_vectors)
def test_box_log_jacobian_is_log_det_of_jacfwd(box, z):
    forward, _, log_det_jacobian = box_bijection(box)
    jac = jax.jacfwd(forward)(z)
    sign, logdet = np.linalg.slogdet(np.asarray(jac, dtype=np.float64))
    assert sign > 0
    assert float(log_det_jacobian(z)) == pytest.approx(logdet, rel=1e-4, abs=1e-3)


def test_potential_fn_is_minus_logdensity_over_beta():
    beta = 2.5
    target = make_loss_target("bowl", lambda x: jnp.sum((x - 1.0) ** 2), 3, beta=beta)
    assert isinstance(target, Target)
    for z in (jnp.zeros(3), jnp.asarray([0.5, -2.0, 3.0])):
        assert float(target.potential_fn(z)) == pytest.approx(float(jnp.sum((z - 1.0) ** 2)), rel=1e-6)
        assert float(target.potential_fn(z)) == pytest.approx(-float(target.logdensity_fn(z)) / beta)


def test_box_target_logdensity_includes_the_jacobian():
    box, beta = Box(-1.0, 2.0), 3.0

    def loss(x):
        return jnp.sum(x**2)

    target = make_loss_target("boxed", loss, 2, beta=beta, box=box)
    forward, _, log_det_jacobian = box_bijection(box)
    z = jnp.asarray([0.3, -1.7])
    expected = -beta * loss(forward(z)) + log_det_jacobian(z)
    assert float(target.logdensity_fn(z)) == pytest.approx(float(expected), rel=1e-6)
    assert np.allclose(target.to_original(z), forward(z))
    record = target.record_fn(z)
    assert np.allclose(record["x"], forward(z))
    assert float(record["loss"]) == pytest.approx(float(loss(forward(z))))


def test_box_init_positions_are_finite_and_inside():
    target = make_loss_target("b", lambda x: jnp.sum(x**2), 3, beta=1.0, box=Box(0.0, 0.5))
    z = target.init_fn(jax.random.key(0), 500)
    assert z.shape == (500, 3)
    assert bool(jnp.all(jnp.isfinite(z)))
    x = target.to_original(z)
    # init region [-1, 1] is clipped to the box [0, 0.5]
    assert bool(jnp.all((x > 0.0) & (x < 0.5)))


def test_flat_loss_on_a_box_samples_the_uniform_distribution():
    """A flat loss on [low, high] is uniform there only if the Jacobian enters with the right sign.

    MALA (Metropolis-adjusted, so exact) in the sampling coordinates; the mean
    and variance of x are compared with the uniform's (low + high) / 2 and
    (high - low)^2 / 12 in units of ArviZ's Monte Carlo standard error.
    """
    from samplers.kernels import build_sampler
    from samplers.run import run_chains

    low, high = -1.0, 2.0
    target = make_loss_target("flat", lambda x: 0.0 * jnp.sum(x), 1, beta=1.0, box=Box(low, high))
    trace = run_chains(
        jax.random.key(11),
        build_sampler("mala", target),
        target.init_fn(jax.random.key(12), 16),
        record_fn=target.record_fn,
        num_warmup=300,
        num_draws=1000,
        progress=False,
    )
    x = trace.draws["x"][..., 0].astype(float)
    mean, var = (low + high) / 2, (high - low) ** 2 / 12
    z_mean = (x.mean() - mean) / float(az.mcse(x))
    sq = (x - mean) ** 2
    z_var = (sq.mean() - var) / float(az.mcse(sq))
    assert abs(z_mean) < 4, z_mean
    assert abs(z_var) < 4, z_var
    assert x.min() > low and x.max() < high
    assert math.isfinite(float(az.ess(x))) and float(az.ess(x)) > 400
