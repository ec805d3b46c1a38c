"""LLC calibration: known vs estimated learning coefficients, and the cost on a network.

Run: ``.venv/bin/python benchmarks/bench_llc.py [--quick] [--json FILE]``.

1. Toy targets with a known RLCT, each at the *defaults* of ``surf llc``
   (SGLD, nbeta = n / log n with n = 1e6, gamma = 0, the per-toy step size,
   draws and warmup of ``diagnostics.llc.TOY_DEFAULTS``), 8 chains, several
   seeds. Also the exact finite-nbeta value E[nbeta U] by quadrature, which
   is what an unbiased sampler converges to (the RLCT is its nbeta -> inf
   limit; for the normal crossing x0^2 x1^4 the gap closes only as
   nbeta^(-1/4)).
2. A grok checkpoint of the default MLP (p = 53, trained 2000 AdamW steps,
   memorizing): seconds per LLC estimate at the CLI defaults, LLC estimates
   per minute, and gradient evaluations per second (one evaluation = one
   full-batch gradient of one chain).

Equivalent CLI commands are printed next to each row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

TOYS = [
    # (label, model, params, known RLCT)
    ("quadratic d=2", "quadratic", {"dim": 2}, 1.0),
    ("quadratic d=6", "quadratic", {"dim": 6}, 3.0),
    ("normal-crossing k0=1,k1=2", "normal-crossing", {"k0": 1, "k1": 2}, 0.25),
    ("cross lam=0", "cross", {"lam": 0.0}, 0.5),
]


def exact_finite(model, params, nbeta):
    """E[nbeta U] on the box by quadrature (2-D toys), d/2 for the quadratic."""
    if model == "quadratic":
        return params["dim"] / 2
    from scipy import integrate

    from models.toy import toy_target

    t = toy_target(model, params, beta=1.0)
    U = t.loss_fn
    import jax.numpy as jnp

    def u(x, y):
        return float(U(jnp.array([x, y])))

    pts = [0, 1e-3, 1e-2, 0.1, 1]
    Z = N = 0.0
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        for c, d in zip(pts[:-1], pts[1:], strict=True):
            Z += integrate.dblquad(lambda y, x: np.exp(-nbeta * u(x, y)), a, b, c, d, epsrel=1e-6)[0]
            N += integrate.dblquad(lambda y, x: nbeta * u(x, y) * np.exp(-nbeta * u(x, y)), a, b, c, d, epsrel=1e-6)[0]
    return N / Z


def toy_rows(seeds):
    from diagnostics import llc as L

    rows = []
    for label, model, params, known in TOYS:
        problem = L.toy_llc_problem(model, params)
        nbeta = L.default_nbeta(problem.num_data)
        c, draws, warmup = L.TOY_DEFAULTS[model]
        means, secs = [], []
        for s in range(seeds):
            r = L.estimate_llc(problem, nbeta=nbeta, step_size=c / nbeta, chains=8, draws=draws,
                               warmup=warmup, seed=s)
            means.append(r.llc["mean"])
            secs.append(r.seconds)
        est = float(np.mean(means))
        try:
            finite = exact_finite(model, params, nbeta) if model != "cross" else None
        except Exception:  # noqa: BLE001
            finite = None
        ps = " ".join(f"--param {k}={v}" for k, v in params.items())
        rows.append({
            "target": label, "known": known, "exact_at_nbeta": finite, "estimate": est,
            "seed_sd": float(np.std(means, ddof=1)) if seeds > 1 else None,
            "rel_error": est / known - 1, "within_10pct": abs(est / known - 1) < 0.1,
            "seconds": float(np.median(secs)), "nbeta": nbeta, "step_size": c / nbeta,
            "draws": draws, "warmup": warmup,
            "command": f"surf llc --model {model} {ps} --seed S",
        })
    return rows


def network_row(quick):
    import tempfile

    from diagnostics import llc as L
    from models.checkpoint_target import checkpoint_llc_problem
    from surf.grok import DEFAULTS, train

    folder = Path(tempfile.mkdtemp(prefix="bench_llc_"))
    cfg = dict(DEFAULTS, steps=2000, checkpoint_every=2000)
    train(cfg, out=folder, progress=False)
    problem = checkpoint_llc_problem(folder / "checkpoint_2000")
    chains = 2 if quick else 8
    draws = 100 if quick else L.NETWORK_DRAWS
    r = L.estimate_llc(problem, nbeta=L.default_nbeta(problem.num_data), localization=L.NETWORK_LOCALIZATION,
                       step_size=L.NETWORK_STEP_SIZE, chains=chains, draws=draws, warmup=L.NETWORK_WARMUP, seed=0)
    d = r.as_dict()
    return {
        "target": f"MLP p=53 checkpoint_2000 (d={problem.dim}, n={problem.num_data})",
        "llc": r.llc, "chains": chains, "draws": draws, "warmup": L.NETWORK_WARMUP,
        "seconds_total": r.seconds, "sampling_seconds": r.trace.sampling_seconds + r.trace.warmup_seconds,
        "llc_estimates_per_minute": 60.0 / r.seconds,
        "grad_evals_per_second": d["grad_evals_per_second"],
        "command": f"surf llc --from {folder / 'checkpoint_2000'} --chains {chains} --draws {draws}",
    }


def _report(rows, net) -> None:
    print(f"{'target':<28}{'known':>7}{'exact@nbeta':>12}{'estimate':>10}{'seed sd':>9}{'rel err':>9}{'s/run':>7}")
    for r in rows:
        ex = "n/a" if r["exact_at_nbeta"] is None else f"{r['exact_at_nbeta']:.4f}"
        sd = "n/a" if r["seed_sd"] is None else f"{r['seed_sd']:.3f}"
        print(f"{r['target']:<28}{r['known']:>7.3f}{ex:>12}{r['estimate']:>10.4f}{sd:>9}{r['rel_error']:>+9.1%}{r['seconds']:>7.1f}")
    if net:
        print(f"{net['target']}: LLC {net['llc']['mean']:.3f} ± {net['llc']['std']:.3f} over {net['chains']} chains; "
              f"{net['seconds_total']:.1f} s per estimate ({net['llc_estimates_per_minute']:.2f}/min), "
              f"{net['grad_evals_per_second']:.0f} gradient evaluations/s")


def main(quick: bool = False, seeds: int = 3, network: bool = True, json_path: str | None = None) -> list[dict]:
    """Calibration on toys with a known RLCT, and speed on the default MLP; rows for run_all."""
    from common import machine, spread

    mach = machine()
    rows = toy_rows(1 if quick else seeds)
    net = network_row(quick) if network else None
    _report(rows, net)
    if json_path:
        Path(json_path).write_text(json.dumps({"toys": rows, "network": net}, indent=1, default=str))
    out = []
    for r in rows:
        out.append({
            "name": f"llc calibration: {r['target']} (estimate / known)", "ours": r["estimate"],
            "peer": r["known"], "peer_name": "known learning coefficient", "unit": "lambda",
            "ratio": r["estimate"] / r["known"], "runs": 1 if quick else seeds, "machine": mach,
            "notes": f"target within 10%: {'yes' if abs(r['rel_error']) <= 0.1 else 'no'}; {r['command']}",
            "spread": {"ours": spread([r["estimate"]]), "peer": spread([r["known"]])},
        })
    if net:
        for key, unit in (("llc_estimates_per_minute", "LLC estimates/min"),
                          ("grad_evals_per_second", "gradient evaluations/s")):
            out.append({
                "name": f"llc default MLP checkpoint: {unit}", "ours": net[key], "peer": None,
                "peer_name": None, "unit": unit, "ratio": None, "runs": 1, "machine": mach,
                "notes": f"{net['chains']} chains; {net['command']}; the PyTorch peer is bench_llc_torch.py",
                "spread": {"ours": spread([net[key]])},
            })
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--no-network", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    main(quick=a.quick, seeds=a.seeds, network=not a.no_network, json_path=a.json)
