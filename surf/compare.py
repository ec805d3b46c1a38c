"""``surf compare``: every sampler's time near the singularity against the exact value.

Metropolis-adjusted samplers (nuts, hmc, mala) get one row each, with their
adapted step size; unadjusted dynamics (ula, sgld, sghmc, sgd) get one row
per ``--step-sizes`` value, at the temperature that matches ``--beta`` (for
``sgd`` the step size is the learning rate ``eta`` and the noise is
``sqrt(2 eta / beta)``), so their step-size bias can be seen shrinking.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from surf.common import (
    UserError,
    add_target_arguments,
    emit_json,
    float_list,
    nonnegative_int,
    positive_float,
    positive_int,
    program_facts,
    target_from_args,
)

__all__ = ["add_parser", "run", "compare"]

DEFAULT_SAMPLERS = "nuts,hmc,mala,ula,sgld,sgd"
DEFAULT_STEP_SIZES = (1e-3, 3e-4, 1e-4)
GRID_BINS = 40


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "compare",
        help="compare samplers' occupancy near the singular point with the exact Gibbs value",
        description="Run several samplers on a 2-D potential on a box and hold each one's "
        "occupancy of the disk |x - x*| < r against exact quadrature, in units of its MCSE.",
    )
    add_target_arguments(p, numpyro=False)
    p.add_argument("--samplers", default=DEFAULT_SAMPLERS, help=f"comma-separated (default {DEFAULT_SAMPLERS})")
    p.add_argument("--radius", type=positive_float, default=0.1)
    p.add_argument("--chains", type=positive_int, default=8)
    p.add_argument("--draws", type=positive_int, default=4000)
    p.add_argument("--warmup", type=nonnegative_int, default=1000)
    p.add_argument(
        "--step-sizes",
        type=float_list,
        default=DEFAULT_STEP_SIZES,
        metavar="H1,H2,...",
        help="step sizes of the unadjusted dynamics (default 0.001,0.0003,0.0001)",
    )
    p.add_argument(
        "--thin-steps",
        type=positive_int,
        default=20,
        help="kernel steps per kept draw for the one-gradient-per-step samplers (mala, ula, "
        "sgld, sgd; default 20, about the gradient cost of one NUTS draw here)",
    )
    p.add_argument(
        "--mass-matrix",
        choices=["identity", "diagonal"],
        default="identity",
        help="NUTS/HMC metric (default identity: a per-chain diagonal metric adapts to one "
        "arm of the cross and then cannot turn into the other)",
    )
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", help="folder for netCDF files, compare.json and figures")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _rows_plan(samplers: list[str], step_sizes: tuple[float, ...]) -> list[tuple[str, float | None]]:
    from samplers.kernels import ADJUSTED, SAMPLERS

    plan = []
    for name in samplers:
        if name not in SAMPLERS:
            raise UserError(f"unknown sampler {name!r} in --samplers; choose from {', '.join(SAMPLERS)}")
        if name in ADJUSTED:
            plan.append((name, None))
        else:
            plan.extend((name, h) for h in step_sizes)
    return plan


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Run every row; returns ``{"exact", "rows", "traces", "reference", ...}``."""
    import jax

    from diagnostics.arviz_io import trace_to_datatree
    from diagnostics.bias import bias_row
    from diagnostics.summary import convergence
    from models.reference import GibbsReference
    from samplers.kernels import SamplerOptions, build_sampler, describe
    from samplers.run import run_chains

    if args.beta is None:
        raise UserError("compare needs --beta NUMBER (the temperature every sampler targets)")
    if any(h <= 0 for h in args.step_sizes):
        raise UserError(f"--step-sizes must all be > 0, got {args.step_sizes}")
    names = [s.strip() for s in args.samplers.split(",") if s.strip()]
    if not names:
        raise UserError("--samplers is empty; give e.g. nuts,mala,ula")
    plan = _rows_plan(names, tuple(args.step_sizes))
    if args.loss is not None and (args.box is None or args.center is None):
        raise UserError("compare with --loss needs --box LO,HI and --center X0,X1 (the exact reference lives on a box)")
    key = jax.random.key(args.seed)
    init_key, run_key = jax.random.split(key)
    target = target_from_args(args, start_key=init_key, num_chains=args.chains)
    if target.dim != 2 or target.box is None or target.singular_point is None:
        raise UserError(
            f"compare needs a 2-D target on a box with a singular point; {target.name} has "
            f"dim {target.dim}, box {target.box}, singular point {target.singular_point}"
        )
    center = tuple(float(c) for c in target.singular_point)
    box = (target.box.low, target.box.high)
    reference = GibbsReference.from_target(target)
    exact = reference.occupancy(center, args.radius)
    edges = np.linspace(box[0], box[1], GRID_BINS + 1)
    exact_cells = reference.cell_masses(edges, edges)
    positions = target.init_fn(init_key, args.chains)

    rows, trees = [], []
    for name, h in plan:
        try:
            options = SamplerOptions(step_size=h, mass_matrix=args.mass_matrix)
            sampler = build_sampler(name, target, options)
        except ValueError as err:
            raise UserError(str(err)) from None
        label = name if h is None else f"{name} h={h:g}"
        thin = 1 if name in ("nuts", "hmc", "sghmc") else args.thin_steps
        trace = run_chains(
            run_key, sampler, positions, record_fn=target.record_fn, num_warmup=args.warmup * thin,
            num_draws=args.draws, thin=thin, progress=False if args.quiet else None,
            description=label, program_key=program_facts(args, target, name, options),
        )
        config = {
            "command": "compare", "target": target.config, "sampler": name,
            "sampler_options": describe(options), "chains": args.chains, "draws": args.draws, "thin": thin,
            "warmup": args.warmup, "seed": args.seed, "radius": args.radius, "center": center,
        }
        dt = trace_to_datatree(trace, config=config, kind="compare")
        diag = convergence(dt)
        row = {"sampler": name, "step_size": float(np.nanmean(trace.params["step_size"])), "thin": thin}
        row.update(bias_row(trace.draws["x"], exact=exact, exact_cells=exact_cells,
                            edges=(edges, edges), center=center, radius=args.radius))
        ess = row["ess_bulk"]
        row.update(
            ess_per_second=None if ess is None else ess / max(trace.sampling_seconds, 1e-9),
            divergences=diag["divergences"],
            acceptance_rate=diag["acceptance_rate"],
            rhat_max=diag["rhat_max"],
            adjusted=sampler.adjusted,
            seconds=trace.warmup_seconds + trace.sampling_seconds,
        )
        if name == "sgd":
            row["noise"] = float(np.mean(trace.params["noise"]))
        rows.append(row)
        trees.append((row, dt, trace))
    return {
        "exact": exact,
        "radius": args.radius,
        "center": center,
        "beta": target.beta,
        "model": target.name,
        "target": target.config,
        "rows": rows,
        "trees": trees,
        "reference": reference,
        "edges": edges,
        "loss_fn": target.loss_fn,
    }


def _row_filename(row: dict[str, Any]) -> str:
    if row["adjusted"]:
        return f"{row['sampler']}.nc"
    return f"{row['sampler']}_h{row['step_size']:g}.nc"


def run(args: argparse.Namespace) -> int:
    from diagnostics.arviz_io import atomic_write, check_writable, save_datatree

    out = Path(args.out) if args.out else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise UserError(f"{out} exists and is not a folder; --out names a folder")
        try:
            check_writable(out / "compare.json", force=args.force)
        except OSError as err:
            raise UserError(str(err)) from None
    start = time.perf_counter()
    result = compare(args)
    payload = {
        "model": result["model"], "beta": result["beta"], "radius": result["radius"],
        "center": result["center"], "exact": result["exact"], "target": result["target"],
        "seed": args.seed, "chains": args.chains, "draws": args.draws, "warmup": args.warmup,
        "mass_matrix": args.mass_matrix, "thin_steps": args.thin_steps, "rows": result["rows"],
        "seconds": time.perf_counter() - start,
    }
    if out is not None:
        from diagnostics.plots import plot_compare

        out.mkdir(parents=True, exist_ok=True)
        for row, dt, _ in result["trees"]:
            save_datatree(dt, out / _row_filename(row), force=args.force)
        plot_compare(result, out, force=args.force)
        atomic_write(out / "compare.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=1)), force=args.force)
        payload["out"] = str(out)
    if args.json:
        emit_json(payload)
    else:
        print_rows(payload)
        if out is not None:
            print(f"wrote {out}/ (compare.json, one netCDF per row, figures)")
    return 0


def print_rows(payload: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{payload['model']} at beta = {payload['beta']:g}: occupancy of |x - x*| < "
        f"{payload['radius']:g}, exact {payload['exact']:.4g}"
    )
    for col in ("sampler", "step", "occupancy", "± mcse", "z", "ratio", "TV", "ESS", "ESS/s", "div", "acc", "R-hat"):
        table.add_column(col, justify="right")
    for r in payload["rows"]:
        table.add_row(
            r["sampler"], f"{r['step_size']:.3g}", f"{r['occupancy']:.4f}", _f(r["mcse"], ".4f"),
            _f(r["z"], "+.2f"), _f(r["ratio"], ".3f"), f"{r['tv']:.3f}", _f(r["ess_bulk"], ".0f"),
            _f(r["ess_per_second"], ".0f"), str(r["divergences"]), _f(r["acceptance_rate"], ".2f"),
            _f(r["rhat_max"], ".3f"),
        )
    Console(width=140).print(table)


def _f(value, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)
