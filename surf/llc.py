"""``surf llc``: the local learning coefficient of a toy potential or a grok checkpoint.

    lambda_hat = nbeta (E_w[L_n(w)] - L_n(w*)),
    log p(w) = -nbeta L_n(w) - (gamma / 2) ||w - w*||^2,   nbeta = n / log n by default.

Conventions (step size, nbeta, toys' ``L_n = U``) are in :mod:`diagnostics.llc`.
"""

from __future__ import annotations

import argparse
from typing import Any

from surf.common import (
    UserError,
    emit_json,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)

__all__ = ["add_parser", "run", "llc_job"]


def add_parser(sub) -> argparse.ArgumentParser:
    from models.toy import TOY_MODELS

    p = sub.add_parser(
        "llc",
        help="local learning coefficient (LLC) of a toy potential or a grok checkpoint",
        description="Estimate lambda_hat = nbeta (E[L_n(w)] - L_n(w*)) over the posterior localized "
        "at w*: log p(w) = -nbeta L_n(w) - gamma/2 ||w - w*||^2, nbeta = n / log n (WBIC) by default. "
        "For a toy potential L_n = U, w* = 0 and n is --num-data (default 1e6). Step size h is "
        "BlackJAX's (w += h grad log p + sqrt(2h) N(0,1)); devinterp's lr is 2h.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", choices=sorted(TOY_MODELS), help="a built-in toy potential (w* = 0)")
    source.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT", help="a surf grok checkpoint (w* = its weights)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="toy model parameter, repeatable")
    p.add_argument("--sampler", choices=["sgld", "sghmc", "hmc"], default="sgld")
    p.add_argument("--nbeta", type=positive_float, help="n beta (default n / log n)")
    p.add_argument("--num-data", type=positive_int, help="n (default: the checkpoint's training set; toys 1e6)")
    p.add_argument("--localization", type=nonnegative_float, help="gamma (default 100 for a checkpoint, 0 for a toy)")
    p.add_argument("--step-size", type=positive_float, help="SGLD h (BlackJAX convention; default calibrated per target); HMC: fixed step instead of adapting")
    p.add_argument("--batch-size", type=positive_int, help="SGLD/SGHMC minibatch size for a checkpoint (default full batch)")
    p.add_argument("--chains", type=positive_int, default=8)
    p.add_argument("--draws", type=positive_int, help="draws per chain (default calibrated per target)")
    p.add_argument("--warmup", type=nonnegative_int, help="burn-in steps (default calibrated per target)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", metavar="FILE.png", help="write a loss-trace plot")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def llc_job(args: argparse.Namespace):
    """Build the problem the flags describe and estimate; returns ``(LLCResult, problem, result dict)``."""
    from diagnostics import llc as L

    if args.model is None and args.from_checkpoint is None:
        raise UserError("say what to measure: --model NAME or --from CHECKPOINT")
    if args.model is None and args.param:
        raise UserError("--param only applies to --model")
    try:
        if args.model is not None:
            if args.batch_size is not None:
                raise UserError("--batch-size needs --from CHECKPOINT; toy potentials have no data")
            problem = L.toy_llc_problem(args.model, args.param, num_data=args.num_data)
            c, draws, warmup = L.TOY_DEFAULTS[args.model]
            localization = L.TOY_LOCALIZATION if args.localization is None else args.localization
            nbeta = args.nbeta or L.default_nbeta(problem.num_data)
            step = args.step_size if args.step_size is not None else (c / nbeta if args.sampler == "sgld" else None)
        else:
            from models.checkpoint_target import checkpoint_llc_problem
            from samplers.checkpoint import CheckpointError

            try:
                problem = checkpoint_llc_problem(args.from_checkpoint, num_data=args.num_data)
            except CheckpointError as err:
                raise UserError(str(err)) from None
            draws, warmup = L.NETWORK_DRAWS, L.NETWORK_WARMUP
            localization = L.NETWORK_LOCALIZATION if args.localization is None else args.localization
            nbeta = args.nbeta or L.default_nbeta(problem.num_data)
            step = args.step_size if args.step_size is not None else (
                L.NETWORK_STEP_SIZE if args.sampler in ("sgld", "sghmc") else None)
        if args.sampler == "sghmc" and step is None:
            step = L.NETWORK_STEP_SIZE
        res = L.estimate_llc(
            problem, nbeta=nbeta, localization=localization, sampler=args.sampler, step_size=step,
            batch_size=args.batch_size, chains=args.chains, draws=args.draws or draws,
            warmup=warmup if args.warmup is None else args.warmup, seed=args.seed,
            progress=False if args.quiet else None,
        )
    except ValueError as err:
        raise UserError(str(err)) from None
    out: dict[str, Any] = {
        "target": problem.name, "num_data": problem.num_data, "chains": args.chains,
        "draws": args.draws or draws, "warmup": warmup if args.warmup is None else args.warmup,
        **res.as_dict(),
    }
    warnings = []
    stopped = [i for i, v in enumerate(res.llc["per_chain"]) if v is None]
    if stopped:
        warnings.append(f"chains {stopped} hit a non-finite value (step size too large?) and were left out")
    if res.llc["mean"] is not None and res.llc["mean"] < 0:
        warnings.append("negative LLC: the chains found lower loss than at w*, which is not a local minimum "
                        "(or the step size is too large); increase --localization or lower --step-size")
    out["warnings"] = warnings
    return res, problem, out


def plot_trace(res, problem, path: str, *, force: bool) -> None:
    """``nbeta (L_n(w) - L_n(w*))`` per draw and chain, with each chain's running mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from diagnostics.arviz_io import atomic_write

    excess = res.nbeta * (np.asarray(res.losses) - res.loss_at_center)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    x = np.arange(1, excess.shape[1] + 1)
    for c in range(excess.shape[0]):
        line, = ax.plot(x, excess[c], lw=0.4, alpha=0.35)
        ax.plot(x, np.nancumsum(excess[c]) / x, color=line.get_color(), lw=1.5)
    ax.axhline(res.llc["mean"], color="k", ls="--", lw=1, label=f"LLC {res.llc['mean']:.3g} ± {res.llc['std']:.2g}")
    ax.set_xlabel("draw")
    ax.set_ylabel("nβ (L_n(w) − L_n(w*))")
    ax.set_title(f"{res.sampler} on {problem.name}, nβ = {res.nbeta:.4g}, γ = {res.localization:g}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), force=force)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from diagnostics.arviz_io import check_writable

    if args.out:
        try:
            check_writable(args.out, force=args.force)
        except OSError as err:
            raise UserError(str(err)) from None
    res, problem, out = llc_job(args)
    if args.out:
        plot_trace(res, problem, args.out, force=args.force)
    out["out"] = args.out
    if args.json:
        emit_json(out)
    else:
        llc = res.llc
        print(f"LLC of {problem.name}: {llc['mean']:.4g} ± {llc['std']:.2g} (std over {args.chains} chains)")
        print("per chain: " + ", ".join("nan" if v is None else f"{v:.3g}" for v in llc["per_chain"]))
        step = "adapted" if out["step_size"] is None else f"{out['step_size']:.3g}"
        print(f"{res.sampler}, nbeta {res.nbeta:.4g}, gamma {res.localization:g}, step {step}; "
              f"{out['seconds']:.1f} s, {out['grad_evals_per_second']:.3g} gradient evaluations/s")
        for w in out["warnings"]:
            print(f"warning: {w}")
        if args.out:
            print(f"wrote {args.out}")
    return 0
