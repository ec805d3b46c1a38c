"""``surf demo``: the main job on built-in defaults (what ``make demo`` runs)."""

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
        description="NUTS on the seed's cross potential against the exact Gibbs occupancy.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--force", action="store_true", help="replace the demo's earlier outputs")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from surf import sample
    from surf.cli import build_parser

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder; choose another --out")
    start = time.perf_counter()
    nc = out / "sample_cross_nuts.nc"
    argv = ["sample", "--model", "cross", "--param", "lam=0", "--beta", "20", "--sampler", "nuts",
            "--chains", "8", "--warmup", "500", "--draws", "2000", "--seed", "0", "--out", str(nc)]
    if args.force:
        argv.append("--force")
    if args.quiet:
        argv.append("--quiet")
    sample_args = build_parser().parse_args(argv)
    sample.run(sample_args)
    print(f"demo finished in {time.perf_counter() - start:.1f} s; results in {out}/")
    return 0
