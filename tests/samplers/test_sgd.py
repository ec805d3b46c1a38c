"""The noisy momentum SGD kernel, step by step."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samplers import sgd


def loss(x):
    return jnp.sum(x**2) + jnp.sum(jnp.sin(3 * x))


def grad_np(x):
    return 2 * x + 3 * np.cos(3 * x)


KERNEL = jax.jit(sgd.build_kernel(), static_argnums=2)


def test_init_starts_at_rest_with_the_loss_and_gradient():
    x = jnp.asarray([0.2, -1.0, 0.5])
    state = sgd.init(x, loss)
    assert np.array_equal(state.velocity, np.zeros(3))
    assert float(state.loss) == pytest.approx(float(loss(x)))
    assert np.allclose(state.loss_grad, grad_np(np.asarray(x)), rtol=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    lr=st.floats(1e-3, 0.5),
    momentum=st.floats(0.0, 0.95),
    seed=st.integers(0, 2**16),
)
def test_two_noiseless_steps_follow_the_update_rule(lr, momentum, seed):
    x0 = np.random.default_rng(seed).normal(size=3).astype(np.float32)
    state = sgd.init(jnp.asarray(x0), loss)
    key = jax.random.key(seed)
    s1, info1 = KERNEL(key, state, loss, lr, 0.0, momentum)
    s2, _ = KERNEL(key, s1, loss, lr, 0.0, momentum)

    v1 = -(1 - momentum) * grad_np(x0.astype(float))
    x1 = x0 + lr * v1
    v2 = momentum * v1 - (1 - momentum) * grad_np(x1)
    x2 = x1 + lr * v2
    assert np.allclose(s1.velocity, v1, rtol=1e-4, atol=1e-5)
    assert np.allclose(s1.position, x1, rtol=1e-4, atol=1e-5)
    assert np.allclose(s2.position, x2, rtol=1e-4, atol=1e-4)
    assert float(s2.loss) == pytest.approx(float(loss(jnp.asarray(x2, jnp.float32))), rel=1e-4, abs=1e-4)
    assert float(info1.step_norm) == pytest.approx(lr * np.linalg.norm(v1), rel=1e-4, abs=1e-6)


def test_noise_is_gaussian_with_the_given_scale():
    """With a flat loss the step is pure noise: N(0, eps^2) per coordinate."""
    flat = lambda x: 0.0 * jnp.sum(x)  # noqa: E731
    eps, n = 0.3, 20_000
    state = sgd.init(jnp.zeros(2), flat)
    keys = jax.random.split(jax.random.key(0), n)
    steps = jax.vmap(lambda k: KERNEL(k, state, flat, 0.1, eps, 0.0)[0].position)(keys)
    steps = np.asarray(steps, dtype=float)
    # mean: z-score against the exact standard error eps / sqrt(n)
    assert np.all(np.abs(steps.mean(0)) < 4 * eps / math.sqrt(n))
    # variance: the sample variance of n normals has sd eps^2 sqrt(2 / (n - 1))
    assert np.all(np.abs(steps.var(0, ddof=1) - eps**2) < 4 * eps**2 * math.sqrt(2 / (n - 1)))


def test_different_keys_give_different_noise_and_same_key_the_same():
    state = sgd.init(jnp.zeros(3), loss)
    a = KERNEL(jax.random.key(1), state, loss, 0.1, 0.5, 0.0)[0].position
    b = KERNEL(jax.random.key(1), state, loss, 0.1, 0.5, 0.0)[0].position
    c = KERNEL(jax.random.key(2), state, loss, 0.1, 0.5, 0.0)[0].position
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@settings(max_examples=30, deadline=None)
@given(lr=st.floats(1e-6, 10), beta=st.floats(1e-3, 1e3))
def test_matching_noise_has_langevin_temperature_one_over_beta(lr, beta):
    eps = sgd.matching_noise(lr, beta)
    # Temperature of the Euler-Maruyama step: eps^2 / (2 eta) = 1 / beta
    assert eps**2 / (2 * lr) == pytest.approx(1 / beta, rel=1e-9)


@pytest.mark.parametrize("lr, beta", [(0.0, 1.0), (-1.0, 1.0), (0.1, 0.0), (0.1, -2.0)])
def test_matching_noise_rejects_non_positive_inputs(lr, beta):
    with pytest.raises(ValueError, match="matching noise"):
        sgd.matching_noise(lr, beta)
