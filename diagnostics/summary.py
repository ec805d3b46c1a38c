"""Trust first: ArviZ's summary and the numbers that say whether to believe it."""

from __future__ import annotations

import math
from typing import Any

import arviz_stats as az  # ArviZ's diagnostics without its plotting half (arviz_plots, matplotlib)
import numpy as np
import xarray as xr

__all__ = ["finite_chain_mask", "summary_table", "convergence", "warnings_for"]


def finite_chain_mask(dt: xr.DataTree) -> np.ndarray:
    """Chains that never hit a non-finite value (from ``sample_stats.is_finite``)."""
    stats = dt["sample_stats"]
    if "is_finite" not in stats:
        return np.ones(dt["posterior"].sizes["chain"], dtype=bool)
    return np.asarray(stats["is_finite"].all(dim="draw"))


def _finite(dt: xr.DataTree) -> xr.DataTree:
    mask = finite_chain_mask(dt)
    if mask.all():
        return dt
    if not mask.any():
        raise ValueError("every chain stopped on a non-finite value; nothing to summarize")
    keep = np.flatnonzero(mask)
    return dt.isel(chain=keep)


def summary_table(dt: xr.DataTree):
    """ArviZ's summary (mean, sd, interval, ess_bulk, ess_tail, r_hat, mcse) over finite chains."""
    return az.summary(_finite(dt))


def convergence(dt: xr.DataTree) -> dict[str, Any]:
    """Headline diagnostics over the posterior: the worst ESS and R-hat, divergences, acceptance."""
    finite = _finite(dt)
    post = finite["posterior"]
    num_chains = int(post.sizes["chain"])
    ess = az.ess(finite, method="bulk").to_dataset()
    ess_values = np.concatenate([np.ravel(v.values) for v in ess.data_vars.values()])
    out: dict[str, Any] = {
        "ess_bulk_min": _num(np.nanmin(ess_values)) if ess_values.size else None,
        "rhat_max": None,
        "divergences": 0,
        "acceptance_rate": None,
        "chains_stopped_nonfinite": int((~finite_chain_mask(dt)).sum()),
        "nonfinite_stops": nonfinite_stops(dt),
    }
    if num_chains > 1:
        rhat = az.rhat(finite).to_dataset()
        rhat_values = np.concatenate([np.ravel(v.values) for v in rhat.data_vars.values()])
        out["rhat_max"] = _num(np.nanmax(rhat_values)) if rhat_values.size else None
    stats = dt["sample_stats"]
    if "diverging" in stats:
        out["divergences"] = int(np.nansum(stats["diverging"].values))
    if "acceptance_rate" in stats:
        out["acceptance_rate"] = _num(np.nanmean(stats["acceptance_rate"].values))
    return out


REASONS = {1: "position", 2: "log density", 3: "recorded value"}


def nonfinite_stops(dt: xr.DataTree) -> list[dict[str, Any]]:
    """Each stopped chain: which, at which draw, and what turned non-finite."""
    stats = dt["sample_stats"]
    if "is_finite" not in stats:
        return []
    finite = np.asarray(stats["is_finite"])
    reason = np.asarray(stats["nonfinite_reason"]) if "nonfinite_reason" in stats else None
    stops = []
    for chain in np.flatnonzero(~finite.all(axis=1)):
        draw = int(np.argmax(~finite[chain]))
        code = int(reason[chain, draw]) if reason is not None else 0
        stops.append({"chain": int(chain), "draw": draw, "reason": REASONS.get(code, "unknown")})
    return stops


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def warnings_for(diag: dict[str, Any], *, num_chains: int) -> list[str]:
    """Plain-language warnings from :func:`convergence` (thresholds of Vehtari et al. 2021)."""
    out = []
    ess = diag.get("ess_bulk_min")
    if ess is not None and ess < 100 * min(num_chains, 4):
        out.append(f"low effective sample size: the worst ESS (bulk) is {ess:.0f}; run more draws")
    rhat = diag.get("rhat_max")
    if rhat is not None and rhat > 1.01:
        out.append(f"chains disagree: R-hat {rhat:.3f} > 1.01; run longer or check for stuck chains")
    if diag.get("divergences"):
        out.append(
            f"{diag['divergences']} divergent transitions: the integrator failed where the "
            "curvature changes fast (near the singularity or the gradient jumps)"
        )
    acc = diag.get("acceptance_rate")
    if acc is not None and acc < 0.3:
        out.append(f"low acceptance rate {acc:.2f}: the step size is too large")
    stopped = diag.get("chains_stopped_nonfinite")
    if stopped:
        where = "; ".join(
            f"chain {s['chain']} at draw {s['draw']} ({s['reason']})"
            for s in diag.get("nonfinite_stops", [])[:5]
        )
        out.append(
            f"{stopped} of {num_chains} chains stopped on a non-finite value and were left out"
            + (f": {where}" if where else "")
        )
    return out
