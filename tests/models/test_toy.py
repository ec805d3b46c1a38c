"""Toy potentials, parameter parsing and toy targets."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.target import box_bijection
from models.toy import (
    TOY_MODELS,
    cross_potential,
    make_loss_target,
    normal_crossing_potential,
    parse_params,
    quadratic_potential,
    toy_target,
)

points2 = st.tuples(st.floats(-3, 3), st.floats(-3, 3))


# ------------------------------------------------------------------ potentials


@settings(max_examples=50, deadline=None)
@given(p=points2, a=st.floats(0.1, 200), lam=st.floats(0, 10), c=points2)
def test_cross_potential_formula(p, a, lam, c):
    x = np.asarray(p)
    expected = a * min(x[0] ** 2, x[1] ** 2) + 0.5 * lam * np.sum((x - np.asarray(c)) ** 2)
    got = float(cross_potential(jnp.asarray(x, jnp.float32), a=a, lam=lam, c=c))
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_cross_potential_vanishes_exactly_on_the_axes_without_lam():
    t = jnp.linspace(-2, 2, 41)
    on_axes = jnp.concatenate([jnp.stack([t, 0 * t], -1), jnp.stack([0 * t, t], -1)])
    assert bool(jnp.all(cross_potential(on_axes) == 0))
    off = jnp.stack([t + 0.05, -t + 0.07], -1)
    assert bool(jnp.all(cross_potential(off) > 0))


def test_cross_potential_without_lam_equals_the_summed_form_bit_for_bit():
    """The lam term is added by hand (no reduction, see models/toy.py); at lam = 0 nothing changed."""

    def summed(x, a=100.0, lam=0.0):
        valley = a * jnp.minimum(x[..., 0] ** 2, x[..., 1] ** 2)
        return valley + 0.5 * lam * jnp.sum((x - jnp.asarray((-1.0, -1.0), x.dtype)) ** 2, axis=-1)

    x = 3 * jax.random.normal(jax.random.key(0), (10_000, 2))
    np.testing.assert_array_equal(jax.jit(jax.vmap(cross_potential))(x), jax.jit(jax.vmap(summed))(x))
    np.testing.assert_array_equal(
        jax.jit(jax.vmap(jax.grad(cross_potential)))(x), jax.jit(jax.vmap(jax.grad(summed)))(x)
    )
    lam5 = lambda z: cross_potential(z, lam=5.0)  # noqa: E731
    np.testing.assert_allclose(jax.vmap(lam5)(x), jax.vmap(lambda z: summed(z, lam=5.0))(x), rtol=1e-6)


def test_cross_potential_broadcasts_over_leading_axes():
    x = jax.random.normal(jax.random.key(0), (3, 4, 2))
    batched = cross_potential(x, a=5.0, lam=1.0)
    assert batched.shape == (3, 4)
    assert np.allclose(batched[1, 2], cross_potential(x[1, 2], a=5.0, lam=1.0))


@settings(max_examples=50, deadline=None)
@given(p=points2, k0=st.integers(1, 3), k1=st.integers(1, 3))
def test_normal_crossing_formula(p, k0, k1):
    x = np.asarray(p)
    expected = x[0] ** (2 * k0) * x[1] ** (2 * k1)
    got = float(normal_crossing_potential(jnp.asarray(x, jnp.float32), k0=k0, k1=k1))
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-5)


def test_quadratic_potential_is_the_squared_norm():
    x = jax.random.normal(jax.random.key(1), (7, 5))
    assert np.allclose(quadratic_potential(x), np.sum(np.asarray(x) ** 2, axis=-1), rtol=1e-6)


# ------------------------------------------------------------------ parse_params


@pytest.mark.parametrize("model", sorted(TOY_MODELS))
def test_parse_params_defaults(model):
    assert parse_params(model, None) == TOY_MODELS[model][0]
    assert parse_params(model, []) == TOY_MODELS[model][0]


def test_parse_params_converts_to_the_default_type():
    p = parse_params("normal-crossing", ["k0=2", " k1 = 3 ", "box=0.5"])
    assert p["k0"] == 2 and isinstance(p["k0"], int)
    assert p["k1"] == 3 and isinstance(p["k1"], int)
    assert p["box"] == 0.5
    p = parse_params("cross", ["lam=5", "c0=0.25", "box=none"])
    assert p["lam"] == 5.0 and isinstance(p["lam"], float)
    assert p["c0"] == 0.25
    assert p["box"] is None
    assert parse_params("cross", {"a": 3.0})["a"] == 3.0


@pytest.mark.parametrize(
    "model, items, words",
    [
        ("nope", [], "unknown model"),
        ("cross", ["lam"], "malformed"),
        ("cross", ["=5"], "malformed"),
        ("cross", ["lam="], "malformed"),
        ("cross", ["zz=1"], "unknown parameter 'zz'"),
        ("cross", ["lam=abc"], "must be a number"),
        ("cross", ["lam=nan"], "finite"),
        ("cross", ["a=inf"], "finite"),
        ("normal-crossing", ["k0=1.5"], "integer"),
        ("quadratic", ["dim=2.5"], "integer"),
    ],
)
def test_parse_params_rejects_bad_input(model, items, words):
    with pytest.raises(ValueError, match=words) as info:
        parse_params(model, items)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ toy targets


@pytest.mark.parametrize("model", sorted(TOY_MODELS))
def test_toy_target_contract(model):
    beta = 7.0
    target = toy_target(model, beta=beta)
    params = TOY_MODELS[model][0]
    dim = params.get("dim", 2)
    assert target.dim == dim
    assert target.beta == beta
    assert target.singular_point == tuple([0.0] * dim)
    z = target.init_fn(jax.random.key(0), 64)
    assert z.shape == (64, dim)
    x = target.to_original(z)
    assert bool(jnp.all((x >= -1) & (x <= 1)))  # initial region [-1, 1]^dim
    if params["box"] is None:
        assert target.box is None
        assert np.array_equal(x, z)
    else:
        assert (target.box.low, target.box.high) == (-params["box"], params["box"])
    rec = jax.vmap(target.record_fn)(z)
    assert set(rec) == {"x", "loss"}
    assert np.allclose(rec["x"], x)
    assert np.allclose(rec["loss"], jax.vmap(target.loss_fn)(x), rtol=1e-6)
    json.dumps(target.config)  # the config is JSON as it stands
    assert target.config["model"] == model and target.config["beta"] == beta


def test_toy_target_logdensity_is_minus_beta_loss_plus_log_jacobian():
    target = toy_target("cross", {"lam": 2.0, "a": 10.0}, beta=4.0)
    forward, _, logdet = box_bijection(target.box)
    for z in jax.random.normal(jax.random.key(3), (5, 2)):
        x = forward(z)
        expected = -4.0 * cross_potential(x, a=10.0, lam=2.0) + logdet(z)
        assert float(target.logdensity_fn(z)) == pytest.approx(float(expected), rel=1e-5)


def test_toy_target_quadratic_logdensity_in_d_dims():
    target = toy_target("quadratic", {"dim": 4}, beta=0.5)
    z = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    assert float(target.logdensity_fn(z)) == pytest.approx(-0.5 * float(jnp.sum(z**2)))
    boxed = toy_target("quadratic", ["dim=3", "box=2"], beta=1.0)
    assert (boxed.box.low, boxed.box.high) == (-2.0, 2.0)


def test_toy_target_params_change_the_loss():
    x = jnp.asarray([0.3, 0.4])
    default = toy_target("cross").loss_fn(x)
    with_lam = toy_target("cross", ["lam=5"]).loss_fn(x)
    assert float(with_lam) > float(default)


@pytest.mark.parametrize(
    "model, params, words",
    [
        ("normal-crossing", {"k0": 0}, "k0, k1 >= 1"),
        ("quadratic", {"dim": 0}, "dim >= 1"),
        ("cross", {"box": -1.0}, "half-width"),
        ("cross", {"box": 0.0}, "half-width"),
    ],
)
def test_toy_target_rejects_bad_params(model, params, words):
    with pytest.raises(ValueError, match=words):
        toy_target(model, params)


def test_make_loss_target_rejects_bad_dimension_and_empty_init_region():
    with pytest.raises(ValueError, match="dim"):
        make_loss_target("x", lambda x: jnp.sum(x), 0, beta=1.0)
    with pytest.raises(ValueError, match="empty initial region"):
        make_loss_target("x", lambda x: jnp.sum(x), 2, beta=1.0, init_low=1.0, init_high=1.0)


def test_make_loss_target_equipartition_needs_a_start_key():
    with pytest.raises(ValueError, match="start_key"):
        make_loss_target("x", lambda x: jnp.sum(x**2), 2, beta="equipartition")


def test_init_fn_is_deterministic_in_the_key():
    target = toy_target("quadratic", {"dim": 3})
    a = target.init_fn(jax.random.key(5), 8)
    b = target.init_fn(jax.random.key(5), 8)
    c = target.init_fn(jax.random.key(6), 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # uniform on [-1, 1]: the 24 coordinates are spread, not constant
    assert float(jnp.std(a)) > 0.2 and math.isfinite(float(jnp.std(a)))
