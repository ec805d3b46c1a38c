"""The local learning coefficient along a grokking run, against test accuracy.

For every checkpoint a ``surf grok`` run wrote, estimate the LLC by SGLD with
the network defaults of ``surf llc --from`` (n beta = n / log n, gamma = 100,
h = 5e-4) and plot it beside the checkpoint's test accuracy.

Run it after ``surf grok --out runs/grok`` (or ``make demo``)::

    python examples/llc_across_training.py --run runs/demo/grok --out llc_curve.png
    python examples/llc_across_training.py --run runs/demo/grok --draws 50   # a quick look
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from diagnostics import llc as L  # noqa: E402
from diagnostics.plots import PALETTE, save_figure  # noqa: E402
from models.checkpoint_target import checkpoint_llc_problem, load_grok_position  # noqa: E402


def checkpoints(run: Path) -> list[Path]:
    found = []
    for meta in run.glob("checkpoint_*.json"):
        match = re.fullmatch(r"checkpoint_(\d+)", meta.stem)
        if match:
            found.append((int(match.group(1)), meta.with_suffix("")))
    return [path for _, path in sorted(found)]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="runs/demo/grok", help="a surf grok output folder")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=L.NETWORK_DRAWS)
    p.add_argument("--warmup", type=int, default=L.NETWORK_WARMUP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="figure to write (PNG)")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)

    paths = checkpoints(Path(args.run))
    if not paths:
        raise SystemExit(f"no checkpoint_STEP files in {args.run}; run surf grok first")
    rows = []
    for path in paths:
        ck = load_grok_position(path)
        observed = {k: float(v) for k, v in ck.problem.record_fn(ck.position).items()}
        result = L.estimate_llc(
            checkpoint_llc_problem(ck), localization=L.NETWORK_LOCALIZATION,
            step_size=L.NETWORK_STEP_SIZE, chains=args.chains, draws=args.draws,
            warmup=args.warmup, seed=args.seed,
        )
        row = {
            "step": ck.step, "train_loss": observed["train_loss"], "test_acc": observed["test_acc"],
            "weight_norm": observed["weight_norm"], "llc_mean": result.llc["mean"],
            "llc_std": result.llc["std"], "seconds": result.seconds,
        }
        rows.append(row)
        print(json.dumps(row))
    if args.out:
        steps = np.array([r["step"] for r in rows])
        fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
        ax.errorbar(steps, [r["llc_mean"] for r in rows], yerr=[r["llc_std"] for r in rows],
                    marker="o", capsize=3, color=PALETTE[0], label="LLC (mean ± sd over chains)")
        ax.set_xlabel("training step")
        ax.set_ylabel("local learning coefficient", color=PALETTE[0])
        twin = ax.twinx()
        twin.plot(steps, [r["test_acc"] for r in rows], marker="s", color=PALETTE[3], label="test accuracy")
        twin.set_ylabel("test accuracy", color=PALETTE[3])
        twin.set_ylim(0, 1.05)
        ax.set_title(f"LLC along a grokking run ({args.run})", fontsize=10)
        fig.legend(loc="upper left", fontsize=8, bbox_to_anchor=(0.12, 0.9))
        save_figure(fig, args.out, force=args.force)
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
