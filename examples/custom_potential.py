"""Sample your own 2-D loss with the Python API, and measure time spent at its singularity.

The loss here is a cusp, ``U(x) = (x0^2 - x1^3)^2`` on the box ``[-1, 1]^2``: it
vanishes on the curve ``x0^2 = x1^3``, which is singular (not a smooth curve)
at the origin. At inverse temperature ``beta`` the Gibbs density is
``exp(-beta U)``; the script samples it with many chains, writes an ArviZ
netCDF file if asked, and compares the fraction of draws within ``radius`` of
the origin with the exact value from a quadrature on a fine grid.

Run it::

    python examples/custom_potential.py                 # 8 chains x 2000 draws
    python examples/custom_potential.py --draws 50      # a quick look
    SURF_EXAMPLE_DRAWS=50 python examples/custom_potential.py

The same loss from the command line, written in a file ``cusp.py``::

    surf sample --loss cusp.py:loss --dim 2 --box=-1,1 --center=0,0 --beta 50
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from diagnostics.arviz_io import save_datatree, trace_to_datatree
from diagnostics.singularity import occupancy
from diagnostics.summary import convergence, summary_table, warnings_for
from models.target import Box
from models.toy import make_loss_target
from samplers.kernels import SAMPLERS, SamplerOptions, build_sampler
from samplers.run import run_chains


def loss(x):
    """The cusp ``(x0^2 - x1^3)^2`` of a flat position ``x`` of length 2 (JAX-traceable)."""
    return (x[0] ** 2 - x[1] ** 3) ** 2


def exact_occupancy(beta: float, radius: float, low: float, high: float, n: int = 2001) -> float:
    """P(|x| < radius) under exp(-beta U) on the box, by the midpoint rule on an n x n grid."""
    edges = np.linspace(low, high, n + 1)
    mid = 0.5 * (edges[1:] + edges[:-1])
    x0, x1 = np.meshgrid(mid, mid, indexing="ij")
    density = np.exp(-beta * (x0**2 - x1**3) ** 2)
    inside = x0**2 + x1**2 < radius**2
    return float(density[inside].sum() / density.sum())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--draws",
        type=int,
        default=int(os.environ.get("SURF_EXAMPLE_DRAWS", 2000)),
        help="draws per chain (default: $SURF_EXAMPLE_DRAWS or 2000)",
    )
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default: min(500, draws))")
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--beta", type=float, default=50.0)
    p.add_argument("--radius", type=float, default=0.1)
    p.add_argument("--sampler", choices=SAMPLERS, default="nuts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the draws to this netCDF file")
    p.add_argument("--force", action="store_true", help="overwrite --out")
    args = p.parse_args(argv)
    if args.draws < 1 or args.chains < 1:
        p.error("--draws and --chains must be positive")
    if args.warmup is None:
        args.warmup = min(500, args.draws)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    box = Box(-1.0, 1.0)

    # 1. The target: the loss, tempered at beta, sampled through the box bijection.
    target = make_loss_target(
        "cusp",
        loss,
        2,
        beta=args.beta,
        box=box,
        singular_point=(0.0, 0.0),
        config={"example": "custom_potential", "loss": "(x0^2 - x1^3)^2"},
    )

    # 2. A sampler (NUTS adapts its step size and mass matrix during warmup).
    sampler = build_sampler(args.sampler, target, SamplerOptions())

    # 3. Many chains: chain c uses fold_in(run_key, c), so results are reproducible.
    init_key, run_key = jax.random.split(jax.random.key(args.seed))
    start = time.perf_counter()
    trace = run_chains(
        run_key,
        sampler,
        target.init_fn(init_key, args.chains),
        record_fn=target.record_fn,
        num_warmup=args.warmup,
        num_draws=args.draws,
        progress=False,
    )
    seconds = time.perf_counter() - start

    # 4. An ArviZ DataTree (posterior = x and loss per draw; sample_stats = the sampler's).
    config = {**target.config, "sampler": args.sampler, "chains": args.chains,
              "draws": args.draws, "warmup": args.warmup, "seed": args.seed}
    dt = trace_to_datatree(trace, config=config, kind="example")
    if args.out:
        save_datatree(dt, args.out, force=args.force)

    # 5. What the run says.
    print(f"{args.sampler} on U(x) = (x0^2 - x1^3)^2, beta = {args.beta:g}: "
          f"{args.chains} chains x {args.draws} draws in {seconds:.1f} s")
    print(summary_table(dt).to_string())
    diag = convergence(dt)
    print(f"min ESS (bulk) {diag['ess_bulk_min']:.0f}, max R-hat {diag['rhat_max']:.3f}, "
          f"divergences {diag['divergences']}")
    for warning in warnings_for(diag, num_chains=args.chains):
        print(f"warning: {warning}")

    occ = occupancy(trace.draws["x"], target.singular_point, args.radius)
    exact = exact_occupancy(args.beta, args.radius, box.low, box.high)
    line = f"occupancy within r={args.radius:g} of the cusp: {occ.fraction:.4f}"
    if np.isfinite(occ.mcse) and occ.mcse > 0:
        line += f" ± {occ.mcse:.4f} (z = {(occ.fraction - exact) / occ.mcse:+.2f})"
    print(f"{line}; exact Gibbs value {exact:.4f}")
    print(f"mean loss {float(jnp.nanmean(trace.draws['loss'])):.4f}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
