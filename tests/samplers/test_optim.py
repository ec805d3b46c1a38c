"""Optimizers as kernels and the seed's interventions as optax transformations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from samplers.optim import (
    add_weight_noise,
    anti_regularization,
    build_optimizer,
    large_norm,
    optimizer_sampler,
)


def test_weight_noise_adds_variance_sigma_squared_per_step():
    """Per-step increments are independent N(0, sigma^2): variance within MCSE of sigma^2."""
    sigma, dim, steps = 0.3, 4096, 8
    tx = add_weight_noise(sigma=sigma, seed=1)
    state = tx.init(jnp.zeros(dim))
    draws = []
    for _ in range(steps):
        u, state = tx.update(jnp.zeros(dim), state)
        draws.append(np.asarray(u))
    x = np.concatenate(draws).astype(np.float64)
    sq = x**2
    mcse = sq.std(ddof=1) / np.sqrt(sq.size)
    assert abs(sq.mean() - sigma**2) / mcse < 4
    assert abs(x.mean()) / (sigma / np.sqrt(x.size)) < 4
    # successive steps draw fresh noise: lag-1 correlation within 4 standard errors of 0
    corr = np.corrcoef(draws[0], draws[1])[0, 1]
    assert abs(corr) * np.sqrt(dim) < 4


def test_weight_noise_reaches_the_parameters_through_a_chain():
    sigma, dim, steps = 0.1, 2000, 50
    loss = lambda x: 0.0 * jnp.sum(x)  # noqa: E731  flat landscape: pure noise
    tx = build_optimizer("sgd", learning_rate=0.1, b1=0.0, noise=add_weight_noise(sigma=sigma, seed=0))
    sampler = optimizer_sampler(loss, tx)
    state, params = sampler.warmup(jax.random.key(0), jnp.zeros(dim), steps)
    x = np.asarray(state.position, np.float64)
    var, mcse = (x**2).mean(), (x**2).std(ddof=1) / np.sqrt(dim)
    assert abs(var - steps * sigma**2) / mcse < 4


def _descend(tx, theta, loss, steps=200):
    sampler = optimizer_sampler(loss, tx)
    state, _ = sampler.warmup(jax.random.key(0), theta, steps)
    return state.position


def test_anti_regularization_pushes_away_from_theta0():
    theta0 = jnp.array([0.5, -0.2, 0.1])
    loss = lambda x: 0.01 * jnp.sum(x**2)  # noqa: E731
    plain = _descend(build_optimizer("sgd", learning_rate=0.05, b1=0.0), theta0 + 0.01, loss)
    anti = _descend(
        build_optimizer("sgd", learning_rate=0.05, b1=0.0, interventions=[anti_regularization(gamma=0.1)]),
        theta0 + 0.01, loss,
    )
    d_plain = float(jnp.linalg.norm(plain - theta0))
    d_anti = float(jnp.linalg.norm(anti - theta0))
    assert d_anti > 2 * d_plain
    # theta0 defaults to the parameters at init; an explicit one is used as given
    tx = anti_regularization(gamma=1.0, theta0=jnp.zeros(3))
    g, _ = tx.update(jnp.zeros(3), tx.init(jnp.ones(3)), jnp.ones(3))
    np.testing.assert_allclose(g, -2.0 * jnp.ones(3))


@pytest.mark.parametrize("k", [2.0, 0.5])
def test_large_norm_moves_the_norm_to_k_norm0(k):
    theta = jnp.array([0.3, 0.4])  # norm 0.5
    flat = lambda x: 0.0 * jnp.sum(x)  # noqa: E731
    tx = build_optimizer("sgd", learning_rate=0.05, b1=0.0, interventions=[large_norm(gamma=1.0, k=k)])
    end = _descend(tx, theta, flat, steps=400)
    np.testing.assert_allclose(jnp.linalg.norm(end), k * 0.5, rtol=1e-3)
    # the direction is kept: the gradient is radial
    np.testing.assert_allclose(end / jnp.linalg.norm(end), theta / 0.5, rtol=1e-5)


def test_interventions_compose_with_adam_and_need_params():
    tx = optax.chain(anti_regularization(gamma=0.1), large_norm(gamma=0.1, k=2.0), optax.adam(1e-2))
    params = jnp.ones(4)
    updates, _ = tx.update(jnp.ones(4), tx.init(params), params)
    assert updates.shape == (4,)
    with pytest.raises(ValueError, match="needs params"):
        tx.update(jnp.ones(4), tx.init(params))


def test_optimizer_options_are_checked():
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer("lion", learning_rate=1e-3)
    with pytest.raises(ValueError, match="needs optimizer 'adamw'"):
        build_optimizer("adam", learning_rate=1e-3, weight_decay=1.0)
    with pytest.raises(ValueError, match="learning rate"):
        build_optimizer("sgd", learning_rate=0.0)


def test_warmup_schedule_is_linear():
    tx = build_optimizer("sgd", learning_rate=1.0, b1=0.0, warmup_steps=4)
    state = tx.init(jnp.zeros(1))
    sizes = []
    for _ in range(6):
        u, state = tx.update(jnp.ones(1), state)
        sizes.append(-float(u[0]))
    np.testing.assert_allclose(sizes, [0.0, 0.25, 0.5, 0.75, 1.0, 1.0], atol=1e-6)
