"""``surf explore``: sample a grok checkpoint's training loss (SCIENCE.md section 5, "HMC on the weights").

The target is :func:`models.checkpoint_target.checkpoint_target`: the MEAN
training cross-entropy times ``beta`` (equipartition ``d / (2 L0)`` from the
checkpoint's own loss, WBIC ``n / log n``, or a number) times
``--beta-scale``, with an optional Gaussian prior matching a weight decay
(``--prior-wd``) and an optional pull toward the checkpoint (``--localization``).
Chains start at the checkpoint's weights. Reported: does test accuracy move,
and the diagnostics (acceptance, divergences, ESS, R-hat) that tell a null
result from a sampler that is not working.

SGLD / SGHMC with ``--batch-size`` use minibatch gradients
(:func:`diagnostics.llc.sg_sampler`, our own module: ``samplers.kernels``
only has full-batch SG gradients).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from surf.common import (
    UserError,
    beta_spec,
    emit_json,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)

__all__ = ["add_parser", "run", "explore"]

EXPLORE_SAMPLERS = ("hmc", "nuts", "mala", "sgld", "sghmc", "sgd")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "explore",
        help="sample the training loss of a grok checkpoint (HMC etc. on the weights)",
        description="Sample exp(-beta * mean train loss [+ prior] [- localization]) from a surf grok "
        "checkpoint; beta multiplies the MEAN cross-entropy over the n training examples.",
    )
    p.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT")
    p.add_argument("--study", choices=["curve"], help="sample from checkpoints along a grokking curve (small size)")
    p.add_argument("--scales", default="0.5,1,4", help="--study curve: beta scales around equipartition (default 0.5,1,4)")
    p.add_argument("--sampler", choices=EXPLORE_SAMPLERS, default="hmc")
    p.add_argument("--beta", type=beta_spec, default="equipartition",
                   help="equipartition (d / (2 L0), default), wbic (n / log n) or a number; multiplies the mean loss")
    p.add_argument("--beta-scale", type=positive_float, default=1.0, help="multiplies beta (default 1)")
    p.add_argument("--prior-wd", type=nonnegative_float, help="Gaussian prior matching weight decay WD: (WD/2)||w||^2 on the mean loss")
    p.add_argument("--localization", type=nonnegative_float, default=0.0, help="gamma, pull toward the checkpoint")
    p.add_argument("--chains", type=positive_int, default=4)
    p.add_argument("--draws", type=positive_int, default=200)
    p.add_argument("--warmup", type=nonnegative_int, default=100)
    p.add_argument("--thin", type=positive_int, default=1)
    p.add_argument("--step-size", type=positive_float, help="fixed step size (default: adapt for hmc/nuts/mala)")
    p.add_argument("--num-integration-steps", type=positive_int, default=10, help="HMC/SGHMC leapfrog steps")
    p.add_argument("--batch-size", type=positive_int, help="minibatch for sgld/sghmc (default full batch)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--out", metavar="FILE.nc", help="write the draws (observables only) as netCDF")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


def _sampler(args, target, ck):
    from samplers.kernels import SamplerOptions, build_sampler, describe

    if args.batch_size is not None and args.sampler not in ("sgld", "sghmc"):
        raise UserError(f"--batch-size applies to sgld and sghmc, not {args.sampler}")
    if args.sampler in ("sgld", "sghmc"):
        import jax.numpy as jnp

        from diagnostics.llc import NETWORK_STEP_SIZE, LLCProblem, sg_sampler
        from models.modular import _cross_entropy

        cfg = target.config
        wd = float(cfg["prior_wd"] or 0.0)
        problem = ck.problem
        apply_fn, unravel = problem.apply_fn, problem.unravel

        def loss(w):  # the mean loss plus the prior as an L2 term: beta * this = -log p (up to gamma)
            return problem.loss_fn(w) + 0.5 * wd * jnp.sum(w**2)

        def batch_loss(w, batch):
            x, y = batch
            return _cross_entropy(apply_fn(unravel(w), x), y) + 0.5 * wd * jnp.sum(w**2)

        lp = LLCProblem(name=target.name, dim=target.dim, loss_fn=loss, center=ck.position,
                        num_data=target.num_data, batch_loss_fn=batch_loss,
                        data=(problem.task.x_train, problem.task.y_train))
        h = args.step_size or NETWORK_STEP_SIZE / 10
        sampler = sg_sampler(args.sampler, lp, target.beta, float(cfg["localization"]), step_size=h,
                             batch_size=args.batch_size, num_integration_steps=args.num_integration_steps)
        return sampler, {"step_size": h, "batch_size": args.batch_size,
                         "num_integration_steps": args.num_integration_steps, "gradients": "minibatch" if args.batch_size else "full"}
    options = SamplerOptions(step_size=args.step_size, num_integration_steps=args.num_integration_steps)
    return build_sampler(args.sampler, target, options), describe(options)


def explore(args: argparse.Namespace):
    """Run the job; returns ``(datatree, result dict)``."""
    import jax

    from diagnostics.arviz_io import trace_to_datatree
    from models.checkpoint_target import checkpoint_target, load_grok_position
    from samplers.checkpoint import CheckpointError
    from samplers.run import run_chains

    wall = time.perf_counter()
    try:
        ck = load_grok_position(args.from_checkpoint)
        target = checkpoint_target(ck, beta=args.beta, beta_scale=args.beta_scale, prior_wd=args.prior_wd,
                                   localization=args.localization)
        sampler, options = _sampler(args, target, ck)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    except ValueError as err:
        raise UserError(str(err)) from None
    init_key, run_key = jax.random.split(jax.random.key(args.seed))
    start = target.record_fn(ck.position)
    config = {"command": "explore", "target": target.config, "sampler": args.sampler, "sampler_options": options,
              "chains": args.chains, "draws": args.draws, "warmup": args.warmup, "thin": args.thin, "seed": args.seed}
    trace = run_chains(
        run_key, sampler, target.init_fn(init_key, args.chains), record_fn=target.record_fn,
        num_warmup=args.warmup, num_draws=args.draws, thin=args.thin, progress=False if args.quiet else None,
        description=f"{args.sampler} on {target.name}",
    )
    dt = trace_to_datatree(trace, config=config, kind="explore")
    return dt, summarize(dt, trace, target, start, args, time.perf_counter() - wall)


def summarize(dt, trace, target, start, args, seconds) -> dict[str, Any]:


    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _summarize(dt, trace, target, start, args, seconds)


def _summarize(dt, trace, target, start, args, seconds) -> dict[str, Any]:
    import arviz_stats as az
    import numpy as np

    from diagnostics.summary import _finite, convergence, warnings_for

    diag = convergence(dt)
    test = np.asarray(trace.draws["test_acc"], dtype=float)
    train = np.asarray(trace.draws["train_loss"], dtype=float)
    half = test.shape[1] // 2
    ess = {}
    try:
        fin = _finite(dt)
        e = az.ess(fin, var_names=["train_loss", "test_acc"], method="bulk").to_dataset()
        ess = {k: _f(e[k].values) for k in ("train_loss", "test_acc")}
    except Exception:  # noqa: BLE001  (e.g. a constant observable: ESS undefined)
        ess = {"train_loss": None, "test_acc": None}
    L0 = float(target.config["initial_train_loss"])
    per_chain = target.beta * (np.nanmean(train, axis=1) - L0)
    finite = per_chain[np.isfinite(per_chain)]
    result = {
        "checkpoint": str(args.from_checkpoint), "sampler": args.sampler,
        "beta": target.beta, "beta_base": target.config["beta_base"], "beta_spec": target.config["beta_spec"],
        "beta_scale": target.config["beta_scale"], "dim": target.dim, "num_data": target.num_data,
        "initial_train_loss": L0, "initial_test_acc": float(start["test_acc"]),
        "final_test_acc": _f(np.nanmean(test[:, -1])),
        "mean_test_acc_last_half": _f(np.nanmean(test[:, half:])),
        "mean_train_loss": _f(np.nanmean(train)),
        "final_distance": _f(np.nanmean(np.asarray(trace.draws["distance"])[:, -1])),
        "ess_bulk": ess, "rhat_max": diag["rhat_max"], "acceptance_rate": diag["acceptance_rate"],
        "divergences": diag["divergences"],
        # beta (E[L] - L0): the LLC formula at this beta (d/2 for a quadratic well, lambda for a singular one)
        "llc": {"mean": _f(np.mean(finite)) if finite.size else None,
                "std": _f(np.std(finite, ddof=1)) if finite.size > 1 else None},
        "chains_stopped_nonfinite": diag["chains_stopped_nonfinite"],
        "step_size": _f(np.nanmean(trace.params["step_size"])) if "step_size" in trace.params else None,
        "seconds": seconds, "out": args.out,
    }
    result["warnings"] = warnings_for(diag, num_chains=args.chains)
    return result


def _f(x):
    import math

    import numpy as np

    v = float(np.nanmean(np.asarray(x, dtype=float))) if np.size(x) else float("nan")
    return v if math.isfinite(v) else None


def run(args: argparse.Namespace) -> int:
    from diagnostics.arviz_io import check_writable, save_datatree

    if args.study == "curve":
        return _run_curve_study(args)
    if not args.from_checkpoint:
        raise UserError("say what to sample: --from CHECKPOINT (or --study curve)")

    if args.out:
        try:
            check_writable(args.out, force=args.force)
        except OSError as err:
            raise UserError(str(err)) from None
    dt, result = explore(args)
    if args.out:
        save_datatree(dt, args.out, force=args.force)
    if args.json:
        emit_json(result)
        return 0
    r = result
    print(f"{r['sampler']} on {r['checkpoint']}: beta {r['beta']:.4g} ({r['beta_spec']} x {r['beta_scale']:g}; "
          f"multiplies the mean train loss {r['initial_train_loss']:.4g}, d = {r['dim']}, n = {r['num_data']})")
    print(f"test acc {r['initial_test_acc']:.3f} -> {_fmt(r['final_test_acc'])} "
          f"(mean over the last half {_fmt(r['mean_test_acc_last_half'])}); mean train loss {_fmt(r['mean_train_loss'])}")
    print(f"acceptance {_fmt(r['acceptance_rate'])}, divergences {r['divergences']}, R-hat max {_fmt(r['rhat_max'])}, "
          f"ESS train loss {_fmt(r['ess_bulk']['train_loss'])}, test acc {_fmt(r['ess_bulk']['test_acc'])}; "
          f"beta (E[L] - L0) = {_fmt(r['llc']['mean'])} ± {_fmt(r['llc']['std'])}; {r['seconds']:.1f} s")
    for w in r["warnings"]:
        print(f"warning: {w}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


# ------------------------------------------------------------------ the curve study

CURVE = {
    # surf grok's interventions-study size: groks in ~1-2 thousand steps
    "p": 23, "op": "add", "train_frac": 0.6, "split_seed": 0, "arch": "mlp", "lr": 1e-2, "b1": 0.9, "b2": 0.98,
    "eval_every": 25, "steps": 2500, "levels": (0.0, 0.25, 0.5, 0.75),
}


def curve_study(*, sampler="hmc", scales=(0.5, 1.0, 4.0), chains=2, draws=60, warmup=60, seed=0,
                num_integration_steps=10, progress=False) -> dict[str, Any]:
    """Checkpoints along a grokking curve (AdamW, wd 1) at test accuracy first reaching 0/25/50/75%
    (0%: the first evaluation with train accuracy 1), plus the end of a wd-0 (memorizing) run of the
    same length; from each, sample at ``scale x`` the equipartition beta and report whether test
    accuracy moves, with the mixing diagnostics of each row."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from diagnostics.arviz_io import trace_to_datatree
    from models.checkpoint_target import LoadedCheckpoint, checkpoint_target
    from samplers.kernels import SamplerOptions, build_sampler
    from samplers.optim import optimizer_sampler
    from samplers.run import run_chains
    from surf.grok import DEFAULTS, build_problem_from, build_tx

    wall = time.perf_counter()
    base = {**DEFAULTS, **{k: CURVE[k] for k in ("p", "op", "train_frac", "split_seed", "arch", "lr", "b1", "b2")},
            "seed": seed, "interventions": []}
    problem = build_problem_from(base)

    def rec(flat):
        return dict(problem.record_fn(flat), position=flat)

    starts = {}
    for label, wd in (("grokking", 1.0), ("memorizing", 0.0)):
        cfg = dict(base, optimizer="adamw" if wd else "adam", weight_decay=wd)
        opt = optimizer_sampler(problem.loss_fn, build_tx(cfg), name=cfg["optimizer"])
        tr = run_chains(jax.random.key(seed), opt, problem.init_position[None], record_fn=rec, num_warmup=0,
                        num_draws=CURVE["steps"] // CURVE["eval_every"], thin=CURVE["eval_every"], progress=progress,
                        description=f"curve: {label} run")
        test, train_acc, pos = tr.draws["test_acc"][0], tr.draws["train_acc"][0], tr.draws["position"][0]
        if wd:
            for level in CURVE["levels"]:
                hit = np.flatnonzero(train_acc >= 1.0) if level == 0 else np.flatnonzero(test >= level)
                if hit.size:
                    i = int(hit[0])
                    starts[f"test~{level:.0%}"] = (cfg, pos[i], (i + 1) * CURVE["eval_every"])
        else:
            starts["memorizing wd=0"] = (cfg, pos[-1], CURVE["steps"])
    rows = []
    for label, (cfg, pos, step) in starts.items():
        w0 = jnp.asarray(pos)
        ck = LoadedCheckpoint(f"study:{label}", w0, problem.with_reference(w0), {"config": cfg}, step)
        for scale in scales:
            try:
                target = checkpoint_target(ck, beta="equipartition", beta_scale=scale)
            except ValueError as err:
                rows.append({"checkpoint": label, "step": step, "scale": scale, "error": str(err)})
                continue
            kern = build_sampler(sampler, target, SamplerOptions(num_integration_steps=num_integration_steps))
            trace = run_chains(jax.random.key(seed + 1), kern, target.init_fn(None, chains), record_fn=target.record_fn,
                               num_warmup=warmup, num_draws=draws, progress=progress,
                               description=f"curve: {sampler} at {label} x{scale:g}")
            dt = trace_to_datatree(trace, config={"study": "curve", "checkpoint": label, "scale": scale}, kind="explore")
            ns = argparse.Namespace(from_checkpoint=label, sampler=sampler, chains=chains, out=None)
            r = summarize(dt, trace, target, target.record_fn(w0), ns, 0.0)
            rows.append({"checkpoint": label, "step": step, "scale": scale, **{k: r[k] for k in (
                "beta", "initial_train_loss", "initial_test_acc", "final_test_acc", "mean_test_acc_last_half",
                "mean_train_loss", "final_distance", "acceptance_rate", "divergences", "rhat_max", "ess_bulk",
                "step_size")}, "curves": trace.draws["test_acc"]})
    return {"rows": rows, "config": {**CURVE, "sampler": sampler, "scales": list(scales), "chains": chains,
                                      "draws": draws, "warmup": warmup, "seed": seed},
            "seconds": time.perf_counter() - wall}


def _run_curve_study(args) -> int:
    import json
    from pathlib import Path

    from diagnostics.arviz_io import atomic_write

    try:
        scales = tuple(float(s) for s in str(args.scales).split(",") if s.strip())
    except ValueError:
        raise UserError(f"--scales takes comma-separated numbers, got {args.scales!r}") from None
    if not scales or any(not s > 0 for s in scales):
        raise UserError(f"--scales must be positive numbers, got {args.scales!r}")
    out = Path(args.out or "runs/explore_curve")
    if out.exists() and not args.force:
        raise UserError(f"--out {out} exists; pass --force or choose another --out")
    sampler = args.sampler if args.sampler in ("hmc", "nuts", "mala") else "hmc"
    res = curve_study(sampler=sampler, scales=scales, chains=args.chains, draws=args.draws, warmup=args.warmup,
                      seed=args.seed, num_integration_steps=args.num_integration_steps,
                      progress=False if args.quiet else None)
    out.mkdir(parents=True, exist_ok=True)
    rows = [{k: v for k, v in r.items() if k != "curves"} for r in res["rows"]]
    payload = {"config": res["config"], "rows": rows, "seconds": res["seconds"]}
    atomic_write(out / "study.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=1, default=str)), force=True)
    _plot_curve(res, out / "study.png")
    if args.json:
        emit_json({"out": str(out), **payload})
        return 0
    print(f"{'checkpoint':<17}{'step':>5}{'scale':>6}{'beta':>10}{'test0':>7}{'test end':>9}{'last half':>10}"
          f"{'accept':>8}{'div':>5}{'rhat':>7}{'ESS L':>7}{'ESS acc':>8}")
    for r in rows:
        if "error" in r:
            print(f"{r['checkpoint']:<17}{r['step']:>5}{r['scale']:>6g}  {r['error']}")
            continue
        print(f"{r['checkpoint']:<17}{r['step']:>5}{r['scale']:>6g}{r['beta']:>10.3g}{r['initial_test_acc']:>7.3f}"
              f"{_fmt(r['final_test_acc']):>9}{_fmt(r['mean_test_acc_last_half']):>10}{_fmt(r['acceptance_rate']):>8}"
              f"{r['divergences']:>5}{_fmt(r['rhat_max']):>7}{_fmt(r['ess_bulk']['train_loss']):>7}"
              f"{_fmt(r['ess_bulk']['test_acc']):>8}")
    print(f"{res['seconds']:.0f} s; wrote {out / 'study.json'} and {out / 'study.png'}")
    return 0


def _plot_curve(res, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from diagnostics.arviz_io import atomic_write

    rows = [r for r in res["rows"] if "curves" in r]
    labels = list(dict.fromkeys(r["checkpoint"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(labels)), figsize=(3.2 * max(1, len(labels)), 3), sharey=True, squeeze=False)
    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00"]
    for ax, label in zip(axes[0], labels, strict=False):
        for color, r in zip(palette, [r for r in rows if r["checkpoint"] == label], strict=False):
            acc = np.asarray(r["curves"])
            ax.plot(np.nanmean(acc, axis=0), color=color, label=f"x{r['scale']:g}")
        ax.axhline(rows[[r["checkpoint"] for r in rows].index(label)]["initial_test_acc"], color="k", ls=":", lw=1)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("draw")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("test accuracy (mean over chains)")
    axes[0][0].legend(fontsize=7, title="x equipartition beta", title_fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), force=True)
    plt.close(fig)
