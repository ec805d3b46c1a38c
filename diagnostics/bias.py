"""A sampler's bias near the singular point, against the exact Gibbs measure.

For a 2-D target on a box the exact occupancy is known
(:class:`models.reference.GibbsReference`), so each sampler's occupancy can
be held against it in units of its own Monte Carlo standard error:
``z = (occupancy - exact) / mcse``. The total-variation distance between the
draws' 2-D histogram and the exact cell masses on the same grid measures the
whole distribution, not just the disk (note that it is positive even for
exact independent draws: about ``sqrt(cells / (2 pi n))`` for ``n`` draws).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from diagnostics.singularity import finite_chains, occupancy

__all__ = ["histogram_masses", "total_variation", "bias_row"]


def histogram_masses(draws: np.ndarray, edges0: np.ndarray, edges1: np.ndarray) -> np.ndarray:
    """Fraction of the (finite) draws in each cell of the grid."""
    points = np.asarray(draws, dtype=float).reshape(-1, 2)
    points = points[np.all(np.isfinite(points), axis=1)]
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[edges0, edges1])
    return counts / max(points.shape[0], 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``0.5 * sum |p - q|`` of two arrays of cell masses."""
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def bias_row(
    draws: np.ndarray,
    *,
    exact: float,
    exact_cells: np.ndarray,
    edges: tuple[np.ndarray, np.ndarray],
    center,
    radius: float,
) -> dict[str, Any]:
    """Occupancy, its MCSE, the exact value, ``z``, the ratio and the TV distance.

    ``z`` is ``None`` when no error can be computed (no draw or every draw in
    the disk); ``expected_hits`` then says how many draws the exact measure
    predicts inside it, which tells a sampler that missed a mass of 1e-19
    from one that missed a mass of 0.1.
    """
    draws = np.asarray(draws)
    occ = occupancy(draws, center, radius)
    kept = draws[finite_chains(draws)] if draws.ndim == 3 else draws
    num_draws = int(np.prod(kept.shape[:-1]))
    z = (occ.fraction - exact) / occ.mcse if occ.mcse and math.isfinite(occ.mcse) and occ.mcse > 0 else None
    return {
        "occupancy": occ.fraction,
        "mcse": _num(occ.mcse),
        "exact": exact,
        "z": _num(z) if z is not None else None,
        "ratio": occ.fraction / exact if exact > 0 else None,
        "expected_hits": exact * num_draws,
        "tv": total_variation(histogram_masses(kept, *edges), exact_cells),
        "ess_mean": _num(occ.ess),
        "ess_bulk": _indicator_ess_bulk(kept, center, radius),
    }


def _indicator_ess_bulk(draws: np.ndarray, center, radius: float) -> float | None:
    """ArviZ's bulk ESS of the disk indicator (``None`` when it is constant or not MCMC)."""
    import arviz_stats as az

    if draws.ndim != 3 or draws.shape[0] == 0:
        return None
    inside = (np.linalg.norm(draws - np.asarray(center, float), axis=-1) < radius).astype(float)
    if np.all(inside == inside.flat[0]):
        return None
    return _num(az.ess(inside, method="bulk"))


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
