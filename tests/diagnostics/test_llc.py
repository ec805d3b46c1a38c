"""The local learning coefficient on targets with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from diagnostics import llc as L


def test_llc_from_losses_is_nbeta_times_mean_excess():
    losses = np.array([[1.0, 3.0], [2.0, 2.0]])
    out = L.llc_from_losses(losses, 1.0, 10.0)
    assert out["per_chain"] == [10.0, 10.0]
    assert out["mean"] == 10.0 and out["std"] == 0.0


def test_default_nbeta_is_wbic():
    assert L.default_nbeta(1000) == pytest.approx(1000 / np.log(1000))
    with pytest.raises(ValueError):
        L.default_nbeta(1)


def test_llc_quadratic_2d_recovers_d_over_2():
    problem = L.toy_llc_problem("quadratic", {"dim": 2})
    nbeta = L.default_nbeta(problem.num_data)
    c, draws, warmup = L.TOY_DEFAULTS["quadratic"]
    res = L.estimate_llc(problem, nbeta=nbeta, step_size=c / nbeta, chains=8, draws=draws, warmup=warmup, seed=1)
    assert res.llc["mean"] == pytest.approx(1.0, rel=0.1)
    assert len(res.llc["per_chain"]) == 8


def test_llc_normal_crossing_recovers_a_quarter():
    problem = L.toy_llc_problem("normal-crossing", {"k0": 1, "k1": 2})
    nbeta = L.default_nbeta(problem.num_data)
    c, draws, warmup = L.TOY_DEFAULTS["normal-crossing"]
    res = L.estimate_llc(problem, nbeta=nbeta, step_size=c / nbeta, chains=8, draws=draws, warmup=warmup, seed=2)
    assert res.llc["mean"] == pytest.approx(0.25, rel=0.1)


def test_llc_localization_lowers_the_quadratic_estimate_as_predicted():
    # exact: nbeta d / (2 nbeta + gamma); with nbeta = 10, gamma = 20: 2 * 10 / 40 = 0.5
    problem = L.toy_llc_problem("quadratic", {"dim": 2})
    res = L.estimate_llc(problem, nbeta=10.0, localization=20.0, step_size=1e-3, chains=8, draws=4000,
                         warmup=500, seed=3)
    assert res.llc["mean"] == pytest.approx(0.5, rel=0.1)


def test_llc_hmc_on_quadratic():
    problem = L.toy_llc_problem("quadratic", {"dim": 2})
    res = L.estimate_llc(problem, nbeta=100.0, sampler="hmc", chains=4, draws=1000, warmup=300, seed=4)
    assert res.llc["mean"] == pytest.approx(1.0, rel=0.1)


def test_batch_size_on_a_toy_is_refused():
    problem = L.toy_llc_problem("quadratic", {"dim": 2})
    with pytest.raises(ValueError, match="batch-size"):
        L.sg_sampler("sgld", problem, 10.0, 0.0, step_size=1e-3, batch_size=4)
