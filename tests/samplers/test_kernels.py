"""Every sampler on a known target: the ``quadratic`` toy.

At inverse temperature beta the density is ``exp(-beta sum x_i^2)``, so each
coordinate is N(0, s^2) with ``s^2 = 1 / (2 beta)``. Errors are measured in
units of ArviZ's Monte Carlo standard error (``arviz.mcse`` on (chain, draw)
arrays) and must stay below 4.

* Metropolis-adjusted samplers (nuts, hmc, mala) must hit the exact mean 0 and
  variance s^2.
* Unadjusted dynamics have a step-size bias, known exactly on a Gaussian
  because the chain is linear:

  - ULA / SGLD with step h (``x <- x + h grad log p + sqrt(2h) xi``):
    ``x' = (1 - h/s^2) x + sqrt(2h) xi``, stationary variance
    ``2h / (1 - (1 - h/s^2)^2) = s^2 / (1 - h / (2 s^2))``.
  - SGD with learning rate eta on ``U = -log p / beta``, momentum 0 and noise
    ``sqrt(2 eta / beta)`` is the same chain with ``h = eta / beta``.
  - SGHMC (BlackJAX: fresh N(0, 1) momentum per call, then K explicit Euler
    steps ``x <- x + h p; p <- (1 - alpha h) p + h grad log p(x_old) +
    sqrt(2 alpha h) xi``) is linear too; its stationary variance is the fixed
    point of the covariance recursion, computed in :func:`sghmc_variance`.

  The tests assert |z| < 4 against these corrected values, and check that the
  bias is large enough to be resolved (the uncorrected s^2 is rejected), so
  the correction is really being tested.
"""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.toy import toy_target
from samplers.kernels import (
    ADJUSTED,
    MIN_WINDOW_ADAPTATION,
    SAMPLERS,
    SamplerOptions,
    build_sampler,
)
from samplers.run import run_chains

BETA, DIM = 2.0, 5
S2 = 1.0 / (2.0 * BETA)
H = 0.05  # Langevin time step of the unadjusted dynamics: a 10% variance bias at s^2 = 0.25
SGHMC_STEPS, SGHMC_ALPHA = 10, 0.01


def ula_variance(h: float, s2: float) -> float:
    return s2 / (1.0 - h / (2.0 * s2))


def sghmc_variance(h: float, num_steps: int, alpha: float, s2: float) -> float:
    """Stationary var(x) of BlackJAX's SGHMC on N(0, s2), from the exact covariance recursion."""
    a = np.array([[1.0, h], [-h / s2, 1.0 - alpha * h]])
    b = np.array([0.0, np.sqrt(2.0 * alpha * h)])

    def one_call(var_x: float) -> float:  # momentum refreshed to N(0, 1), independent of x
        cov = np.diag([var_x, 1.0])
        for _ in range(num_steps):
            cov = a @ cov @ a.T + np.outer(b, b)
        return cov[0, 0]

    offset = one_call(0.0)
    slope = one_call(1.0) - offset  # var_x -> slope * var_x + offset is affine
    assert 0 < slope < 1
    return offset / (1.0 - slope)


# name -> (options, chains, draws, warmup, stationary variance of one coordinate)
CONFIGS = {
    "nuts": (SamplerOptions(), 16, 600, 300, S2),
    # 3 leapfrog steps: 10 steps at the adapted step size come close to a full
    # period of this oscillator, which makes HMC nearly periodic and its ESS tiny.
    "hmc": (SamplerOptions(num_integration_steps=3), 16, 800, 300, S2),
    "mala": (SamplerOptions(), 16, 1000, 300, S2),
    "ula": (SamplerOptions(step_size=H), 64, 2000, 200, ula_variance(H, S2)),
    "sgld": (SamplerOptions(step_size=H), 64, 2000, 200, ula_variance(H, S2)),
    "sgd": (SamplerOptions(step_size=H * BETA), 64, 2000, 200, ula_variance(H, S2)),
    "sghmc": (
        SamplerOptions(step_size=H, num_integration_steps=SGHMC_STEPS, sghmc_alpha=SGHMC_ALPHA),
        64,
        1000,
        200,
        sghmc_variance(H, SGHMC_STEPS, SGHMC_ALPHA, S2),
    ),
}


@pytest.fixture(scope="module")
def target():
    return toy_target("quadratic", {"dim": DIM}, beta=BETA)


@pytest.fixture(scope="module")
def runs(target):
    """``runs(name) -> (name, trace, variance)``, each sampler run once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            options, chains, draws, warmup, variance = CONFIGS[name]
            trace = run_chains(
                jax.random.key(0),
                build_sampler(name, target, options),
                target.init_fn(jax.random.key(1), chains),
                record_fn=target.record_fn,
                num_warmup=warmup,
                num_draws=draws,
                progress=False,
            )
            cache[name] = (name, trace, variance)
        return cache[name]

    return get


@pytest.fixture(params=SAMPLERS)
def run(request, runs):
    return runs(request.param)


def z_score(values: np.ndarray, expected: float) -> float:
    values = np.asarray(values, dtype=float)
    return float((values.mean() - expected) / az.mcse(values))


def test_every_sampler_is_configured():
    assert set(CONFIGS) == set(SAMPLERS)


def test_mean_is_zero(run):
    name, trace, _ = run
    x = trace.draws["x"]
    assert x.shape[-1] == DIM and np.all(np.isfinite(x))
    z = [z_score(x[..., i], 0.0) for i in range(DIM)]
    assert max(map(abs, z)) < 4, (name, z)


def test_variance_matches_the_exact_or_bias_corrected_value(run):
    name, trace, variance = run
    x = trace.draws["x"]
    z = [z_score(x[..., i] ** 2, variance) for i in range(DIM)]
    assert max(map(abs, z)) < 4, (name, variance, z)
    # The estimate must be sharp enough to mean something: ESS of x^2 per coordinate.
    assert min(float(az.ess(x[..., i].astype(float) ** 2)) for i in range(DIM)) > 400


def test_unadjusted_bias_is_resolved(run):
    """The bias correction is not vacuous: unadjusted samplers visibly miss s^2."""
    name, trace, variance = run
    if name in ADJUSTED:
        assert variance == S2
        return
    assert variance > S2
    x = trace.draws["x"]
    z = z_score(np.mean(x**2, axis=-1), S2)
    assert z > 4, (name, z)


def test_recorded_lp_is_the_log_density_of_the_draw(run):
    name, trace, _ = run
    # quadratic has no box, so sampling and original coordinates agree
    lp = trace.stats["lp"]
    assert lp.shape == trace.draws["loss"].shape
    assert np.allclose(lp, -BETA * trace.draws["loss"], rtol=1e-4, atol=1e-4), name
    assert np.all(trace.stats["is_finite"])


def test_equipartition_under_nuts(runs):
    """Mean loss d / (2 beta) on a d-dim quadratic at beta (here 5 / 4)."""
    _, trace, _ = runs("nuts")
    z = z_score(trace.draws["loss"], DIM / (2 * BETA))
    assert abs(z) < 4, z


def test_adaptation_reaches_its_target(run):
    name, trace, _ = run
    if name not in ADJUSTED:
        assert np.all(trace.params["step_size"] == np.float32(CONFIGS[name][0].step_size))
        return
    step = trace.params["step_size"]
    assert step.shape == (CONFIGS[name][1],)
    assert np.all(np.isfinite(step) & (step > 0))
    # Dual averaging returns the *averaged* log step size, which is smaller than the
    # last iterate, so the acceptance after warmup lands at or above the target
    # (as in Stan); far below it would mean the adaptation failed.
    target_rate = 0.57 if name == "mala" else 0.8
    rate = float(np.nanmean(trace.stats["acceptance_rate"]))
    assert target_rate - 0.1 < rate < 0.99, (name, rate)
    if "diverging" in trace.stats:
        assert trace.stats["diverging"].dtype == bool
        assert not trace.stats["diverging"].any()


def test_sample_stats_names(run):
    name, trace, _ = run
    expected = {"lp", "step_size", "is_finite", "nonfinite_reason"}
    if name in ("nuts", "hmc"):
        expected |= {"acceptance_rate", "diverging", "energy", "n_steps"}
    if name == "nuts":
        expected |= {"tree_depth"}
    if name == "mala":
        expected |= {"acceptance_rate"}
    assert set(trace.stats) == expected
    for value in trace.stats.values():
        assert value.shape[:2] == trace.draws["loss"].shape


# ------------------------------------------------------------------ ULA = SGLD = SGD


@pytest.fixture(scope="module")
def langevin_runs(target):
    positions = target.init_fn(jax.random.key(7), 4)

    def go(name, step_size):
        return run_chains(
            jax.random.key(8),
            build_sampler(name, target, SamplerOptions(step_size=step_size)),
            positions,
            record_fn=target.record_fn,
            num_warmup=20,
            num_draws=200,
            progress=False,
        ).draws["x"]

    return {"ula": go("ula", H), "sgld": go("sgld", H), "sgd": go("sgd", H * BETA)}


def test_ula_and_sgld_are_bit_identical(langevin_runs):
    assert np.array_equal(langevin_runs["ula"], langevin_runs["sgld"])


def test_sgd_with_matching_noise_is_ula_up_to_rounding(langevin_runs):
    """SGD computes eta * (grad log p / beta) where ULA computes h * grad log p: the same
    Gaussian draws, but not the same float operations, so equal only to float32 rounding
    (the chain is contractive here, so rounding does not grow)."""
    ula, sgd = langevin_runs["ula"], langevin_runs["sgd"]
    assert np.allclose(sgd, ula, rtol=0, atol=1e-5)
    assert np.std(ula) > 0.1  # the comparison is over moving chains, not a constant


# ------------------------------------------------------------------ options and construction


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"step_size": 0.0}, "step size"),
        ({"step_size": -1.0}, "step size"),
        ({"noise": -0.1}, "noise"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"num_integration_steps": 0}, "num_integration_steps"),
        ({"target_acceptance": 0.0}, "target acceptance"),
        ({"target_acceptance": 1.0}, "target acceptance"),
        ({"mass_matrix": "full"}, "mass_matrix"),
    ],
)
def test_sampler_options_reject_bad_values(kwargs, words):
    with pytest.raises(ValueError, match=words):
        SamplerOptions(**kwargs)


def test_unknown_sampler(target):
    with pytest.raises(ValueError, match="unknown sampler 'metropolis'; choose one of nuts"):
        build_sampler("metropolis", target)


@pytest.mark.parametrize("name", SAMPLERS)
def test_adjusted_flag(target, name):
    assert build_sampler(name, target, SamplerOptions(step_size=0.1)).adjusted == (name in ADJUSTED)


@pytest.mark.parametrize("name", ["nuts", "hmc"])
def test_short_warmup_keeps_the_identity_metric(target, name):
    # too short for BlackJAX's windowed adaptation: no mass matrix is learned
    sampler = build_sampler(name, target)
    position = jnp.full(DIM, 0.3)
    state, params = sampler.warmup(jax.random.key(0), position, MIN_WINDOW_ADAPTATION - 1)
    assert np.array_equal(params["inverse_mass_matrix"], np.ones(DIM))
    assert np.isfinite(float(params["step_size"])) and float(params["step_size"]) > 0
    assert np.all(np.isfinite(state.position))


@pytest.mark.parametrize("name", ["nuts", "hmc"])
def test_a_fixed_step_size_is_not_adapted(target, name):
    position = jnp.full(DIM, 0.3)
    sampler = build_sampler(name, target, SamplerOptions(step_size=0.37))
    state, params = sampler.warmup(jax.random.key(0), position, 0)
    assert float(params["step_size"]) == pytest.approx(0.37)
    assert np.array_equal(state.position, position)  # no steps taken
    state, params = sampler.warmup(jax.random.key(0), position, MIN_WINDOW_ADAPTATION + 5)
    assert float(params["step_size"]) == pytest.approx(0.37)
    assert np.array_equal(params["inverse_mass_matrix"], np.ones(DIM))
    assert not np.array_equal(state.position, position)  # but the burn-in steps moved
