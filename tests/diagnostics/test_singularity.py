"""Occupancy and stickiness, with their standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diagnostics.singularity import ARM_POINTS, Occupancy, finite_chains, occupancy, stickiness


def uniform_square(rng, shape):
    return rng.uniform(-1.0, 1.0, size=(*shape, 2))


def disk_fraction(r: float) -> float:
    """Exact P(|x| < r) for x uniform on [-1, 1]^2 and r <= 1."""
    return math.pi * r**2 / 4


@pytest.mark.parametrize("radius", [0.1, 0.3, 0.5])
def test_occupancy_of_iid_points(radius):
    rng = np.random.default_rng(0)
    occ = occupancy(uniform_square(rng, (40_000,)), (0.0, 0.0), radius)
    p = disk_fraction(radius)
    assert isinstance(occ, Occupancy) and occ.radius == radius
    assert abs(occ.fraction - p) < 4 * occ.mcse
    assert occ.ess == 40_000
    assert occ.mcse == pytest.approx(math.sqrt(occ.fraction * (1 - occ.fraction) / 40_000))


@pytest.mark.parametrize("radius", [0.1, 0.5])
def test_occupancy_of_iid_chains_uses_arviz_ess(radius):
    rng = np.random.default_rng(1)
    draws = uniform_square(rng, (8, 2000))
    occ = occupancy(draws, (0.0, 0.0), radius)
    n = 8 * 2000
    assert abs(occ.fraction - disk_fraction(radius)) < 4 * occ.mcse
    # independent draws: ESS about n, MCSE about the binomial one
    assert 0.8 * n < occ.ess < 1.25 * n
    binomial = math.sqrt(occ.fraction * (1 - occ.fraction) / n)
    assert occ.mcse == pytest.approx(binomial, rel=0.15)


def ar1_chains(rng, chains, draws, rho):
    """Stationary AR(1) chains in 2-D with N(0, 1) marginals."""
    x = np.empty((chains, draws, 2))
    x[:, 0] = rng.normal(size=(chains, 2))
    scale = math.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + scale * rng.normal(size=(chains, 2))
    return x


def test_occupancy_error_grows_with_autocorrelation():
    rng = np.random.default_rng(2)
    draws = ar1_chains(rng, 8, 4000, rho=0.95)
    occ = occupancy(draws, (0.0, 0.0), 0.5)
    exact = 1 - math.exp(-0.5**2 / 2)  # P(|x| < r) for a standard 2-D normal
    assert abs(occ.fraction - exact) < 4 * occ.mcse
    n = draws.shape[0] * draws.shape[1]
    binomial = math.sqrt(occ.fraction * (1 - occ.fraction) / n)
    assert occ.ess < n / 5
    assert occ.mcse > 2 * binomial


def test_occupancy_mcse_is_calibrated_over_replicates():
    """The reported MCSE matches the spread of the estimate over independent replicates."""
    rng = np.random.default_rng(3)
    fractions, errors = [], []
    for _ in range(60):
        occ = occupancy(ar1_chains(rng, 4, 500, rho=0.8), (0.0, 0.0), 0.7)
        fractions.append(occ.fraction)
        errors.append(occ.mcse)
    spread = np.std(fractions, ddof=1)
    # the sd of a sd estimated from 60 replicates is about 1 / sqrt(2 * 59) ~ 9% of it
    assert np.mean(errors) == pytest.approx(spread, rel=0.3)


def test_non_finite_chains_are_left_out():
    rng = np.random.default_rng(4)
    draws = uniform_square(rng, (4, 500))
    bad = draws.copy()
    bad[1, 200:] = np.nan
    bad[3, 7, 0] = np.inf
    assert list(finite_chains(bad)) == [True, False, True, False]
    assert occupancy(bad, (0, 0), 0.5) == occupancy(draws[[0, 2]], (0, 0), 0.5)
    flat = bad.reshape(-1, 2)
    kept = flat[np.all(np.isfinite(flat), axis=-1)]
    assert occupancy(flat, (0, 0), 0.5) == occupancy(kept, (0, 0), 0.5)


def test_constant_indicator_has_undefined_error():
    draws = np.full((3, 50, 2), 0.01)
    occ = occupancy(draws, (0.0, 0.0), 0.1)
    assert occ.fraction == 1.0 and math.isnan(occ.mcse)
    as_dict = occ.as_dict()
    assert as_dict["fraction"] == 1.0 and as_dict["mcse"] is None and as_dict["ess"] is None


@pytest.mark.parametrize(
    "draws, center, radius, words",
    [
        (np.zeros((2, 5, 2)), (0.0, 0.0), 0.0, "radius"),
        (np.zeros((2, 5, 2)), (0.0, 0.0), -1.0, "radius"),
        (np.zeros((2, 5, 2)), (0.0, 0.0, 0.0), 0.1, "center has 3 coordinates"),
        (np.zeros((2, 5, 2, 1)), (0.0, 0.0), 0.1, "shape"),
        (np.full((2, 5, 2), np.nan), (0.0, 0.0), 0.1, "non-finite"),
        (np.full((5, 2), np.nan), (0.0, 0.0), 0.1, "no finite points"),
    ],
)
def test_occupancy_bad_input(draws, center, radius, words):
    with pytest.raises(ValueError, match=words):
        occupancy(draws, center, radius)


# ------------------------------------------------------------------ stickiness


def test_stickiness_of_uniform_points_is_one():
    s = stickiness(uniform_square(np.random.default_rng(5), (200_000,)), radius=0.1)
    assert s.radius == 0.1
    assert abs(s.value - 1.0) < 4 * s.stderr
    assert 0 < s.stderr < 0.1


def test_stickiness_of_points_piled_at_the_origin_is_above_one():
    rng = np.random.default_rng(6)
    points = np.clip(rng.normal(0.0, 0.3, size=(50_000, 2)), -1, 1)
    s = stickiness(points, radius=0.1)
    # exact for the normal: P(|x|<r) / P(|x - (0.5, 0)| < r) ~ exp(0.5^2 / (2 * 0.3^2)) ~ 4
    assert s.value > 1 + 4 * s.stderr
    assert s.value == pytest.approx(math.exp(0.25 / 0.18), rel=0.2)


def test_stickiness_of_points_avoiding_the_origin_is_below_one():
    rng = np.random.default_rng(7)
    points = uniform_square(rng, (100_000,))
    points = points[np.linalg.norm(points, axis=-1) > 0.05]
    s = stickiness(points, radius=0.1)
    assert s.value < 1 - 4 * s.stderr


def test_stickiness_stderr_is_calibrated_over_replicates():
    rng = np.random.default_rng(8)
    results = [
        stickiness(np.clip(rng.normal(0, 0.4, size=(4000, 2)), -1, 1), radius=0.2)
        for _ in range(80)
    ]
    spread = np.std([r.value for r in results], ddof=1)
    assert np.mean([r.stderr for r in results]) == pytest.approx(spread, rel=0.3)


def test_stickiness_takes_chains_and_custom_center_and_arms():
    rng = np.random.default_rng(9)
    points = uniform_square(rng, (4, 20_000))  # (chain, draw, 2) is flattened
    s = stickiness(points, radius=0.1, center=(0.5, 0.5), arms=((-0.5, -0.5),))
    assert abs(s.value - 1.0) < 4 * s.stderr
    assert ARM_POINTS == ((0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5))


def test_stickiness_edge_cases():
    only_origin = np.zeros((100, 2))
    s = stickiness(only_origin, radius=0.1)
    assert math.isinf(s.value) and math.isnan(s.stderr)
    assert s.as_dict()["value"] is None
    far = np.full((100, 2), 5.0)
    assert math.isnan(stickiness(far, radius=0.1).value)
    with pytest.raises(ValueError, match="no finite points"):
        stickiness(np.full((10, 2), np.nan))
