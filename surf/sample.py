"""``surf sample``: one target, one sampler, many chains, one netCDF file."""

from __future__ import annotations

import argparse
import time
from typing import Any

from surf.common import (
    Interrupted,
    UserError,
    add_target_arguments,
    emit_json,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    prepare_checkpoint,
    probability,
    program_facts,
    remove_checkpoint,
    target_from_args,
)

__all__ = ["add_parser", "run", "sample"]


def add_parser(sub) -> argparse.ArgumentParser:
    from samplers.kernels import SAMPLERS

    p = sub.add_parser(
        "sample",
        help="sample a potential or model with one sampler over many chains",
        description="Sample a tempered loss (a toy potential, your own loss, or a NumPyro "
        "model) and write an ArviZ netCDF file.",
    )
    add_target_arguments(p)
    p.add_argument("--sampler", choices=SAMPLERS, default="nuts")
    p.add_argument("--chains", type=positive_int, default=4)
    p.add_argument("--draws", type=positive_int, default=1000)
    p.add_argument("--warmup", type=nonnegative_int, default=500)
    p.add_argument("--thin", type=positive_int, default=1)
    p.add_argument("--step-size", type=positive_float, help="fixed step size (default: adapt)")
    p.add_argument("--num-integration-steps", type=positive_int, default=10, help="HMC/SGHMC")
    p.add_argument("--noise", type=nonnegative_float, help="sgd noise eps (default: matches beta)")
    p.add_argument("--momentum", type=probability, default=0.0, help="sgd momentum")
    p.add_argument(
        "--mass-matrix",
        choices=["diagonal", "identity"],
        default="diagonal",
        help="NUTS/HMC metric: per-chain diagonal window adaptation (default) or identity "
        "(better on singular 2-D toys, whose valleys run in different directions)",
    )
    p.add_argument("--radius", type=positive_float, default=0.1, help="occupancy radius")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", metavar="FILE.nc", help="write the draws here (netCDF)")
    p.add_argument("--force", action="store_true", help="overwrite --out (and drop a partial run)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its checkpoint (OUT.partial.npz), same flags",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def sample(args: argparse.Namespace, *, checkpoint=None) -> tuple[Any, dict[str, Any]]:
    """Run the job the flags describe; returns ``(datatree, result dict)``."""
    import jax

    from diagnostics.arviz_io import trace_to_datatree
    from diagnostics.singularity import occupancy
    from diagnostics.summary import convergence, warnings_for
    from samplers.kernels import SamplerOptions, build_sampler, describe
    from samplers.run import run_chains

    wall = time.perf_counter()
    key = jax.random.key(args.seed)
    init_key, run_key = jax.random.split(key)
    target = target_from_args(args, start_key=init_key, num_chains=args.chains)
    try:
        options = SamplerOptions(
            step_size=args.step_size,
            num_integration_steps=args.num_integration_steps,
            noise=args.noise,
            momentum=args.momentum,
            mass_matrix=args.mass_matrix,
        )
        sampler = build_sampler(args.sampler, target, options)
    except ValueError as err:
        raise UserError(str(err)) from None
    positions = target.init_fn(init_key, args.chains)
    config = {
        "command": "sample",
        "target": target.config,
        "sampler": args.sampler,
        "sampler_options": describe(options),
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "thin": args.thin,
        "seed": args.seed,
        "radius": args.radius,
        "singular_point": target.singular_point,
    }
    trace = run_chains(
        run_key,
        sampler,
        positions,
        record_fn=target.record_fn,
        num_warmup=args.warmup,
        num_draws=args.draws,
        thin=args.thin,
        progress=None if not args.quiet else False,
        description=f"{args.sampler} on {target.name}",
        checkpoint=checkpoint,
        resume=bool(getattr(args, "resume", False)),
        checkpoint_meta={"config": config},
        # A built-in model's configuration pins the traced programs; a user's file may change.
        program_key=program_facts(args, target, args.sampler, options),
    )
    dt = trace_to_datatree(trace, config=config, kind="sample")
    diag = convergence(dt)
    result: dict[str, Any] = {
        "out": args.out,
        "model": target.name,
        "sampler": args.sampler,
        "beta": target.beta,
        "chains": args.chains,
        "draws": args.draws,
        "warmup": args.warmup,
        "seconds": None,
        "warmup_seconds": trace.warmup_seconds,
        "sampling_seconds": trace.sampling_seconds,
        **diag,
    }
    if target.singular_point is not None and "x" in trace.draws:
        occ = occupancy(trace.draws["x"], target.singular_point, args.radius)
        result["occupancy"] = occ.as_dict()
        exact = exact_occupancy(target, args.radius, builtin=args.model is not None)
        if exact is not None:
            result["occupancy"]["exact"] = exact
    result["warnings"] = warnings_for(diag, num_chains=args.chains)
    result["seconds"] = time.perf_counter() - wall
    return dt, result


def exact_occupancy(target, radius: float, *, builtin: bool = False) -> float | None:
    """The Gibbs occupancy by quadrature, for a 2-D target on a box (else ``None``)."""
    if target.dim != 2 or target.box is None or target.loss_fn is None or target.singular_point is None:
        return None
    from samplers.programs import remembered

    def compute() -> float:
        from models.reference import GibbsReference

        return float(GibbsReference.from_target(target).occupancy(target.singular_point, radius))

    # a built-in model's configuration pins its loss: a repeated run reads the number back
    facts = {"target": target.config, "center": list(target.singular_point), "radius": radius} if builtin else None
    return remembered("exact occupancy", facts, compute)


def run(args: argparse.Namespace) -> int:
    from diagnostics.arviz_io import check_writable, save_datatree
    from samplers.checkpoint import CheckpointError

    if args.out:
        try:
            check_writable(args.out, force=args.force)
        except OSError as err:
            raise UserError(str(err)) from None
    checkpoint = prepare_checkpoint(args.out, resume=args.resume, force=args.force)
    try:
        dt, result = sample(args, checkpoint=checkpoint)
    except KeyboardInterrupt:
        if checkpoint is None:
            raise Interrupted("interrupted; nothing was written (with --out a run can be resumed)") from None
        raise Interrupted(
            f"interrupted; progress is kept in {checkpoint}.npz: run the same command with --resume"
        ) from None
    except CheckpointError as err:
        raise UserError(str(err)) from None
    if args.out:
        save_datatree(dt, args.out, force=args.force)
        remove_checkpoint(checkpoint)
    if args.json:
        emit_json(result)
    else:
        print_summary(dt, result)
    return 0


def print_summary(dt, result: dict[str, Any]) -> None:
    """The human-readable end of a run: ArviZ's summary, diagnostics, occupancy."""
    from rich.console import Console
    from rich.table import Table

    from diagnostics.summary import summary_table

    console = Console(width=max(Console().width, 120))
    frame = summary_table(dt)
    table = Table(title=f"{result['sampler']} on {result['model']} (beta = {result['beta']:.4g})")
    table.add_column("")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for name, row in frame.iterrows():
        table.add_row(str(name), *[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    console.print(
        f"chains {result['chains']}, draws {result['draws']}, warmup {result['warmup']}; "
        f"{result['seconds']:.2f} s (sampling {result['sampling_seconds']:.2f} s); "
        f"min ESS {_fmt(result['ess_bulk_min'])}, max R-hat {_fmt(result['rhat_max'])}, "
        f"divergences {result['divergences']}"
    )
    occ = result.get("occupancy")
    if occ:
        line = f"occupancy within r={occ['radius']}: {occ['fraction']:.4f} ± {_fmt(occ['mcse'])}"
        if occ.get("exact") is not None:
            line += f" (exact Gibbs value {occ['exact']:.4f})"
        console.print(line)
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if result["out"]:
        console.print(f"wrote {result['out']}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"
