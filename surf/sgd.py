"""``surf sgd``: the seed's noisy-SGD experiment on the cross potential.

One run, the post's three panels (``--panels seed``), or a sweep over
regularization, noise and momentum (``--sweep``). The dynamics is the ``sgd``
kernel driven by the shared run loop; the statistics come from
:mod:`diagnostics.singularity`, the Gibbs comparison from
:mod:`models.reference`.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from surf.common import (
    UserError,
    emit_json,
    float_list,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    probability,
)

__all__ = ["add_parser", "run", "sgd_experiment", "SEED_PANELS", "RADII"]

# The post's three panels (SCIENCE.md section 2): beta = 0, eta = 1e-3, T = 100.
SEED_PANELS = (
    {"label": "vanilla", "lam": 0.0, "noise": 0.01, "runs": 10_000},
    {"label": "regularized", "lam": 5.0, "noise": 0.01, "runs": 10_000},
    {"label": "more noise", "lam": 0.0, "noise": 0.1, "runs": 20_000},
)
RADII = (0.05, 0.1, 0.2)
SWEEP_KEYS = ("lam", "noise", "momentum")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sgd",
        help="the seed's noisy SGD on the cross potential: stickiness of the singularity",
        description="Noisy momentum SGD from uniform starts on [-1,1]^2: "
        "v <- b v - (1-b) grad U(x); x <- x + eta v + N(0, eps^2).",
    )
    p.add_argument("--lam", type=nonnegative_float, default=0.0, help="regularization (default 0)")
    p.add_argument("--noise", type=nonnegative_float, default=0.01, help="eps (default 0.01)")
    p.add_argument("--momentum", type=probability, default=0.0, help="beta (default 0)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="eta (default 1e-3)")
    p.add_argument("--steps", type=positive_int, default=100, help="T (default 100)")
    p.add_argument("--runs", type=positive_int, default=10_000)
    p.add_argument("--a", type=positive_float, default=100.0, help="valley steepness (default 100)")
    p.add_argument("--radius", type=positive_float, default=0.1, help="stickiness radius")
    p.add_argument("--trajectories", type=nonnegative_int, default=0, help="keep K full paths")
    p.add_argument("--batch-size", type=positive_int, default=131_072, help="runs per batch (default 131072)")
    p.add_argument("--panels", choices=["seed"], help="the post's three panels as one figure")
    p.add_argument(
        "--sweep",
        nargs="+",
        metavar="KEY=V1,V2",
        help="grid over lam, noise and momentum, e.g. lam=0,1,5 noise=0.01,0.1",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", help="FILE.nc for one run, FIGURE.png for --panels, DIR for --sweep")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def sgd_experiment(
    *,
    lam: float,
    noise: float,
    momentum: float = 0.0,
    lr: float = 1e-3,
    steps: int = 100,
    runs: int = 10_000,
    a: float = 100.0,
    seed: int = 0,
    radius: float = 0.1,
    trajectories: int = 0,
    batch_size: int = 131_072,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Run the seed's experiment once; final positions and their statistics.

    Returns a dict with ``final`` (``(runs, 2)`` array), ``paths`` (``(K, T,
    2)`` or ``None``) and the JSON-ready ``summary``.
    """
    import jax

    from diagnostics.singularity import occupancy, stickiness
    from samplers.run import run_chains, run_final_positions

    start = time.perf_counter()
    target, sampler = _seed_dynamics(a, lam, lr, noise, momentum)
    init_key, run_key = jax.random.split(jax.random.key(seed))
    positions = target.init_fn(init_key, runs)
    record = _record_position
    final = run_final_positions(
        run_key,
        sampler,
        positions,
        num_steps=steps,
        record_fn=record,
        batch_size=batch_size,
        progress=progress,
        description=f"sgd lam={lam:g} eps={noise:g}",
    )["x"]
    paths = None
    if trajectories:
        k = min(trajectories, runs)
        trace = run_chains(
            run_key, sampler, positions[:k], record_fn=record, num_warmup=0,
            num_draws=steps, progress=False,
        )
        paths = trace.draws["x"]
    seconds = time.perf_counter() - start
    finite = np.all(np.isfinite(final), axis=1)
    occ = {f"{r:g}": occupancy(final, (0.0, 0.0), r).as_dict() for r in RADII}
    stick = stickiness(final, radius=radius)
    summary = {
        "lam": lam,
        "noise": noise,
        "momentum": momentum,
        "lr": lr,
        "steps": steps,
        "a": a,
        "runs": runs,
        "seed": seed,
        "nonfinite_runs": int((~finite).sum()),
        "seconds": seconds,
        "particle_steps_per_second": runs * steps / seconds,
        "occupancy": occ,
        "stickiness": stick.as_dict(),
        "gibbs": gibbs_occupancy(lam=lam, a=a, noise=noise, lr=lr),
    }
    return {"final": final, "paths": paths, "summary": summary}


@functools.lru_cache(maxsize=32)
def _seed_dynamics(a: float, lam: float, lr: float, noise: float, momentum: float):
    """The cross target and the sgd sampler for one setting, built once per process.

    The run loop caches its compiled code by sampler, so reusing the same
    sampler object means repeated experiments (panels, sweeps, tests) in one
    process do not trace and compile again.
    """
    from models.toy import toy_target
    from samplers.kernels import SamplerOptions, build_sampler

    # beta = 1: the kernel then descends exactly U (its potential is -log p / beta).
    target = toy_target("cross", {"a": a, "lam": lam, "box": "none"}, beta=1.0)
    options = SamplerOptions(step_size=lr, noise=noise, momentum=momentum)
    return target, build_sampler("sgd", target, options)


def _record_position(z):
    return {"x": z}


def gibbs_occupancy(*, lam: float, a: float, noise: float, lr: float) -> dict[str, Any]:
    """Occupancy of the Gibbs measure at ``beta_eff = 2 eta / eps^2`` on the box [-1, 1]^2.

    The SGD runs are not confined to a box, but they start uniform on it and
    the Gibbs measure of the cross with ``lam = 0`` is only normalizable on a
    bounded domain, so the comparison uses the starting box.

    The quadrature is done once per setting: repeated experiments in one
    process (panels, sweeps) and, with a compilation cache, later processes
    (:func:`samplers.programs.remembered`) read it back.
    """
    return json.loads(_gibbs_occupancy_json(float(lam), float(a), float(noise), float(lr)))


@functools.lru_cache(maxsize=128)
def _gibbs_occupancy_json(lam: float, a: float, noise: float, lr: float) -> str:
    from samplers.programs import remembered

    def compute() -> dict[str, Any]:
        from models.reference import GibbsReference
        from models.toy import cross_potential

        if noise == 0:
            return {"beta_eff": None, "box": [-1.0, 1.0], "occupancy": None}
        beta_eff = 2.0 * lr / noise**2
        reference = GibbsReference(
            lambda x: cross_potential(x, a=a, lam=lam), beta=beta_eff, box=(-1.0, 1.0)
        )
        occ = {f"{r:g}": float(reference.occupancy((0.0, 0.0), r)) for r in RADII}
        return {"beta_eff": beta_eff, "box": [-1.0, 1.0], "occupancy": occ}

    facts = {"lam": lam, "a": a, "noise": noise, "lr": lr, "radii": list(RADII)}
    return json.dumps(remembered("sgd gibbs occupancy", facts, compute))


def _config(args: argparse.Namespace, **extra) -> dict[str, Any]:
    keys = ("lam", "noise", "momentum", "lr", "steps", "runs", "a", "radius", "seed", "trajectories")
    return {"command": "sgd", **{k: getattr(args, k) for k in keys}, **extra}


def _save_run(result: dict[str, Any], path: str, config: dict[str, Any], force: bool) -> None:
    import arviz_base as az
    import xarray as xr

    from diagnostics.arviz_io import provenance_attrs, save_datatree

    final = result["final"]
    dt = az.from_dict({"posterior": {"x": final[None]}}, dims={"x": ["coord"]})
    if result["paths"] is not None:
        paths = xr.Dataset(
            {"x": (("run", "step", "coord"), result["paths"])},
            coords={"step": np.arange(1, result["paths"].shape[1] + 1)},
        )
        dt["trajectories"] = xr.DataTree(paths)
    dt.attrs.update(provenance_attrs(config, kind="sgd"))
    dt.attrs["surf_summary"] = json.dumps(result["summary"])
    save_datatree(dt, path, force=force)


def _parse_sweep(items: list[str]) -> dict[str, tuple[float, ...]]:
    grid: dict[str, tuple[float, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or key not in SWEEP_KEYS:
            raise UserError(
                f"malformed --sweep item {item!r}; write KEY=V1,V2 with KEY in {', '.join(SWEEP_KEYS)}"
            )
        try:
            parsed = float_list(values)
        except argparse.ArgumentTypeError as err:
            raise UserError(f"--sweep {key}: {err}") from None
        low_ok = all(v >= 0 for v in parsed) and (key != "momentum" or all(v < 1 for v in parsed))
        if not low_ok:
            raise UserError(f"--sweep {key} values must be >= 0 (momentum < 1), got {values}")
        grid[key] = parsed
    return grid


def _check_out(path: Path, force: bool, *, folder: bool = False) -> None:
    from diagnostics.arviz_io import check_writable

    try:
        if folder:
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(f"{path} exists and is not a folder; choose another --out")
            for name in ("sweep.json", "sweep.png"):
                check_writable(path / name, force=force)
        else:
            check_writable(path, force=force)
    except OSError as err:
        raise UserError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    if args.panels and args.sweep:
        raise UserError("choose one of --panels and --sweep")
    if args.panels:
        return _run_panels(args)
    if args.sweep:
        return _run_sweep(args)
    if args.out:
        if not args.out.endswith(".nc"):
            raise UserError(f"--out for one run is a netCDF file ending in .nc, got {args.out}")
        _check_out(Path(args.out), args.force)
    result = sgd_experiment(
        lam=args.lam, noise=args.noise, momentum=args.momentum, lr=args.lr, steps=args.steps,
        runs=args.runs, a=args.a, seed=args.seed, radius=args.radius,
        trajectories=args.trajectories, batch_size=args.batch_size,
        progress=False if args.quiet else None,
    )
    summary = dict(result["summary"], out=args.out)
    if args.out:
        _save_run(result, args.out, _config(args), args.force)
    if args.json:
        emit_json(summary)
    else:
        _print_rows([summary])
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _run_panels(args: argparse.Namespace) -> int:
    from diagnostics.plots import plot_sgd_panels

    out = Path(args.out or "sgd_panels.png")
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UserError(f"--panels writes a figure: give --out FIGURE.png, got {out}")
    _check_out(out, args.force)
    results = []
    for panel in SEED_PANELS:
        res = sgd_experiment(
            lam=panel["lam"], noise=panel["noise"], momentum=0.0, lr=1e-3, steps=100,
            runs=panel["runs"], a=100.0, seed=args.seed, radius=args.radius,
            batch_size=args.batch_size, progress=False if args.quiet else None,
        )
        res["label"] = panel["label"]
        results.append(res)
    plot_sgd_panels(results, out, force=args.force)
    rows = [dict(r["summary"], label=r["label"]) for r in results]
    if args.json:
        emit_json({"out": str(out), "panels": rows, "claims": seed_claims(rows)})
    else:
        _print_rows(rows)
        for claim in seed_claims(rows):
            print(f"{'holds' if claim['holds'] else 'FAILS'}: {claim['claim']}")
        print(f"wrote {out}")
    return 0


def seed_claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The post's three claims, checked on the three panels' stickiness."""
    s = [r["stickiness"]["value"] for r in rows]
    return [
        {"claim": "vanilla (lam 0, eps 0.01): S(0.1) < 1, the singularity repels", "holds": bool(s[0] < 1)},
        {"claim": "regularized (lam 5, eps 0.01): S(0.1) > 1, the singularity is favoured", "holds": bool(s[1] > 1)},
        {"claim": "more noise (lam 0, eps 0.1): S(0.1) above vanilla's", "holds": bool(s[2] > s[0])},
    ]


def _run_sweep(args: argparse.Namespace) -> int:
    from diagnostics.plots import plot_sweep_heatmap

    grid = _parse_sweep(args.sweep)
    values = {k: grid.get(k, (getattr(args, k),)) for k in SWEEP_KEYS}
    out = Path(args.out) if args.out else None
    if out is not None:
        _check_out(out, args.force, folder=True)
    rows = []
    for lam, noise, momentum in itertools.product(*(values[k] for k in SWEEP_KEYS)):
        res = sgd_experiment(
            lam=lam, noise=noise, momentum=momentum, lr=args.lr, steps=args.steps,
            runs=args.runs, a=args.a, seed=args.seed, radius=args.radius,
            batch_size=args.batch_size, progress=False if args.quiet else None,
        )
        rows.append(res["summary"])
    if out is not None:
        from diagnostics.arviz_io import atomic_write

        out.mkdir(parents=True, exist_ok=True)
        payload = {"config": _config(args, sweep=values), "rows": rows}
        atomic_write(
            out / "sweep.json",
            lambda tmp: tmp.write_text(json.dumps(payload, indent=1)),
            force=args.force,
        )
        plot_sweep_heatmap(rows, out / "sweep.png", force=args.force)
    if args.json:
        emit_json({"out": str(out) if out else None, "rows": rows})
    else:
        _print_rows(rows)
        if out is not None:
            print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0


def _print_rows(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="noisy SGD on the cross potential: time near the singularity")
    for col in ("lam", "eps", "momentum", "runs", "S(r)", "± stderr", "P(|x|<0.1)", "Gibbs", "s"):
        table.add_column(col, justify="right")
    for r in rows:
        st = r["stickiness"]
        gibbs = (r["gibbs"]["occupancy"] or {}).get("0.1")
        table.add_row(
            f"{r['lam']:g}", f"{r['noise']:g}", f"{r['momentum']:g}", str(r["runs"]),
            _f(st["value"]), _f(st["stderr"]), _f(r["occupancy"]["0.1"]["fraction"]),
            _f(gibbs), f"{r['seconds']:.1f}",
        )
    Console(width=120).print(table)


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
