"""Figures a reader can use: labelled axes, legends, colour-blind-safe maps.

All figures are written atomically (temporary file, then rename) and refuse
to replace an existing file unless ``force``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm  # noqa: E402

from diagnostics.arviz_io import atomic_write  # noqa: E402

__all__ = ["save_figure", "plot_sgd_panels", "plot_sweep_heatmap", "potential_contours"]

# Okabe-Ito, safe for the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
DENSITY_CMAP = "cividis"


def save_figure(fig, path: str | Path, *, force: bool = False, dpi: int = 150) -> Path:
    """Save ``fig`` atomically in the format its suffix names, then close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"), force=force)
    finally:
        plt.close(fig)


def potential_contours(ax, potential, *, extent=(-1.2, 1.2), levels=None, n: int = 241) -> None:
    """Contour lines of a 2-D potential ``potential(x)`` with ``x`` of shape ``(..., 2)``."""
    grid = np.linspace(extent[0], extent[1], n)
    xx, yy = np.meshgrid(grid, grid)
    zz = np.asarray(potential(np.stack([xx, yy], axis=-1)))
    if levels is None:
        positive = zz[zz > 0]
        top = float(np.quantile(positive, 0.95)) if positive.size else 1.0
        levels = np.geomspace(max(top * 1e-3, 1e-3), top, 7)
    ax.contour(xx, yy, zz, levels=levels, colors="0.35", linewidths=0.6, alpha=0.8)


def plot_sgd_panels(results: list[dict[str, Any]], path: str | Path, *, force: bool = False) -> Path:
    """The seed's panels: density of the final SGD positions over the potential's contours."""
    from models.toy import cross_potential

    extent = (-1.2, 1.2)
    bins = np.linspace(extent[0], extent[1], 161)
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 4.9), constrained_layout=True)
    axes = np.atleast_1d(axes)
    hists = []
    for res in results:
        final = res["final"][np.all(np.isfinite(res["final"]), axis=1)]
        h, _, _ = np.histogram2d(final[:, 0], final[:, 1], bins=[bins, bins], density=True)
        hists.append(h)
    positive = np.concatenate([h[h > 0] for h in hists])
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-4), vmax=positive.max())
    for ax, res, h in zip(axes, results, hists, strict=True):
        s = res["summary"]
        mesh = ax.pcolormesh(bins, bins, np.ma.masked_equal(h.T, 0), cmap=DENSITY_CMAP, norm=norm)
        potential_contours(
            ax, lambda x, s=s: cross_potential(np.asarray(x), a=s["a"], lam=s["lam"]), extent=extent
        )
        r = s["stickiness"]["radius"]
        ax.add_patch(plt.Circle((0, 0), r, fill=False, color=PALETTE[3], lw=1.5, label=f"|x| < {r:g}"))
        ax.plot([0], [0], marker="+", color=PALETTE[3], ms=10, mew=2, label="singularity (0, 0)")
        if s["lam"] > 0:
            ax.plot([-1], [-1], marker="x", color=PALETTE[1], ms=8, mew=2, label="regularization centre c")
        st = s["stickiness"]
        title = res.get("label", "")
        ax.set_title(
            f"{title}: λ = {s['lam']:g}, ε = {s['noise']:g}, {s['runs']:,} runs\n"
            f"stickiness S({r:g}) = {st['value']:.2f} ± {st['stderr']:.2f}",
            fontsize=10,
        )
        ax.set_xlim(extent)
        ax.set_ylim(extent)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_0$")
        ax.set_ylabel("$x_1$")
        ax.legend(loc="upper right", fontsize=7, framealpha=0.85)
    fig.colorbar(mesh, ax=axes, shrink=0.85, label="density of $x^{(T)}$ (log scale)")
    fig.suptitle(
        f"Noisy SGD on U(x) = a min(x0², x1²) + λ/2 ||x − c||²: where {results[0]['summary']['steps']} "
        f"steps end (η = {results[0]['summary']['lr']:g}, momentum 0)",
        fontsize=11,
    )
    return save_figure(fig, path, force=force)


def plot_sweep_heatmap(rows: list[dict[str, Any]], path: str | Path, *, force: bool = False) -> Path:
    """Stickiness over (lam, noise), one panel per momentum, cells annotated ``S ± stderr``."""
    lams = sorted({r["lam"] for r in rows})
    noises = sorted({r["noise"] for r in rows})
    momenta = sorted({r["momentum"] for r in rows})
    values = [r["stickiness"]["value"] for r in rows if r["stickiness"]["value"] is not None]
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    span = max(abs(math.log10(v)) for v in finite) if finite else 1.0
    span = max(span, 0.1)
    fig, axes = plt.subplots(
        1, len(momenta), figsize=(1.2 + 1.3 * len(noises) * len(momenta) + 1.5, 1.2 + 0.7 * len(lams)),
        constrained_layout=True, squeeze=False,
    )
    norm = TwoSlopeNorm(vmin=-span, vcenter=0.0, vmax=span)
    for ax, m in zip(axes[0], momenta, strict=True):
        grid = np.full((len(lams), len(noises)), np.nan)
        text = {}
        for r in rows:
            if r["momentum"] != m:
                continue
            i, j = lams.index(r["lam"]), noises.index(r["noise"])
            st = r["stickiness"]
            if st["value"] is not None and st["value"] > 0:
                grid[i, j] = math.log10(st["value"])
            elif st["value"] == 0:  # no run ended at the origin: as repulsive as the scale shows
                grid[i, j] = -span
            se = "n/a" if st["stderr"] is None else f"{st['stderr']:.2f}"
            text[i, j] = f"{st['value']:.2f}\n±{se}" if st["value"] is not None else "n/a"
        image = ax.imshow(grid, cmap="RdBu_r", norm=norm, origin="lower", aspect="auto")
        for (i, j), label in text.items():
            ax.text(j, i, label, ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(noises)), [f"{n:g}" for n in noises])
        ax.set_yticks(range(len(lams)), [f"{v:g}" for v in lams])
        ax.set_xlabel("noise ε (std of the injected step noise)")
        ax.set_ylabel("regularization λ")
        ax.set_title(f"momentum β = {m:g}", fontsize=10)
    cbar = fig.colorbar(image, ax=axes[0].tolist(), shrink=0.9)
    cbar.set_label("log10 stickiness S(r): > 0 sticky, < 0 repulsive")
    r = rows[0]["stickiness"]["radius"]
    fig.suptitle(f"Stickiness S({r:g}) of the origin under noisy SGD ({rows[0]['runs']:,} runs per cell)", fontsize=11)
    return save_figure(fig, path, force=force)


def _row_label(row: dict[str, Any]) -> str:
    return row["sampler"] if row["adjusted"] else f"{row['sampler']} h={row['step_size']:g}"


def plot_compare(result: dict[str, Any], folder: str | Path, *, force: bool = False) -> list[Path]:
    """The three comparison figures: occupancy vs exact, bias vs step size, densities."""
    folder = Path(folder)
    rows, exact = result["rows"], result["exact"]
    radius = result["radius"]
    paths = []

    # 1. occupancy with error bars against the exact line
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(rows) + 2), 4.2), constrained_layout=True)
    xs = np.arange(len(rows))
    for i, row in enumerate(rows):
        colour = PALETTE[0] if row["adjusted"] else PALETTE[3]
        err = 2 * row["mcse"] if row["mcse"] is not None else 0.0
        ax.errorbar(i, row["occupancy"], yerr=err, fmt="o", color=colour, capsize=4)
    ax.axhline(exact, color="k", lw=1.2, label=f"exact Gibbs value {exact:.4g}")
    ax.errorbar([], [], yerr=[], fmt="o", color=PALETTE[0], label="Metropolis-adjusted (±2 MCSE)")
    ax.errorbar([], [], yerr=[], fmt="o", color=PALETTE[3], label="unadjusted (±2 MCSE)")
    ax.set_xticks(xs, [_row_label(r) for r in rows], rotation=35, ha="right")
    ax.set_ylabel(f"occupancy P(|x - x*| < {radius:g})")
    ax.set_title(f"{result['model']} at β = {result['beta']:g}: time spent near the singular point")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, folder / "occupancy.png", force=force))

    # 2. bias against step size (unadjusted dynamics), log axes
    fig, ax = plt.subplots(figsize=(6.0, 4.2), constrained_layout=True)
    names = sorted({r["sampler"] for r in rows if not r["adjusted"]})
    for k, name in enumerate(names):
        sel = sorted((r for r in rows if r["sampler"] == name), key=lambda r: r["step_size"])
        h = np.array([r["step_size"] for r in sel])
        bias = np.array([abs(r["occupancy"] - exact) for r in sel])
        err = np.array([2 * (r["mcse"] or 0.0) for r in sel])
        ax.errorbar(h, np.maximum(bias, 1e-6), yerr=err, marker="o", capsize=3,
                    color=PALETTE[k % len(PALETTE)], label=name)
    for r in rows:
        if r["adjusted"] and r["mcse"]:
            ax.axhline(2 * r["mcse"], ls=":", lw=0.8, color="0.5")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step size (h for ula/sgld/sghmc, learning rate η for sgd)")
    ax.set_ylabel("|occupancy − exact|")
    ax.set_title("Step-size bias of unadjusted dynamics\n(dotted: 2 MCSE of the adjusted samplers)", fontsize=10)
    if names:
        ax.legend(fontsize=8)
    paths.append(save_figure(fig, folder / "bias_vs_step.png", force=force))

    # 3. densities: exact beside each sampler's histogram
    edges = result["edges"]
    exact_cells = result["reference"].cell_masses(edges, edges)
    panels = [("exact Gibbs", exact_cells)] + [
        (_row_label(row), _hist(trace.draws["x"], edges)) for row, _, trace in result["trees"]
    ]
    ncols = min(4, len(panels))
    nrows = int(math.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows + 0.4), constrained_layout=True, squeeze=False)
    positive = exact_cells[exact_cells > 0]
    norm = LogNorm(vmin=max(positive.max() * 1e-4, positive.min()), vmax=positive.max())
    center = result["center"]
    for ax, (title, cells) in zip(axes.flat, panels, strict=False):
        mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(cells.T, 0), cmap=DENSITY_CMAP, norm=norm)
        ax.add_patch(plt.Circle(center, radius, fill=False, color=PALETTE[3], lw=1.2))
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_0$", fontsize=8)
        ax.set_ylabel("$x_1$", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.colorbar(mesh, ax=axes, shrink=0.8, label="probability mass per cell (log)")
    fig.suptitle(f"{result['model']} at β = {result['beta']:g}: exact density and each sampler's draws", fontsize=11)
    paths.append(save_figure(fig, folder / "densities.png", force=force))
    return paths


def _hist(draws: np.ndarray, edges: np.ndarray) -> np.ndarray:
    from diagnostics.bias import histogram_masses

    return histogram_masses(draws, edges, edges)
