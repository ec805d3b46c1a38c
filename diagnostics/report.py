"""One self-contained HTML report over the result files this toolkit writes.

Trust first: every result opens with plain-language warnings from
:mod:`diagnostics.summary`, then ArviZ's summary table, then the figures
(ArviZ's trace, rank, ESS and energy plots through arviz-plots' matplotlib
backend, and the figures of each result kind), then its provenance. Figures
are embedded as base64 PNG so the file opens offline, anywhere.

A result is a netCDF file (``surf_kind`` ``sample``, ``compare``, ``sgd``, or
any other kind, shown generically), a compare folder (``compare.json``), an
sgd sweep folder (``sweep.json``), or any folder holding these.

Examples
--------
>>> from diagnostics.report import write_report  # doctest: +SKIP
>>> write_report(["runs/demo"], "report.html", force=True)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

from diagnostics.arviz_io import atomic_write, check_writable, load_datatree  # noqa: E402
from diagnostics.plots import DENSITY_CMAP, PALETTE, potential_contours  # noqa: E402

__all__ = ["Result", "find_results", "build_report", "write_report", "ReportError"]

TOY_2D_MODELS = ("cross", "normal-crossing", "quadratic")
COMPARE_FIGURES = (
    ("occupancy.png", "Occupancy near the singular point per sampler (±2 MCSE) against the exact Gibbs value."),
    ("bias_vs_step.png", "Step-size bias |occupancy − exact| of the unadjusted dynamics (log-log)."),
    ("densities.png", "Exact Gibbs density beside each sampler's histogram of draws."),
)
MAX_SUMMARY_ROWS = 60
MAX_PLOT_VARS = 6
MAX_PLOT_ELEMENTS = 6
SEARCH_DEPTH = 3
OVERVIEW_WARNINGS = 8


class ReportError(ValueError):
    """An input the report cannot read: missing, corrupt, or not a result of this toolkit."""


@dataclass
class Result:
    """One thing to report on: a netCDF file or a result folder."""

    kind: str  # "file" (a netCDF; its surf_kind inside), "compare", "sweep", "figure"
    path: Path
    dt: xr.DataTree | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def surf_kind(self) -> str:
        if self.dt is not None:
            return str(self.dt.attrs.get("surf_kind", "unknown"))
        return self.kind


# ----------------------------------------------------------------- discovery


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{path} is not readable JSON ({type(err).__name__}); was it truncated?") from None
    if not isinstance(data, dict) or "rows" not in data:
        raise ReportError(f"{path} is JSON but not a gradient-surfing result (no 'rows')")
    return data


def _load_nc(path: Path) -> Result:
    try:
        dt = load_datatree(path)
    except (OSError, ValueError) as err:
        raise ReportError(str(err)) from None
    return Result("file", path, dt=dt)


def _folder_results(folder: Path, depth: int) -> list[Result]:
    if (folder / "compare.json").is_file():
        data = _load_json(folder / "compare.json")
        rows = []
        for nc in sorted(folder.glob("*.nc")):
            rows.append(_load_nc(nc))
        return [Result("compare", folder, data={"json": data, "rows": rows})]
    if (folder / "sweep.json").is_file():
        data = _load_json(folder / "sweep.json")
        return [Result("sweep", folder, data={"json": data})]
    out: list[Result] = []
    for nc in sorted(folder.glob("*.nc")):
        out.append(_load_nc(nc))
    for png in sorted(folder.glob("*.png")):
        out.append(Result("figure", png))
    if depth > 0:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            out.extend(_folder_results(sub, depth - 1))
    return out


def find_results(paths: list[str | Path]) -> list[Result]:
    """Every result under ``paths``; a :class:`ReportError` names the first bad one."""
    if not paths:
        raise ReportError("give at least one result file or folder")
    results: list[Result] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ReportError(f"no such result file or folder: {path}")
        if path.is_dir():
            found = _folder_results(path, SEARCH_DEPTH)
            if not any(r.kind != "figure" for r in found):
                raise ReportError(
                    f"{path} holds no gradient-surfing results (no *.nc, compare.json or sweep.json)"
                )
            results.extend(found)
        elif path.name == "compare.json" or path.name == "sweep.json":
            results.extend(_folder_results(path.parent, 0))
        elif path.suffix.lower() in (".nc", ".nc4", ".h5", ".hdf5"):
            results.append(_load_nc(path))
        else:
            raise ReportError(
                f"{path} is not a result this toolkit writes (expected a .nc file, a compare or sweep folder)"
            )
    return results


# ----------------------------------------------------------------- figures


def _png(fig, *, dpi: int = 100) -> str:
    """A matplotlib figure as a base64 PNG string; closes the figure."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_html(b64: str, caption: str, *, alt: str) -> str:
    return (
        f'<figure><img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _plot_vars(post: xr.Dataset) -> tuple[list[str], list[str]]:
    """Posterior variables small enough to plot one panel per element; and those left out."""
    keep, skipped = [], []
    for name, var in post.data_vars.items():
        if "chain" not in var.dims or "draw" not in var.dims or not np.issubdtype(var.dtype, np.number):
            skipped.append(str(name))
            continue
        elements = int(np.prod([var.sizes[d] for d in var.dims if d not in ("chain", "draw")]))
        if elements <= MAX_PLOT_ELEMENTS and len(keep) < MAX_PLOT_VARS:
            keep.append(str(name))
        else:
            skipped.append(str(name))
    return keep, skipped


def _arviz_figures(dt: xr.DataTree) -> list[str]:
    """Trace, rank, ESS and (when there is energy) energy plots from arviz-plots."""
    import arviz as az

    post = dt["posterior"].to_dataset()
    var_names, skipped = _plot_vars(post)
    out = []
    if not var_names:
        return [f'<p class="note">No posterior variable small enough to plot (left out: {html.escape(", ".join(skipped))}).</p>']
    if skipped:
        out.append(f'<p class="note">Plots leave out large or non-numeric variables: {html.escape(", ".join(skipped))}.</p>')
    num_chains = int(post.sizes.get("chain", 1))
    jobs = [
        (
            "trace",
            lambda: az.plot_trace_dist(dt, var_names=var_names, backend="matplotlib"),
            "Trace plot: marginal density per chain (left) and each chain's draws against the draw index "
            "(right). Chains should overlap and look like stationary noise.",
        ),
    ]
    if num_chains > 1:
        jobs.append(
            (
                "rank",
                lambda: az.plot_rank(dt, var_names=var_names, thin=True, backend="matplotlib"),
                "Rank plot (fractional-rank ECDF difference per chain, multi-chain uniformity test on "
                "thinned draws): flat lines mean the chains agree; black points flag where they do not.",
            )
        )
    jobs.append(
        (
            "ess",
            lambda: az.plot_ess(dt, var_names=var_names, backend="matplotlib"),
            "Local effective sample size across quantiles; the dashed line is the 400 draws "
            "ArviZ asks for. Low values in the tails mean the tails are poorly explored.",
        )
    )
    stats = dt["sample_stats"] if "sample_stats" in dt.children else None
    if stats is not None and "energy" in stats.data_vars:
        jobs.append(
            (
                "energy",
                lambda: az.plot_energy(dt, backend="matplotlib"),
                "Energy plot: marginal energy against the energy transition; a much narrower "
                "transition distribution (BFMI < 0.3) means the sampler explores the energy slowly.",
            )
        )
    for name, make, caption in jobs:
        try:
            pc = make()
            fig = pc.get_viz("figure")
        except Exception as err:  # a plot ArviZ refuses (e.g. constant draws) must not sink the report
            plt.close("all")
            out.append(f'<p class="note">ArviZ {name} plot unavailable: {html.escape(_one_line(err))}</p>')
            continue
        out.append(_figure_html(_png(fig, dpi=80), caption, alt=f"ArviZ {name} plot"))
    return out


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _toy_target(config: dict[str, Any]):
    target_cfg = config.get("target") or {}
    model = target_cfg.get("model")
    if model not in TOY_2D_MODELS or target_cfg.get("dim", 2) != 2 or target_cfg.get("box") is None:
        return None
    from models.toy import toy_target

    try:
        return toy_target(model, target_cfg.get("params") or {}, beta=float(target_cfg.get("beta", 1.0)))
    except (ValueError, TypeError):
        return None


def _toy_figures(dt: xr.DataTree, config: dict[str, Any]) -> list[str]:
    """Density of the draws over the potential's contours, and occupancy against radius."""
    import jax.numpy as jnp

    from diagnostics.singularity import finite_chains, occupancy
    from models.reference import GibbsReference

    target = _toy_target(config)
    if target is None or "x" not in dt["posterior"].data_vars:
        return []
    draws = np.asarray(dt["posterior"]["x"].values, dtype=float)
    if draws.ndim != 3 or draws.shape[-1] != 2:
        return []
    draws = draws[finite_chains(draws)]
    if draws.shape[0] == 0:
        return ['<p class="note">Every chain has non-finite draws: no density or occupancy figure.</p>']
    lo, hi = target.box.low, target.box.high
    center = tuple(float(c) for c in (target.singular_point or (0.0, 0.0)))
    out = []

    # 1. density over contours
    potential = jnp.vectorize(target.loss_fn, signature="(n)->()")
    edges = np.linspace(lo, hi, 81)
    pts = draws.reshape(-1, 2)
    h, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=[edges, edges], density=True)
    fig, ax = plt.subplots(figsize=(6.4, 5.4), constrained_layout=True)
    positive = h[h > 0]
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-4), vmax=positive.max()) if positive.size else None
    mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(h.T, 0), cmap=DENSITY_CMAP, norm=norm)
    potential_contours(ax, potential, extent=(lo, hi))
    ax.plot([center[0]], [center[1]], marker="+", color=PALETTE[3], ms=14, mew=2.5, ls="none",
            label=f"singular point x* = ({center[0]:g}, {center[1]:g})")
    radius = float(config.get("radius", 0.1))
    ax.add_patch(plt.Circle(center, radius, fill=False, color=PALETTE[3], lw=1.2, ls="--",
                            label=f"|x − x*| < {radius:g}"))
    ax.plot([], [], color="0.35", lw=0.8, label="contours of the potential U")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_0$ (position, units of x)")
    ax.set_ylabel("$x_1$ (position, units of x)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.colorbar(mesh, ax=ax, shrink=0.85, label="density of the draws (per unit area, log scale)")
    ax.set_title(f"{config.get('sampler', 'sampler')} on {target.name} at β = {target.beta:g}: where the draws are")
    out.append(_figure_html(_png(fig), "Histogram of all finite chains' draws over the contour lines of the "
                            "potential; the cross marks the singular point.", alt="sample density over contours"))

    # 2. occupancy against radius with the exact curve
    half = 0.5 * (hi - lo)
    radii = np.geomspace(0.02 * half, 0.6 * half, 10)
    try:
        reference = GibbsReference.from_target(target)
        exact = np.array([reference.occupancy(center, r) for r in radii])
    except Exception:  # noqa: BLE001 - the figure is still useful without the exact line
        exact = None
    occ = [occupancy(draws, center, float(r)) for r in radii]
    frac = np.array([o.fraction for o in occ])
    mcse = np.array([o.mcse if math.isfinite(o.mcse) else 0.0 for o in occ])
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    ax.fill_between(radii, np.maximum(frac - 2 * mcse, 1e-6), frac + 2 * mcse, color=PALETTE[0], alpha=0.25,
                    label="sampler ± 2 MCSE")
    ax.plot(radii, frac, "o-", color=PALETTE[0], ms=4, label=f"{config.get('sampler', 'sampler')} draws")
    if exact is not None:
        ax.plot(radii, exact, "-", color="k", lw=1.4, label="exact Gibbs value (quadrature)")
    ax.axvline(radius, color=PALETTE[3], ls=":", lw=1, label=f"report radius r = {radius:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xticks(_nice_ticks(radii[0], radii[-1]))
    ax.set_xlabel("radius r (units of x)")
    ax.set_ylabel("occupancy P(|x − x*| < r) (fraction of draws)")
    ax.set_title("Time spent near the singular point against radius")
    ax.legend(fontsize=8)
    out.append(_figure_html(_png(fig), "Occupancy of the disk around the singular point for growing radius: "
                            "the sampler's estimate with its ±2 MCSE band against the exact Gibbs curve.",
                            alt="occupancy against radius"))
    return out


def _nice_ticks(lo: float, hi: float) -> list[float]:
    ticks = []
    for exp in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
        for m in (1, 2, 5):
            t = m * 10.0**exp
            if lo * 0.999 <= t <= hi * 1.001:
                ticks.append(t)
    return ticks or [lo, hi]


def _sgd_figures(dt: xr.DataTree, summary: dict[str, Any]) -> list[str]:
    """Final positions over the cross potential's contours; trajectories when kept."""
    from models.toy import cross_potential

    x = np.asarray(dt["posterior"]["x"].values, dtype=float).reshape(-1, 2)
    x = x[np.all(np.isfinite(x), axis=1)]
    out = []
    extent = (-1.2, 1.2)
    edges = np.linspace(*extent, 121)
    a, lam = float(summary.get("a", 100.0)), float(summary.get("lam", 0.0))
    fig, ax = plt.subplots(figsize=(6.4, 5.4), constrained_layout=True)
    h, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges], density=True)
    positive = h[h > 0]
    norm = LogNorm(vmin=max(positive.min(), positive.max() * 1e-4), vmax=positive.max()) if positive.size else None
    mesh = ax.pcolormesh(edges, edges, np.ma.masked_equal(h.T, 0), cmap=DENSITY_CMAP, norm=norm)
    potential_contours(ax, lambda p: cross_potential(np.asarray(p), a=a, lam=lam), extent=extent)
    st = summary.get("stickiness") or {}
    r = float(st.get("radius", 0.1))
    ax.add_patch(plt.Circle((0, 0), r, fill=False, color=PALETTE[3], lw=1.5, label=f"|x| < {r:g}"))
    ax.plot([0], [0], marker="+", color=PALETTE[3], ms=12, mew=2, ls="none", label="singularity (0, 0)")
    if "trajectories" in dt.children and "x" in dt["trajectories"].data_vars:
        paths = np.asarray(dt["trajectories"]["x"].values, dtype=float)
        for k, path in enumerate(paths[:8]):
            ax.plot(path[:, 0], path[:, 1], "-", lw=0.9, color=PALETTE[(k + 1) % 6],
                    label="kept trajectories" if k == 0 else None)
    ax.plot([], [], color="0.35", lw=0.8, label="contours of U")
    ax.set_xlim(extent)
    ax.set_ylim(extent)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_0$ (position, units of x)")
    ax.set_ylabel("$x_1$ (position, units of x)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    fig.colorbar(mesh, ax=ax, shrink=0.85, label="density of final positions $x^{(T)}$ (log scale)")
    value = st.get("value")
    se = st.get("stderr")
    title = f"Noisy SGD, λ = {lam:g}, ε = {summary.get('noise', float('nan')):g}, {len(x):,} runs"
    if value is not None:
        title += f"\nstickiness S({r:g}) = {value:.2f}" + (f" ± {se:.2f}" if se is not None else "")
    ax.set_title(title, fontsize=10)
    out.append(_figure_html(_png(fig), "Where the SGD runs end after T steps, over the contours of the cross "
                            "potential; the circle is the stickiness disk.", alt="sgd final-position density"))
    return out


# ----------------------------------------------------------------- tables


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return "n/a" if not math.isfinite(float(value)) else format(float(value), spec)
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], *, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _summary_html(dt: xr.DataTree) -> str:
    from diagnostics.summary import summary_table

    try:
        frame = summary_table(dt)
    except Exception as err:  # noqa: BLE001
        return f'<p class="note">ArviZ summary unavailable: {html.escape(_one_line(err))}</p>'
    note = ""
    if len(frame) > MAX_SUMMARY_ROWS:
        note = f'<p class="note">Showing the first {MAX_SUMMARY_ROWS} of {len(frame)} rows.</p>'
        frame = frame.iloc[:MAX_SUMMARY_ROWS]
    rows = [[str(name), *[v.item() if hasattr(v, "item") else v for v in row]] for name, row in frame.iterrows()]
    return _table(["", *[str(c) for c in frame.columns]], rows, cls="summary") + note


def _with_stats(dt: xr.DataTree) -> xr.DataTree:
    """``diagnostics.summary`` reads ``sample_stats``: give a result without one an empty group."""
    if "sample_stats" in dt.children:
        return dt
    dt = dt.copy()
    dt["sample_stats"] = xr.DataTree(xr.Dataset())
    return dt


def _is_mcmc(dt: xr.DataTree) -> bool:
    if "posterior" not in dt.children:
        return False
    sizes = dt["posterior"].sizes
    return "chain" in sizes and "draw" in sizes and sizes["draw"] > 3


def _trust(dt: xr.DataTree) -> tuple[dict[str, Any] | None, list[str]]:
    from diagnostics.summary import convergence, warnings_for

    dt = _with_stats(dt)
    num_chains = int(dt["posterior"].sizes["chain"])
    try:
        diag = convergence(dt)
    except Exception as err:  # noqa: BLE001 - e.g. every chain non-finite: that is the warning
        return None, [f"diagnostics could not be computed: {_one_line(err)}"]
    return diag, warnings_for(diag, num_chains=num_chains)


def _warnings_html(warnings: list[str]) -> str:
    if not warnings:
        return '<p class="ok">✓ No convergence warnings (ESS, R-hat, divergences, acceptance, non-finite chains).</p>'
    items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return f'<div class="warn"><strong>⚠ Check before trusting these numbers:</strong><ul>{items}</ul></div>'


def _diag_line(diag: dict[str, Any] | None) -> str:
    if diag is None:
        return ""
    return (
        '<p class="diag">'
        f"worst ESS (bulk) {_fmt(diag.get('ess_bulk_min'), '.0f')} · "
        f"max R-hat {_fmt(diag.get('rhat_max'), '.3f')} · "
        f"divergences {_fmt(diag.get('divergences'))} · "
        f"mean acceptance {_fmt(diag.get('acceptance_rate'), '.2f')} · "
        f"chains stopped non-finite {_fmt(diag.get('chains_stopped_nonfinite'))}</p>"
    )


def _provenance_html(
    *, config: dict[str, Any] | None, versions: dict[str, Any] | None, created: str | None,
    extra: dict[str, Any] | None = None,
) -> str:
    config = config or {}
    seed = config.get("seed")
    commit = (versions or {}).get("git_commit")
    rows = [
        ["seed", "n/a" if seed is None else seed],
        ["created", created or "not recorded"],
        ["git commit", commit or "not recorded"],
    ]
    for key, value in (extra or {}).items():
        rows.append([key, value if not isinstance(value, (dict, list)) else json.dumps(value)])
    parts = [_table(["", ""], rows, cls="kv")]
    if versions:
        parts.append("<h4>Package versions</h4>")
        parts.append(_table(["package", "version"], [[k, v] for k, v in sorted(versions.items())], cls="kv"))
    else:
        parts.append('<p class="note">Package versions: not recorded in this result.</p>')
    parts.append("<h4>Full configuration</h4>")
    parts.append(f"<pre>{html.escape(json.dumps(config, indent=1, sort_keys=True))}</pre>")
    return '<details class="prov" open><summary>Provenance</summary>' + "".join(parts) + "</details>"


def _attr_json(dt: xr.DataTree, name: str) -> Any:
    raw = dt.attrs.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return raw


# ----------------------------------------------------------------- sections


@dataclass
class _Section:
    anchor: str
    title: str
    kind: str
    warnings: list[str]
    body: str
    diag: dict[str, Any] | None = None


def _dt_section(result: Result, anchor: str, *, plots: bool = True, title: str | None = None) -> _Section:
    dt = result.dt
    kind = result.surf_kind
    config = _attr_json(dt, "surf_config") or {}
    versions = _attr_json(dt, "surf_versions")
    extra = {"file": str(result.path), "kind": kind}
    placement = _attr_json(dt, "surf_placement")
    if isinstance(placement, dict):  # where it ran (the draws do not depend on it)
        extra["ran on"] = (f"up to {placement.get('device_limit_per_process')} {placement.get('backend')} "
                           f"device(s) x {placement.get('process_count')} process(es)")
    for name in ("surf_sampler_params", "surf_timing"):
        value = _attr_json(dt, name)
        if value is not None:
            extra[name.removeprefix("surf_").replace("_", " ")] = _short(value)
    body: list[str] = []
    warnings: list[str] = []
    diag = None
    if kind == "sgd":
        summary = _attr_json(dt, "surf_summary") or {}
        nonfinite = summary.get("nonfinite_runs")
        if nonfinite:
            warnings.append(f"{nonfinite} of {summary.get('runs')} SGD runs ended on a non-finite position and were left out")
        body.append(_warnings_html(warnings))
        body.append(
            '<p class="note">Each SGD run is independent (one final position per run), so the MCMC '
            "diagnostics (R-hat, rank, energy) do not apply; errors are binomial standard errors.</p>"
        )
        body.append(_sgd_table(summary))
        if "posterior" in dt.children and "x" in dt["posterior"].data_vars:
            body.extend(_sgd_figures(dt, summary))
    elif _is_mcmc(dt):
        diag, warnings = _trust(dt)
        body.append(_warnings_html(warnings))
        body.append(_diag_line(diag))
        if kind not in ("sample", "compare"):
            body.append(
                f'<p class="note">The report does not know the kind {html.escape(kind)!r}: it shows '
                "ArviZ's view of the posterior group. The diagnostics above assume draws of a "
                "stationary Markov chain; for curves of a training run they describe the curve, "
                "not convergence.</p>"
            )
        body.append("<h3>ArviZ summary</h3>")
        body.append(_summary_html(_with_stats(dt)))
        if plots and kind in ("sample", "compare"):
            body.extend(_toy_figures(dt, config))
        if plots:
            body.append("<h3>ArviZ diagnostics plots</h3>")
            body.extend(_arviz_figures(_with_stats(dt)))
    else:
        warnings = ["no posterior draws with (chain, draw) dimensions: nothing to diagnose"]
        body.append(_warnings_html(warnings))
        body.append(f"<pre>{html.escape(str(dt))[:4000]}</pre>")
    summary = _attr_json(dt, "surf_summary")
    if kind not in ("sample", "compare", "sgd") and isinstance(summary, dict) and summary:
        rows = [[k, v if not isinstance(v, (dict, list)) else _short(v, 200)] for k, v in summary.items()]
        body.insert(1, "<h3>Recorded summary</h3>" + _table(["quantity", "value"], rows, cls="kv"))
    body.append(_provenance_html(config=config, versions=versions, created=dt.attrs.get("surf_created"), extra=extra))
    return _Section(anchor, title or f"{kind}: {result.path}", kind, warnings, "".join(body), diag)


def _short(value: Any, limit: int = 400) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + " …"


def _sgd_table(summary: dict[str, Any]) -> str:
    st = summary.get("stickiness") or {}
    rows = [
        ["regularization λ", summary.get("lam")],
        ["noise ε", summary.get("noise")],
        ["momentum β", summary.get("momentum")],
        ["learning rate η", summary.get("lr")],
        ["steps T", summary.get("steps")],
        ["runs", summary.get("runs")],
        ["non-finite runs", summary.get("nonfinite_runs")],
        [f"stickiness S({st.get('radius', 0.1):g})", st.get("value")],
        ["± standard error", st.get("stderr")],
    ]
    gibbs = (summary.get("gibbs") or {}).get("occupancy") or {}
    for r, occ in sorted((summary.get("occupancy") or {}).items(), key=lambda kv: float(kv[0])):
        rows.append([f"P(|x| < {r}) ± se", f"{_fmt(occ.get('fraction'))} ± {_fmt(occ.get('mcse'), '.2g')}"
                     + (f" (Gibbs at β_eff: {_fmt(gibbs.get(r))})" if r in gibbs else "")])
    rows.append(["seconds", summary.get("seconds")])
    return "<h3>Stickiness summary</h3>" + _table(["quantity", "value"], rows, cls="kv")


def _compare_section(result: Result, anchor: str, *, row_plots: bool) -> _Section:
    data = result.data["json"]
    exact = data.get("exact")
    body: list[str] = []
    warnings: list[str] = []
    # trust first: one line per sampler
    trust_rows = []
    subs = []
    for i, row_result in enumerate(result.data["rows"]):
        sub = _dt_section(row_result, f"{anchor}-row{i}", plots=row_plots, title=f"{row_result.path.name}")
        subs.append(sub)
        for w in sub.warnings:
            warnings.append(f"{row_result.path.stem}: {w}")
        d = sub.diag or {}
        trust_rows.append([row_result.path.stem, d.get("ess_bulk_min"), d.get("rhat_max"), d.get("divergences"),
                           d.get("acceptance_rate"), len(sub.warnings)])
    body.append(_warnings_html(warnings))
    if trust_rows:
        body.append("<h3>Convergence per sampler</h3>")
        body.append(_table(["file", "worst ESS (bulk)", "max R-hat", "divergences", "acceptance", "warnings"],
                           trust_rows, cls="summary"))
    body.append(f"<h3>Bias against the exact Gibbs occupancy (exact = {_fmt(exact)})</h3>")
    header = ["sampler", "step size", "occupancy", "± MCSE", "z", "ratio", "TV distance", "ESS (bulk)",
              "ESS/s", "divergences", "acceptance", "R-hat"]
    rows = [
        [r.get("sampler"), r.get("step_size"), r.get("occupancy"), r.get("mcse"), r.get("z"), r.get("ratio"),
         r.get("tv"), r.get("ess_bulk"), r.get("ess_per_second"), r.get("divergences"), r.get("acceptance_rate"),
         r.get("rhat_max")]
        for r in data.get("rows", [])
    ]
    body.append(_table(header, rows, cls="summary"))
    body.append(
        f'<p class="note">Occupancy of |x − x*| &lt; {_fmt(data.get("radius"))} around x* = '
        f'{html.escape(str(data.get("center")))}; z = (occupancy − exact) / MCSE; TV is the total-variation '
        "distance of the 2-D histograms from the exact cell masses.</p>"
    )
    for name, caption in COMPARE_FIGURES:
        png = result.path / name
        if png.is_file():
            body.append(_figure_html(_png_file(png), caption, alt=name))
    body.append(_provenance_html(
        config={k: v for k, v in data.items() if k != "rows"},
        versions=_first_versions(result.data["rows"]),
        created=_first_attr(result.data["rows"], "surf_created"),
        extra={"folder": str(result.path), "kind": "compare"},
    ))
    if subs:
        body.append("<h3>Each sampler's result file</h3>")
        for sub in subs:
            body.append(f'<details class="row" id="{sub.anchor}"><summary>{html.escape(sub.title)}'
                        f'{" — ⚠ " + str(len(sub.warnings)) + " warning(s)" if sub.warnings else ""}</summary>'
                        f"{sub.body}</details>")
    title = f"compare: {result.path} ({data.get('model')} at β = {_fmt(data.get('beta'))})"
    return _Section(anchor, title, "compare", warnings, "".join(body))


def _first_versions(rows: list[Result]) -> dict[str, Any] | None:
    for r in rows:
        v = _attr_json(r.dt, "surf_versions")
        if v:
            return v
    return None


def _first_attr(rows: list[Result], name: str) -> str | None:
    for r in rows:
        if name in r.dt.attrs:
            return str(r.dt.attrs[name])
    return None


def _sweep_section(result: Result, anchor: str) -> _Section:
    data = result.data["json"]
    rows = data.get("rows", [])
    warnings = [
        f"λ = {r.get('lam')}, ε = {r.get('noise')}: {r['nonfinite_runs']} runs ended non-finite and were left out"
        for r in rows if r.get("nonfinite_runs")
    ]
    body = [_warnings_html(warnings)]
    table_rows = []
    for r in rows:
        st = r.get("stickiness") or {}
        occ = (r.get("occupancy") or {}).get(f"{st.get('radius', 0.1):g}") or {}
        gibbs = ((r.get("gibbs") or {}).get("occupancy") or {}).get(f"{st.get('radius', 0.1):g}")
        table_rows.append([r.get("lam"), r.get("noise"), r.get("momentum"), r.get("runs"), st.get("value"),
                           st.get("stderr"), occ.get("fraction"), gibbs, r.get("nonfinite_runs"), r.get("seconds")])
    body.append("<h3>Sweep</h3>")
    body.append(_table(["λ", "noise ε", "momentum β", "runs", "stickiness S(r)", "± stderr", "P(|x| < r)",
                        "Gibbs at β_eff", "non-finite runs", "seconds"], table_rows, cls="summary"))
    png = result.path / "sweep.png"
    if png.is_file():
        body.append(_figure_html(_png_file(png), "Stickiness over the sweep grid (log10 colour scale; red: "
                                 "the singularity is sticky, blue: it repels).", alt="sweep heatmap"))
    config = data.get("config") or {}
    created = _dt.datetime.fromtimestamp((result.path / "sweep.json").stat().st_mtime, _dt.UTC).isoformat(
        timespec="seconds") + " (file time; not recorded in sweep.json)"
    body.append(_provenance_html(config=config, versions=data.get("versions"), created=created,
                                 extra={"folder": str(result.path), "kind": "sweep"}))
    return _Section(anchor, f"sgd sweep: {result.path}", "sweep", warnings, "".join(body))


def _figure_section(result: Result, anchor: str) -> _Section:
    body = _figure_html(_png_file(result.path), f"Figure found beside the results: {result.path.name}",
                        alt=result.path.name)
    return _Section(anchor, f"figure: {result.path}", "figure", [], body)


# ----------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;margin:0 auto;
padding:1em 1.5em 4em;color:#1a1a1a;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #0072B2;padding-bottom:.2em;margin-top:2.2em}
h3{margin-top:1.4em}img{max-width:100%;height:auto;display:block;margin:0 auto}
figure{margin:1em 0;padding:.5em;border:1px solid #ddd;border-radius:6px;background:#fff}
figcaption{font-size:.9em;color:#444;margin-top:.4em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#eef4fa}td:first-child{text-align:left;font-weight:600}
table.kv td{text-align:left}
.warn{background:#fff4e0;border-left:5px solid #E69F00;padding:.5em 1em;margin:.6em 0}
.ok{background:#e8f6f0;border-left:5px solid #009E73;padding:.5em 1em}
.note{color:#555;font-size:.9em}.diag{font-size:.9em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.8em;max-height:30em}
details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
details.row{border:1px solid #ddd;border-radius:6px;padding:.3em .8em}
ul.toc li.warned a{color:#D55E00}
"""

_HEAD_SCRIPT = """
window.__surfErrors=[];
window.addEventListener('error',function(e){window.__surfErrors.push(String(e.message||e.type));},true);
window.addEventListener('load',function(){
 var imgs=document.images,ok=0;
 for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}
 document.body.setAttribute('data-images-ok',ok+'/'+imgs.length);
 document.body.setAttribute('data-errors',String(window.__surfErrors.length));
 document.body.setAttribute('data-loaded','1');
});
"""


def _page(sections: list[_Section], inputs: list[str]) -> str:
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    toc = []
    overview = []
    for s in sections:
        cls = ' class="warned"' if s.warnings else ""
        flag = f" — ⚠ {len(s.warnings)} warning(s)" if s.warnings else ""
        toc.append(f'<li{cls}><a href="#{s.anchor}">{html.escape(s.title)}</a>{flag}</li>')
        if s.kind != "figure":
            if s.warnings:
                shown = s.warnings[:OVERVIEW_WARNINGS]
                items = "".join(f"<li>{html.escape(w)}</li>" for w in shown)
                if len(s.warnings) > len(shown):
                    items += f"<li>… and {len(s.warnings) - len(shown)} more in the section below</li>"
                overview.append(f'<div class="warn"><a href="#{s.anchor}">{html.escape(s.title)}</a><ul>{items}</ul></div>')
            else:
                overview.append(f'<p class="ok">✓ <a href="#{s.anchor}">{html.escape(s.title)}</a>: no warnings</p>')
    body = "".join(
        f'<section class="result" id="{s.anchor}" data-kind="{html.escape(s.kind)}">'
        f"<h2>{html.escape(s.title)}</h2>{s.body}</section>"
        for s in sections
    )
    inputs_html = ", ".join(f"<code>{html.escape(p)}</code>" for p in inputs)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>gradient-surfing report</title>"
        f"<style>{_CSS}</style><script>{_HEAD_SCRIPT}</script></head><body>"
        "<h1>gradient-surfing report</h1>"
        f'<p class="note">Generated {now} by <code>surf report</code> from {inputs_html}. '
        "Self-contained: every figure is embedded.</p>"
        '<section id="trust"><h2>Trust first: warnings</h2>'
        f"{''.join(overview)}</section>"
        f'<nav id="contents"><h2>Contents</h2><ul class="toc">{"".join(toc)}</ul></nav>'
        f"{body}</body></html>\n"
    )


def build_report(paths: list[str | Path], *, row_plots: bool = False) -> str:
    """The report over ``paths`` as one HTML string.

    ``row_plots`` adds ArviZ's trace/rank/ESS/energy plots for every sampler
    of a compare folder too (slower: a few seconds per sampler).
    """
    with _warnings.catch_warnings():
        # ArviZ's numerical warnings (e.g. a constant variable) are already reported in the page
        _warnings.simplefilter("ignore", RuntimeWarning)
        return _build_report(paths, row_plots=row_plots)


def _build_report(paths: list[str | Path], *, row_plots: bool) -> str:
    results = find_results(paths)
    sections = []
    for i, result in enumerate(results):
        anchor = f"r{i}"
        if result.kind == "compare":
            sections.append(_compare_section(result, anchor, row_plots=row_plots))
        elif result.kind == "sweep":
            sections.append(_sweep_section(result, anchor))
        elif result.kind == "figure":
            sections.append(_figure_section(result, anchor))
        else:
            sections.append(_dt_section(result, anchor))
    plt.close("all")
    return _page(sections, [str(p) for p in paths])


def write_report(paths: list[str | Path], out: str | Path, *, force: bool = False, row_plots: bool = False) -> Path:
    """Build the report and write it atomically to ``out`` (refused if it exists, unless ``force``)."""
    out = Path(out)
    try:
        check_writable(out, force=force)
    except OSError as err:
        raise ReportError(str(err)) from None
    text = build_report(paths, row_plots=row_plots)
    try:
        return atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"), force=force)
    except OSError as err:
        raise ReportError(str(err)) from None
