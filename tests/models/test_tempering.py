"""Inverse temperatures (equipartition, WBIC) and the tempered log density."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.tempering import equipartition_beta, resolve_beta, tempered_logdensity, wbic_beta
from models.toy import toy_target

finite_losses = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)


# ------------------------------------------------------------------ equipartition


@settings(max_examples=50, deadline=None)
@given(loss=finite_losses, ref=st.floats(-10, 10), dim=st.integers(1, 1000))
def test_equipartition_beta_makes_the_start_loss_the_mean_energy(loss, ref, dim):
    # Defining property: a quadratic well in d dims at beta has mean excess energy
    # d / (2 beta); at the returned beta that excess is exactly L0 - L_ref.
    beta = equipartition_beta(ref + loss, dim, loss_ref=ref)
    assert beta > 0
    assert math.isclose(dim / (2 * beta), (ref + loss) - ref, rel_tol=1e-9)


def test_equipartition_beta_scales_with_dimension_and_inverse_loss():
    assert math.isclose(equipartition_beta(1.0, 4), 2 * equipartition_beta(1.0, 2))
    assert math.isclose(equipartition_beta(2.0, 3), equipartition_beta(1.0, 3) / 2)


@pytest.mark.parametrize(
    "loss, ref, words",
    [
        (0.0, 0.0, "above L_ref"),
        (-1.0, 0.0, "above L_ref"),
        (1.0, 2.0, "above L_ref"),
        (math.nan, 0.0, "finite"),
        (math.inf, 0.0, "finite"),
        (-math.inf, 0.0, "finite"),
    ],
)
def test_equipartition_beta_rejects_a_start_at_or_below_the_reference(loss, ref, words):
    with pytest.raises(ValueError, match=words) as info:
        equipartition_beta(loss, 2, loss_ref=ref)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------ WBIC


@pytest.mark.parametrize("n", [2, 3, 10, 1000, 123456])
def test_wbic_beta_is_one_over_log_n(n):
    assert math.isclose(wbic_beta(n, loss_reduction="sum") * math.log(n), 1.0)
    # A mean loss needs n times the factor of a sum loss (n * mean = sum).
    assert math.isclose(wbic_beta(n, loss_reduction="mean"), n * wbic_beta(n, loss_reduction="sum"))
    assert wbic_beta(n) == wbic_beta(n, loss_reduction="mean")


@pytest.mark.parametrize("n", [None, 0, 1, -5])
def test_wbic_beta_needs_at_least_two_data(n):
    with pytest.raises(ValueError, match="n >= 2"):
        wbic_beta(n)


def test_wbic_beta_rejects_an_unknown_reduction():
    with pytest.raises(ValueError, match="loss_reduction"):
        wbic_beta(10, loss_reduction="median")


# ------------------------------------------------------------------ resolve_beta


@pytest.mark.parametrize("spec", [0.5, 3, "2.5", " 7 ", "1e-3"])
def test_resolve_beta_accepts_positive_numbers(spec):
    assert resolve_beta(spec, dim=2) == float(str(spec).strip())


def test_resolve_beta_equipartition_reads_the_loss_lazily():
    calls = []

    def loss_at_start():
        calls.append(1)
        return 2.0

    assert resolve_beta(3.0, dim=4, loss_at_start=loss_at_start) == 3.0
    assert calls == []  # a number never evaluates the loss
    beta = resolve_beta("Equipartition", dim=4, loss_at_start=loss_at_start)
    assert beta == equipartition_beta(2.0, 4)
    assert calls == [1]


def test_resolve_beta_wbic_uses_num_data_and_reduction():
    assert resolve_beta("wbic", dim=2, num_data=50) == wbic_beta(50)
    assert resolve_beta("wbic", dim=2, num_data=50, loss_reduction="sum") == wbic_beta(
        50, loss_reduction="sum"
    )


@pytest.mark.parametrize("spec", [0, -1.0, "-2", "hot", "nan", "inf", math.inf, math.nan, ""])
def test_resolve_beta_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="beta"):
        resolve_beta(spec, dim=2)


def test_resolve_beta_equipartition_without_a_start_is_an_error():
    with pytest.raises(ValueError, match="starting point"):
        resolve_beta("equipartition", dim=2)


def test_resolve_beta_wbic_without_num_data_is_an_error():
    with pytest.raises(ValueError, match="--num-data"):
        resolve_beta("wbic", dim=2)


# ------------------------------------------------------------------ through a toy target


def test_toy_target_equipartition_beta_matches_the_loss_at_the_chains_starts():
    key, chains, dim = jax.random.key(3), 16, 5
    target = toy_target("quadratic", {"dim": dim}, beta="equipartition", start_key=key, num_chains=chains)
    starts = target.to_original(target.init_fn(key, chains))
    mean_loss = float(jnp.mean(jnp.sum(starts**2, axis=-1)))
    assert math.isclose(target.beta, dim / (2 * mean_loss), rel_tol=1e-5)
    assert target.config["beta"] == target.beta
    assert target.config["beta_spec"] == "equipartition"


def test_toy_target_wbic_beta():
    target = toy_target("cross", beta="wbic", num_data=200)
    assert math.isclose(target.beta, 200 / math.log(200))
    assert target.num_data == 200


# ------------------------------------------------------------------ tempered_logdensity


@settings(max_examples=30, deadline=None)
@given(
    beta=st.floats(0.01, 100),
    scale=st.one_of(st.none(), st.floats(0.1, 10)),
    gamma=st.floats(0, 10),
    seed=st.integers(0, 2**16),
)
def test_tempered_logdensity_is_the_sum_of_its_terms(beta, scale, gamma, seed):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=3).astype(np.float32)
    center = rng.normal(size=3).astype(np.float32)

    def loss(t):
        return jnp.sum(jnp.sin(t) ** 2) + 0.1 * jnp.sum(t**4)

    logp = tempered_logdensity(loss, beta, prior_scale=scale, localization=gamma, center=center)
    t64 = theta.astype(float)
    expected = -beta * (np.sum(np.sin(t64) ** 2) + 0.1 * np.sum(t64**4))
    if scale is not None:
        expected -= 0.5 * np.sum(t64**2) / scale**2
    expected -= 0.5 * gamma * np.sum((t64 - center) ** 2)
    assert float(logp(jnp.asarray(theta))) == pytest.approx(expected, rel=1e-4, abs=1e-3)


def test_tempered_logdensity_weight_decay_correspondence():
    # Documented: weight decay wd in L + wd/2 ||theta||^2 is prior_scale = 1/sqrt(beta wd).
    beta, wd = 3.0, 0.2
    theta = jnp.asarray([0.3, -1.2, 2.0])
    with_prior = tempered_logdensity(lambda t: jnp.sum(t), beta, prior_scale=1 / math.sqrt(beta * wd))
    decayed = tempered_logdensity(lambda t: jnp.sum(t) + 0.5 * wd * jnp.sum(t**2), beta)
    assert float(with_prior(theta)) == pytest.approx(float(decayed(theta)), rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"localization": -1.0}, "gamma"),
        ({"localization": 1.0}, "center"),
        ({"prior_scale": 0.0}, "prior_scale"),
        ({"prior_scale": -2.0}, "prior_scale"),
    ],
)
def test_tempered_logdensity_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        tempered_logdensity(lambda t: jnp.sum(t), 1.0, **kwargs)
