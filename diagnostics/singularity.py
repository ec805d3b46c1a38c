"""Where the points spent their time: occupancy and stickiness (SCIENCE.md 4).

Every estimate comes with its Monte Carlo standard error. For MCMC draws the
error uses ArviZ's effective sample size of the indicator (autocorrelation
across draws, variance between chains); for independent points (final SGD
positions) it is the binomial error.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import arviz_stats as az  # ArviZ's diagnostics without its plotting half (arviz_plots, matplotlib)
import numpy as np

__all__ = ["Occupancy", "occupancy", "Stickiness", "stickiness", "finite_chains", "ARM_POINTS"]

# Ordinary points on the arms of the cross, used as the stickiness baseline.
ARM_POINTS = ((0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5))


class Occupancy(NamedTuple):
    """Fraction of draws within ``radius`` of ``center``, with its error."""

    radius: float
    fraction: float
    mcse: float
    ess: float

    def as_dict(self) -> dict[str, float | None]:
        return {k: _clean(v) for k, v in self._asdict().items()}


def _clean(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def finite_chains(draws: np.ndarray) -> np.ndarray:
    """Boolean mask of the chains whose draws are all finite."""
    draws = np.asarray(draws)
    axes = tuple(range(1, draws.ndim))
    return np.all(np.isfinite(draws), axis=axes)


def _indicator(points: np.ndarray, center, radius: float) -> np.ndarray:
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    center = np.asarray(center, dtype=float)
    if points.shape[-1] != center.shape[-1]:
        raise ValueError(
            f"center has {center.shape[-1]} coordinates but the points have {points.shape[-1]}"
        )
    return (np.linalg.norm(points - center, axis=-1) < radius).astype(float)


def occupancy(draws: np.ndarray, center, radius: float = 0.1) -> Occupancy:
    """Occupancy of the disk ``|x - center| < radius``.

    Parameters
    ----------
    draws
        ``(chain, draw, dim)`` MCMC draws, or ``(num_points, dim)`` independent
        points. Chains with non-finite draws are left out, never averaged in.
    center
        The singular point.
    radius
        Disk radius.

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.random.default_rng(0).uniform(-1, 1, size=(4, 1000, 2))
    >>> occ = occupancy(pts, (0.0, 0.0), 0.5)
    >>> abs(occ.fraction - np.pi * 0.25 / 4) < 4 * occ.mcse
    True
    """
    draws = np.asarray(draws, dtype=float)
    if draws.ndim == 2:  # independent points
        draws = draws[np.all(np.isfinite(draws), axis=-1)]
        ind = _indicator(draws, center, radius)
        n = ind.size
        if n == 0:
            raise ValueError("no finite points to measure occupancy on")
        p = float(ind.mean())
        return Occupancy(float(radius), p, math.sqrt(max(p * (1 - p), 0.0) / n), float(n))
    if draws.ndim != 3:
        raise ValueError(f"draws must have shape (chain, draw, dim) or (n, dim), got {draws.shape}")
    draws = draws[finite_chains(draws)]
    if draws.shape[0] == 0:
        raise ValueError("every chain has non-finite draws; nothing to measure")
    ind = _indicator(draws, center, radius)
    p = float(ind.mean())
    if np.all(ind == ind.flat[0]):  # constant indicator: ESS is undefined
        return Occupancy(float(radius), p, math.nan, math.nan)
    ess = float(az.ess(ind, method="mean"))
    mcse = float(az.mcse(ind, method="mean"))
    return Occupancy(float(radius), p, mcse, ess)


class Stickiness(NamedTuple):
    """``S(r)``: mass at the singular point relative to ordinary points on the arms."""

    radius: float
    value: float
    stderr: float

    def as_dict(self) -> dict[str, float | None]:
        return {k: _clean(v) for k, v in self._asdict().items()}


def stickiness(points: np.ndarray, *, radius: float = 0.1, center=(0.0, 0.0), arms=ARM_POINTS) -> Stickiness:
    """``S(r) = P(|x - center| < r) / mean_q P(|x - q| < r)`` over independent points.

    ``S < 1``: the singular point repels; ``S > 1``: it is sticky. The
    standard error is the delta method on the two binomial proportions
    (which are estimated on the same points, so their covariance counts).

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.random.default_rng(0).uniform(-1, 1, size=(200_000, 2))
    >>> s = stickiness(pts)
    >>> abs(s.value - 1) < 4 * s.stderr
    True
    """
    points = np.asarray(points, dtype=float).reshape(-1, np.shape(points)[-1])
    points = points[np.all(np.isfinite(points), axis=-1)]
    n = points.shape[0]
    if n == 0:
        raise ValueError("no finite points to measure stickiness on")
    a = _indicator(points, center, radius)
    b = np.mean([_indicator(points, q, radius) for q in arms], axis=0)
    pa, pb = a.mean(), b.mean()
    if pb == 0:
        return Stickiness(float(radius), math.inf if pa > 0 else math.nan, math.nan)
    value = pa / pb
    # Var(pa/pb) ~ (1/pb^2) Var(pa) + (pa^2/pb^4) Var(pb) - 2 (pa/pb^3) Cov(pa, pb)
    var_a, var_b = a.var() / n, b.var() / n
    cov = np.mean((a - pa) * (b - pb)) / n
    var = var_a / pb**2 + pa**2 * var_b / pb**4 - 2 * pa * cov / pb**3
    return Stickiness(float(radius), float(value), float(math.sqrt(max(var, 0.0))))
