"""``surf demo``: the main job on built-in defaults (what ``make demo`` runs).

1. NUTS on the seed's cross potential, with the exact Gibbs occupancy beside it;
2. the post's three noisy-SGD panels and their stickiness;
3. every sampler's occupancy near the singularity against the exact value;
4. a grokking run on modular addition (AdamW with weight decay);
5. HMC on its weights at the equipartition temperature, from the checkpoint at
   step 3000 (about where test accuracy crosses 50%);
6. the HTML report over all of it (``report.html``).

Everything lands in one folder (default ``runs/demo/``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from surf.common import UserError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="run the main job on built-in defaults",
        description="NUTS on the cross potential, the seed's SGD panels, and a sampler "
        "comparison against the exact Gibbs occupancy, all in one folder.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--force", action="store_true", help="replace the demo's earlier outputs")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
    return p


def _steps(out: Path) -> list[tuple[str, list[str]]]:
    return [
        (
            "1/6 NUTS on the cross potential (lam 0, beta 20)",
            ["sample", "--model", "cross", "--param", "lam=0", "--beta", "20", "--sampler", "nuts",
             "--mass-matrix", "identity", "--chains", "8", "--warmup", "500", "--draws", "2000",
             "--seed", "0", "--out", str(out / "sample_cross_nuts.nc")],
        ),
        (
            "2/6 the seed's three noisy-SGD panels",
            ["sgd", "--panels", "seed", "--seed", "0", "--out", str(out / "sgd_panels.png")],
        ),
        (
            "3/6 sampler bias near the singularity (cross, beta 20)",
            ["compare", "--model", "cross", "--beta", "20", "--chains", "8", "--draws", "2000",
             "--warmup", "500", "--seed", "0", "--out", str(out / "compare")],
        ),
        (
            "4/6 grokking (a + b) mod 53 with AdamW and weight decay",
            ["grok", "--steps", "6000", "--seed", "0", "--out", str(out / "grok")],
        ),
        (
            "5/6 HMC on the weights at the equipartition temperature (from step 3000)",
            ["explore", "--from", str(out / "grok" / "checkpoint_3000"), "--sampler", "hmc",
             "--beta", "equipartition", "--chains", "2", "--warmup", "100", "--draws", "100",
             "--seed", "0", "--out", str(out / "explore_hmc.nc")],
        ),
        (
            "6/6 the HTML report over all of it",
            ["report", str(out), "--out", str(out / "report.html")],
        ),
    ]


def run(args: argparse.Namespace) -> int:
    from surf.cli import build_parser

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another --out")
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UserError(f"{out} already holds results; pass --force to replace them or choose another --out")
    start = time.perf_counter()
    parser = build_parser()
    for title, argv in _steps(out):
        print(f"\n== {title}", flush=True)
        argv = argv + (["--force"] if args.force else []) + (["--quiet"] if args.quiet else [])
        sub_args = parser.parse_args(argv)
        sub_args.func(sub_args)
    print(f"\ndemo finished in {time.perf_counter() - start:.1f} s; results in {out}/")
    print(f"open the report: {out / 'report.html'}")
    return 0
