"""``surf grok``: grokking on modular arithmetic, and the seed's interventions.

One training run (``surf grok ...``): a network on ``(a op b) mod p`` trained
full batch by an optax optimizer driven as a kernel by the shared run loop
(one chain, ``thin`` = ``--eval-every``, the observables recorded per draw),
writing ``curves.nc`` and checkpoints ``checkpoint_STEP.npz/.json``.
``--from CHECKPOINT`` continues a run, possibly with another optimizer or
interventions; the optimizer state is kept when the optimizer settings are
unchanged (then the continuation is the uninterrupted run), and started
fresh otherwise, with the anti-regularization / large-norm reference taken
at the checkpoint's parameters.

``--study interventions``: the post's experiment (SCIENCE.md section 5) at a
size that fits minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from samplers.checkpoint import CheckpointError
from surf.common import (
    Interrupted,
    UserError,
    emit_json,
    nonnegative_int,
    positive_float,
    positive_int,
    prepare_checkpoint,
    probability,
    remove_checkpoint,
)

__all__ = [
    "add_parser",
    "run",
    "parse_interventions",
    "train",
    "curve_summary",
    "interventions_study",
    "DEFAULTS",
]

DEFAULTS: dict[str, Any] = {
    "p": 53, "op": "add", "train_frac": 0.4, "split_seed": 0, "arch": "mlp",
    "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1.0, "b1": 0.9, "b2": 0.98,
    "warmup_steps": 0, "interventions": [], "steps": 6000, "eval_every": 100,
    "checkpoint_every": 1000, "seed": 0,
}
# Settings that define the optimizer; a continuation keeps the optimizer
# state only when all of them are unchanged.
_OPTIMIZER_KEYS = ("optimizer", "lr", "weight_decay", "b1", "b2", "warmup_steps", "interventions")
_TASK_KEYS = ("p", "op", "train_frac", "split_seed", "arch")
INTERVENTIONS = ("noise", "antireg", "norm")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "grok",
        help="grokking on modular arithmetic (AdamW, Adam + the seed's interventions)",
        description="Train a network on (a op b) mod p, full batch, and record train/test "
        "loss and accuracy, weight norm and distance from the start.",
    )
    p.add_argument("--p", type=positive_int, default=None, help="modulus (default 53)")
    p.add_argument("--op", default=None, help="add, sub or mul (mul needs a prime p; default add)")
    p.add_argument("--train-frac", type=float, default=None, help="fraction of pairs trained on, in (0, 1) (default 0.4)")
    p.add_argument("--split-seed", type=nonnegative_int, default=None, help="seed of the train/test split (default 0)")
    p.add_argument("--arch", default=None, help="mlp or transformer (default mlp)")
    p.add_argument("--optimizer", default=None, help="adamw, adam or sgd (default adamw)")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default 3e-3)")
    p.add_argument("--weight-decay", type=float, default=None, help="decoupled weight decay of adamw (default 1.0)")
    p.add_argument("--b1", type=probability, default=None, help="first-moment decay / momentum (default 0.9)")
    p.add_argument("--b2", type=probability, default=None, help="second-moment decay (default 0.98)")
    p.add_argument("--warmup-steps", type=nonnegative_int, default=None, help="linear learning-rate warmup (default 0)")
    p.add_argument(
        "--intervention", action="append", nargs="+", default=None, metavar="SPEC",
        help="noise=SIGMA, antireg=GAMMA or norm=GAMMA,K (repeatable)",
    )
    p.add_argument("--from", dest="from_checkpoint", metavar="CHECKPOINT", help="continue from a checkpoint")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in --out from its last chunk (same flags), bit for bit",
    )
    p.add_argument("--steps", type=positive_int, default=None, help="optimizer steps (default 6000)")
    p.add_argument("--eval-every", type=positive_int, default=None, help="steps per recorded point (default 100)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=None, help="steps per checkpoint, 0: only the last (default 1000)")
    p.add_argument("--seed", type=nonnegative_int, default=None, help="initialization and noise seed (default 0)")
    p.add_argument("--study", choices=["interventions"], help="run the post's interventions experiment")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds of the study (default 3)")
    p.add_argument("--out", help="output folder (default runs/grok, runs/grok_study for --study)")
    p.add_argument("--force", action="store_true", help="write into an existing --out")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
    return p


# ------------------------------------------------------------------ configuration


def parse_interventions(items: list[str]) -> list[dict[str, Any]]:
    """``["noise=0.01", "antireg=1e-3", "norm=1e-3,2"]`` -> list of dicts; UserError if malformed."""
    out = []
    for item in items:
        kind, sep, value = str(item).partition("=")
        kind = kind.strip()
        if not sep or kind not in INTERVENTIONS:
            raise UserError(f"malformed --intervention {item!r}; write noise=SIGMA, antireg=GAMMA or norm=GAMMA,K")
        try:
            numbers = [float(v) for v in value.split(",")]
        except ValueError:
            raise UserError(f"malformed --intervention {item!r}: {value!r} is not a number list") from None
        if not all(np.isfinite(numbers)) or any(v < 0 for v in numbers):
            raise UserError(f"--intervention {item!r}: values must be finite and >= 0")
        if kind == "norm":
            if len(numbers) != 2 or numbers[1] <= 0:
                raise UserError(f"malformed --intervention {item!r}; write norm=GAMMA,K with K > 0")
            out.append({"kind": "norm", "gamma": numbers[0], "k": numbers[1]})
        else:
            if len(numbers) != 1:
                raise UserError(f"malformed --intervention {item!r}; {kind} takes one number")
            key = "sigma" if kind == "noise" else "gamma"
            out.append({"kind": kind, key: numbers[0]})
    return out


def _resolve(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """The configuration: flags given override ``base`` (the defaults or the checkpoint's)."""
    cfg = dict(base)
    for key in ("p", "op", "train_frac", "split_seed", "arch", "optimizer", "lr", "weight_decay",
                "b1", "b2", "warmup_steps", "steps", "eval_every", "checkpoint_every", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            cfg[key] = value
    if cfg["optimizer"] != "adamw" and getattr(args, "weight_decay", None) is None:
        cfg["weight_decay"] = 0.0  # only adamw has (decoupled) weight decay
    if args.intervention is not None:
        cfg["interventions"] = parse_interventions([s for group in args.intervention for s in group])
    return cfg


def _validate(cfg: dict[str, Any]) -> None:
    from models.modular import ARCHS, OPS, is_prime
    from samplers.optim import OPTIMIZERS

    if cfg["op"] not in OPS:
        raise UserError(f"unknown --op {cfg['op']!r}; choose one of {', '.join(OPS)}")
    if cfg["arch"] not in ARCHS:
        raise UserError(f"unknown --arch {cfg['arch']!r}; choose one of {', '.join(ARCHS)}")
    if cfg["optimizer"] not in OPTIMIZERS:
        raise UserError(f"unknown --optimizer {cfg['optimizer']!r}; choose one of {', '.join(OPTIMIZERS)}")
    if cfg["p"] < 2:
        raise UserError(f"--p must be >= 2, got {cfg['p']}")
    if cfg["op"] == "mul" and not is_prime(cfg["p"]):
        raise UserError(f"--op mul needs a prime --p, got {cfg['p']}")
    if not 0 < cfg["train_frac"] < 1:
        raise UserError(f"--train-frac must be in (0, 1), got {cfg['train_frac']}")
    if not (np.isfinite(cfg["weight_decay"]) and cfg["weight_decay"] >= 0):
        raise UserError(f"--weight-decay must be >= 0, got {cfg['weight_decay']}")
    if cfg["weight_decay"] and cfg["optimizer"] != "adamw":
        raise UserError(f"--weight-decay {cfg['weight_decay']:g} needs --optimizer adamw (pass --weight-decay 0)")
    if cfg["steps"] % cfg["eval_every"]:
        raise UserError(f"--steps {cfg['steps']} must be a multiple of --eval-every {cfg['eval_every']}")
    if cfg["checkpoint_every"] % cfg["eval_every"]:
        raise UserError(
            f"--checkpoint-every {cfg['checkpoint_every']} must be a multiple of --eval-every {cfg['eval_every']}"
        )


def build_tx(cfg: dict[str, Any]):
    """The optax transformation a configuration describes."""
    from samplers.optim import add_weight_noise, anti_regularization, build_optimizer, large_norm

    grad_parts, noise = [], None
    for iv in cfg["interventions"]:
        if iv["kind"] == "noise":
            noise = add_weight_noise(sigma=iv["sigma"], seed=cfg["seed"])
        elif iv["kind"] == "antireg":
            grad_parts.append(anti_regularization(gamma=iv["gamma"]))
        else:
            grad_parts.append(large_norm(gamma=iv["gamma"], k=iv["k"]))
    return build_optimizer(
        cfg["optimizer"], learning_rate=cfg["lr"], b1=cfg["b1"], b2=cfg["b2"],
        weight_decay=cfg["weight_decay"], warmup_steps=cfg["warmup_steps"],
        interventions=grad_parts, noise=noise,
    )


def build_problem_from(cfg: dict[str, Any], seed: int | None = None):
    from models.modular import problem_from_config

    return problem_from_config(cfg, seed)


# ------------------------------------------------------------------ one run


def _opt_template(cfg, position):
    import jax

    return jax.eval_shape(build_tx(cfg).init, position)


def load_grok_checkpoint(path: str) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """``(position, opt_state, meta)`` of a checkpoint ``surf grok`` wrote; UserError otherwise."""
    import jax

    from samplers.checkpoint import CheckpointError, load_checkpoint

    try:
        leaves, meta = load_checkpoint(path)
        cfg = meta.get("config")
        if meta.get("kind") != "grok" or not isinstance(cfg, dict):
            raise CheckpointError(f"{path} is not a surf grok checkpoint")
        problem = build_problem_from(cfg)
        template = {"opt_state": _opt_template(cfg, problem.init_position),
                    "position": jax.ShapeDtypeStruct(problem.init_position.shape, problem.init_position.dtype)}
        tree, meta = load_checkpoint(path, template)
    except CheckpointError as err:
        raise UserError(str(err)) from None
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: unreadable surf grok checkpoint ({err})") from None
    return tree["position"], tree["opt_state"], meta


def train(
    cfg: dict[str, Any],
    *,
    out: Path | None,
    position=None,
    opt_state=None,
    start_step: int = 0,
    reference=None,
    progress: bool | None = None,
    force: bool = False,
    checkpoint: Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train as ``cfg`` says from ``position`` (default: the init of ``cfg['seed']``).

    Returns ``{"curves": dict of arrays with "step", "summary": dict}`` and
    writes ``curves.nc`` and checkpoints under ``out`` when given.
    """
    import jax
    import jax.numpy as jnp

    from samplers.checkpoint import save_checkpoint
    from samplers.optim import optimizer_sampler
    from samplers.run import run_chains

    start = time.perf_counter()
    problem = build_problem_from(cfg)
    if position is None:
        position = problem.init_position
    position = jnp.asarray(position, jnp.float32)
    problem = problem.with_reference(position if reference is None else reference)
    tx = build_tx(cfg)
    sampler = optimizer_sampler(problem.loss_fn, tx, name=cfg["optimizer"], opt_state=opt_state)
    eval_every, steps = cfg["eval_every"], cfg["steps"]
    num_draws = steps // eval_every
    chunk = cfg["checkpoint_every"] // eval_every if cfg["checkpoint_every"] else None
    saved: list[str] = []

    def on_chunk(done, carry):
        if out is None:
            return
        states, _ = carry
        local = done * eval_every
        if done == num_draws or (cfg["checkpoint_every"] and local % cfg["checkpoint_every"] == 0):
            step = start_step + local
            tree = {"opt_state": jax.tree.map(lambda x: x[0], states.opt_state), "position": states.position[0]}
            meta = {"kind": "grok", "config": cfg, "step": step, "split_seed": cfg["split_seed"]}
            saved.append(str(save_checkpoint(out / f"checkpoint_{step}", tree, meta)))

    trace = run_chains(
        jax.random.key(cfg["seed"]), sampler, position[None], record_fn=problem.record_fn,
        num_warmup=0, num_draws=num_draws, thin=eval_every, chunk_size=chunk,
        progress=progress, description=f"grok {cfg['optimizer']} p={cfg['p']}", on_chunk=on_chunk,
        checkpoint=checkpoint, resume=resume, checkpoint_meta={"config": cfg, "start_step": start_step},
    )
    seconds = time.perf_counter() - start
    curves = {k: v[0] for k, v in trace.draws.items()}
    curves["step"] = start_step + eval_every * np.arange(1, num_draws + 1)
    summary = curve_summary(curves)
    summary.update(
        seconds=seconds, steps_per_second=steps / trace.sampling_seconds,
        compile_seconds=trace.compile_seconds, out=str(out) if out else None,
    )
    if out is not None:
        _save_curves(out / "curves.nc", trace, curves["step"], cfg, summary, force=force)
    summary["checkpoints"] = saved
    return {"curves": curves, "summary": summary}


def curve_summary(curves: dict[str, np.ndarray]) -> dict[str, Any]:
    """Final and best accuracies, and the first steps reaching 50% and 95% test accuracy."""
    test = np.asarray(curves["test_acc"])

    def first(level):
        hit = np.flatnonzero(test >= level)
        return int(curves["step"][hit[0]]) if hit.size else None

    return {
        "final_train_acc": float(curves["train_acc"][-1]),
        "final_test_acc": float(test[-1]),
        "max_test_acc": float(np.nanmax(test)),
        "step_test_acc_50": first(0.5),
        "step_test_acc_95": first(0.95),
    }


def _save_curves(path: Path, trace, steps, cfg, summary, *, force: bool) -> None:
    import arviz_base as az

    from diagnostics.arviz_io import provenance_attrs, save_datatree

    dt = az.from_dict({"posterior": dict(trace.draws), "sample_stats": dict(trace.stats)})
    for group in ("posterior", "sample_stats"):
        ds = dt[group].to_dataset().assign_coords(step=("draw", np.asarray(steps)))
        dt[group] = ds
    dt.attrs.update(provenance_attrs(cfg, kind="grok"))
    dt.attrs["surf_summary"] = json.dumps(summary)
    save_datatree(dt, path, force=force)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.exists() and not force:
        raise UserError(f"--out {out} exists; pass --force to write into it or choose another --out")


def run(args: argparse.Namespace) -> int:
    if args.study:
        return _run_study(args)
    base, position, opt_state, start_step, reference = dict(DEFAULTS), None, None, 0, None
    if args.from_checkpoint:
        position, ck_opt_state, meta = load_grok_checkpoint(args.from_checkpoint)
        base = dict(meta["config"])
        start_step = int(meta["step"])
        for key in ("p", "op", "train_frac", "split_seed", "arch"):
            given = getattr(args, key, None)
            if given is not None and given != base[key]:
                raise UserError(f"--{key.replace('_', '-')} {given} differs from the checkpoint's {base[key]}; a continuation keeps the task")
    cfg = _resolve(args, base)
    _validate(cfg)
    try:
        build_problem_from(cfg)  # the task itself may still refuse (an empty train or test set)
    except ValueError as err:
        raise UserError(str(err)) from None
    if args.from_checkpoint:
        if all(cfg[k] == base[k] for k in _OPTIMIZER_KEYS) and cfg["seed"] == base["seed"]:
            opt_state = ck_opt_state  # the same optimizer: carry on exactly
        cfg["from_checkpoint"] = {"path": str(args.from_checkpoint), "step": start_step,
                                  "optimizer_state": "kept" if opt_state is not None else "fresh"}
    out = Path(args.out or "runs/grok")
    if not args.resume:
        _check_out(out, args.force)
    partial = prepare_checkpoint(str(out / "curves.nc"), resume=args.resume, force=args.force)
    try:
        result = train(
            cfg, out=out, position=position, opt_state=opt_state, start_step=start_step,
            reference=reference, progress=False if args.quiet else None,
            force=args.force or args.resume, checkpoint=partial, resume=args.resume,
        )
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; progress is kept in {partial}.npz: run the same command with --resume"
        ) from None
    except CheckpointError as err:
        raise UserError(str(err)) from None
    remove_checkpoint(partial)
    s = result["summary"]
    if args.json:
        emit_json({k: s[k] for k in ("final_train_acc", "final_test_acc", "max_test_acc", "step_test_acc_50",
                                     "step_test_acc_95", "seconds", "steps_per_second", "out")})
    elif not args.quiet:
        print(
            f"train acc {s['final_train_acc']:.3f}, test acc {s['final_test_acc']:.3f} "
            f"(max {s['max_test_acc']:.3f}; 50% at step {s['step_test_acc_50']}, 95% at {s['step_test_acc_95']}); "
            f"{s['seconds']:.1f} s, {s['steps_per_second']:.0f} steps/s"
        )
        print(f"wrote {out / 'curves.nc'} and {len(s['checkpoints'])} checkpoint(s)")
    return 0


# ------------------------------------------------------------------ the study

STUDY: dict[str, Any] = {
    # A size that groks in ~1-2 thousand steps at 1 ms a step.
    "p": 23, "op": "add", "train_frac": 0.6, "split_seed": 0, "arch": "mlp",
    "lr": 1e-2, "b2": 0.98, "weight_decay": 1.0, "eval_every": 25,
    "search_steps": 3000, "steps": 1500,
    "interventions": {"noise": {"kind": "noise", "sigma": 3e-3},
                      "antireg": {"kind": "antireg", "gamma": 1e-3},
                      "norm": {"kind": "norm", "gamma": 1e-3, "k": 2.0}},
}


def _seed_positions(cfg, seeds):
    import jax.numpy as jnp

    return jnp.stack([build_problem_from(cfg, seed=s).init_position for s in range(seeds)])


def _run_many(cfg, positions, *, steps, eval_every, record_fn, progress, description):
    """All seeds as chains of one run; the optimizer state starts fresh from each position."""
    import jax

    from samplers.optim import optimizer_sampler
    from samplers.run import run_chains

    problem = build_problem_from(cfg)
    sampler = optimizer_sampler(problem.loss_fn, build_tx(cfg), name=cfg["optimizer"])
    return run_chains(
        jax.random.key(cfg["seed"]), sampler, positions, record_fn=record_fn, num_warmup=0,
        num_draws=steps // eval_every, thin=eval_every, progress=progress, description=description,
    )


def interventions_study(
    *, seeds: int = 3, steps: int | None = None, interventions: list[dict] | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """The post's experiment: continue from a half-grokked and a memorizing checkpoint.

    Per seed (a network initialization): AdamW (weight decay 1) until test
    accuracy first reaches 50% gives the *grokking* checkpoint; the same
    number of steps with weight decay 0 gives the *memorizing* one. From each,
    continue with AdamW (reference), Adam without weight decay, and Adam plus
    each intervention, at b1 = 0 and 0.9. The optimizer state starts fresh at
    the checkpoint (as when switching optimizers); the noise intervention uses
    one noise seed for all chains (their starting points differ).
    Gain = mean test accuracy over the last 20% of steps minus plain Adam's,
    per seed; reported as mean and standard deviation across seeds.
    """
    import jax.numpy as jnp

    st = dict(STUDY)
    steps = steps or st["steps"]
    ivs = {iv["kind"]: iv for iv in (interventions or [])}
    ivs = {k: ivs.get(k, v) for k, v in st["interventions"].items()}
    base = {**DEFAULTS, **{k: st[k] for k in ("p", "op", "train_frac", "split_seed", "arch", "lr", "b2")},
            "seed": 0, "interventions": []}
    problem = build_problem_from(base)
    keep = {"test_acc": None, "train_acc": None}

    def record_with_position(flat):
        return dict(problem.record_fn(flat), position=flat)

    def record(flat):
        r = problem.record_fn(flat)
        return {k: r[k] for k in keep}

    start = time.perf_counter()
    init = _seed_positions(base, seeds)
    search = {}
    for label, wd in (("grokking", st["weight_decay"]), ("memorizing", 0.0)):
        cfg = dict(base, optimizer="adamw" if wd else "adam", weight_decay=wd, b1=0.9)
        search[label] = _run_many(cfg, init, steps=st["search_steps"], eval_every=st["eval_every"],
                                  record_fn=record_with_position, progress=progress,
                                  description=f"study: {label} checkpoint")
    test = search["grokking"].draws["test_acc"]
    crossing = []
    for s in range(seeds):
        hit = np.flatnonzero(test[s] >= 0.5)
        if not hit.size:
            raise RuntimeError(f"seed {s} never reached 50% test accuracy in {st['search_steps']} steps")
        crossing.append(int(hit[0]))
    starts = {
        label: jnp.asarray(np.stack([search[label].draws["position"][s, crossing[s]] for s in range(seeds)]))
        for label in search
    }
    start_acc = {label: [float(search[label].draws["test_acc"][s, crossing[s]]) for s in range(seeds)]
                 for label in search}
    conditions = [("adamw", "adamw", [])] + [("adam", "adam", [])] + [
        (f"adam+{k}", "adam", [iv]) for k, iv in ivs.items()
    ]
    curves, rows = {}, []
    for label, pos in starts.items():
        for b1 in (0.0, 0.9):
            accs = {}
            for name, opt, iv in conditions:
                cfg = dict(base, optimizer=opt, weight_decay=st["weight_decay"] if opt == "adamw" else 0.0,
                           b1=b1, interventions=iv)
                tr = _run_many(cfg, pos, steps=steps, eval_every=st["eval_every"], record_fn=record,
                               progress=progress, description=f"study: {label} b1={b1:g} {name}")
                accs[name] = tr.draws["test_acc"]
                curves[(label, b1, name)] = tr.draws["test_acc"]
            tail = max(1, int(round(0.2 * accs["adam"].shape[1])))
            base_tail = np.mean(accs["adam"][:, -tail:], axis=1)
            for name, acc in accs.items():
                t = np.mean(acc[:, -tail:], axis=1)
                gain = t - base_tail
                rows.append({
                    "start": label, "b1": b1, "condition": name,
                    "tail_test_acc_mean": float(np.mean(t)), "tail_test_acc_sd": float(np.std(t, ddof=1)) if seeds > 1 else 0.0,
                    "gain_over_adam_mean": float(np.mean(gain)),
                    "gain_over_adam_sd": float(np.std(gain, ddof=1)) if seeds > 1 else 0.0,
                    "max_test_acc_mean": float(np.mean(np.nanmax(acc, axis=1))),
                })
    config = {"study": "interventions", "seeds": seeds, "steps": steps, **st, "interventions": ivs,
              "crossing_step": [(c + 1) * st["eval_every"] for c in crossing], "start_test_acc": start_acc}
    return {"rows": rows, "curves": curves, "config": config, "seconds": time.perf_counter() - start,
            "eval_every": st["eval_every"]}


def plot_study(result: dict[str, Any], path: Path, *, force: bool) -> None:
    """Test-accuracy curves, one panel per (start, b1), mean over seeds with min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diagnostics.arviz_io import atomic_write

    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]  # Okabe-Ito
    panels = sorted({(k[0], k[1]) for k in result["curves"]}, key=lambda x: (x[0] != "grokking", x[1]))
    names = list(dict.fromkeys(k[2] for k in result["curves"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), sharey=True, squeeze=False)
    for ax, (label, b1) in zip(axes[0], panels, strict=True):
        for color, name in zip(palette, names, strict=False):
            acc = result["curves"][(label, b1, name)]
            x = result["eval_every"] * np.arange(1, acc.shape[1] + 1)
            ax.plot(x, acc.mean(axis=0), color=color, label=name, lw=1.5)
            ax.fill_between(x, acc.min(axis=0), acc.max(axis=0), color=color, alpha=0.15, lw=0)
        ax.set_title(f"from {label} checkpoint, b1={b1:g}", fontsize=9)
        ax.set_xlabel("steps after the checkpoint")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120), force=force)
    plt.close(fig)


def _run_study(args: argparse.Namespace) -> int:
    from diagnostics.arviz_io import atomic_write

    ivs = parse_interventions([s for g in args.intervention for s in g]) if args.intervention else None
    out = Path(args.out or "runs/grok_study")
    _check_out(out, args.force)
    result = interventions_study(seeds=args.seeds, steps=args.steps, interventions=ivs,
                                 progress=False if args.quiet else None)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"config": result["config"], "rows": result["rows"], "seconds": result["seconds"]}
    atomic_write(out / "study.json", lambda tmp: tmp.write_text(json.dumps(payload, indent=1, default=str)), force=True)
    plot_study(result, out / "study.png", force=True)
    if args.json:
        emit_json({"out": str(out), **payload})
    else:
        print(f"{'start':<11}{'b1':>4}  {'condition':<14}{'tail test acc':>16}{'gain over adam':>18}")
        for r in result["rows"]:
            print(f"{r['start']:<11}{r['b1']:>4g}  {r['condition']:<14}"
                  f"{r['tail_test_acc_mean']:>9.3f} ± {r['tail_test_acc_sd']:.3f}"
                  f"{r['gain_over_adam_mean']:>+11.3f} ± {r['gain_over_adam_sd']:.3f}")
        print(f"{result['seconds']:.0f} s; wrote {out / 'study.json'} and {out / 'study.png'}")
    return 0
