"""A NumPyro model as a Target: sign, transforms, tempering, and the posterior it samples."""

from __future__ import annotations

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import integrate, stats

from models.numpyro_bridge import numpyro_target

DATA = np.random.default_rng(0).normal(0.0, 0.7, size=8).astype(np.float32)


def scale_model(x):
    """sigma ~ HalfNormal(1) (a constrained site), x_i ~ Normal(0, sigma) observed."""
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.deterministic("log_sigma", jnp.log(sigma))
    numpyro.sample("x", dist.Normal(0.0, sigma), obs=x)


def by_hand_logdensity(z):
    """The same posterior written by hand in z = log sigma, Jacobian d sigma / d z = sigma included."""
    sigma = np.exp(z)
    return (
        stats.halfnorm.logpdf(sigma)
        + np.sum(stats.norm.logpdf(DATA.astype(float), 0.0, sigma))
        + z  # log |d sigma / d z|
    )


@pytest.fixture(scope="module")
def target():
    return numpyro_target(scale_model, model_args=(DATA,), name="scale")


def test_target_shape_and_config(target):
    assert target.dim == 1
    assert target.loss_fn is None
    assert target.name == "scale"
    assert target.beta == 1.0 and target.config["beta"] == 1.0


@pytest.mark.parametrize("z", [-2.0, -0.5, 0.0, 0.7, 1.5])
def test_logdensity_is_the_positive_log_posterior_in_unconstrained_space(target, z):
    # Differences remove the normalizing constant both sides may carry.
    got = float(target.logdensity_fn(jnp.asarray([z]))) - float(target.logdensity_fn(jnp.zeros(1)))
    want = by_hand_logdensity(z) - by_hand_logdensity(0.0)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_beta_tempers_the_whole_log_joint():
    cold = numpyro_target(scale_model, model_args=(DATA,), beta=2.5)
    warm = numpyro_target(scale_model, model_args=(DATA,), beta=1.0)
    for z in (-1.0, 0.3, 1.2):
        zz = jnp.asarray([z])
        assert float(cold.logdensity_fn(zz)) == pytest.approx(2.5 * float(warm.logdensity_fn(zz)), rel=1e-5)


def test_record_fn_reports_constrained_and_deterministic_sites(target):
    rec = target.record_fn(jnp.asarray([0.4]))
    assert set(rec) == {"sigma", "log_sigma"}
    assert float(rec["sigma"]) == pytest.approx(np.exp(0.4), rel=1e-6)
    assert float(rec["log_sigma"]) == pytest.approx(0.4, abs=1e-6)


def test_init_fn_gives_distinct_finite_rows(target):
    z = target.init_fn(jax.random.key(0), 6)
    assert z.shape == (6, 1)
    assert bool(jnp.all(jnp.isfinite(z)))
    assert len(np.unique(np.asarray(z))) == 6
    assert np.array_equal(z, target.init_fn(jax.random.key(0), 6))


def test_nuts_posterior_mean_of_sigma_matches_quadrature(target):
    """E[sigma | x] by NUTS over 8 chains vs scipy quadrature of the exact posterior."""
    from samplers.kernels import build_sampler
    from samplers.run import run_chains

    trace = run_chains(
        jax.random.key(0),
        build_sampler("nuts", target),
        target.init_fn(jax.random.key(1), 8),
        record_fn=target.record_fn,
        num_warmup=300,
        num_draws=500,
        progress=False,
    )
    sigma = trace.draws["sigma"].astype(float)
    assert sigma.shape == (8, 500)

    def post(s):
        return stats.halfnorm.pdf(s) * np.prod(stats.norm.pdf(DATA.astype(float), 0.0, s))

    norm = integrate.quad(post, 0, np.inf)[0]
    mean = integrate.quad(lambda s: s * post(s), 0, np.inf)[0] / norm
    second = integrate.quad(lambda s: s**2 * post(s), 0, np.inf)[0] / norm

    z_mean = (sigma.mean() - mean) / float(az.mcse(sigma))
    z_second = ((sigma**2).mean() - second) / float(az.mcse(sigma**2))
    assert abs(z_mean) < 4, (sigma.mean(), mean, z_mean)
    assert abs(z_second) < 4, ((sigma**2).mean(), second, z_second)
    assert np.allclose(trace.draws["log_sigma"], np.log(sigma), atol=1e-5)


@pytest.mark.filterwarnings("ignore:Some algorithms will automatically enumerate:FutureWarning")
def test_discrete_latent_sites_are_refused():
    def model():
        numpyro.sample("k", dist.Bernoulli(0.5))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=1.0)

    with pytest.raises(ValueError, match="discrete"):
        numpyro_target(model)


def test_a_broken_model_is_a_one_line_value_error():
    def model():
        raise RuntimeError("no data here")

    with pytest.raises(ValueError, match="running the NumPyro model failed: RuntimeError") as info:
        numpyro_target(model)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("beta", [0, -1.0, "2", None, float("nan")])
def test_bad_beta_is_refused(beta):
    with pytest.raises(ValueError, match="beta"):
        numpyro_target(scale_model, model_args=(DATA,), beta=beta)
