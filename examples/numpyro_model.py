"""Sample a small NumPyro model with the toolkit's NUTS and read ArviZ's summary.

A linear regression ``y = a + b x + noise`` with ``noise ~ N(0, sigma^2)``, on
synthetic data drawn from known values. ``sigma`` is a constrained site
(positive): :func:`models.numpyro_bridge.numpyro_target` lets NumPyro's own
transform handle it, so the chains move in unconstrained space and the draws
come back as ``sigma > 0``.

Run it::

    python examples/numpyro_model.py                    # 4 chains x 1000 draws
    python examples/numpyro_model.py --draws 50         # a quick look
    SURF_EXAMPLE_DRAWS=50 python examples/numpyro_model.py

The same model from the command line (the CLI calls a model with no
arguments, so :func:`regression` closes over the synthetic data)::

    surf sample --numpyro examples/numpyro_model.py:regression --sampler nuts
"""

from __future__ import annotations

import argparse
import os
import time

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from diagnostics.arviz_io import save_datatree, trace_to_datatree
from diagnostics.summary import convergence, warnings_for
from models.numpyro_bridge import numpyro_target
from samplers.kernels import build_sampler
from samplers.run import run_chains

TRUE = {"a": 1.0, "b": -2.0, "sigma": 0.5}


def model(x, y=None):
    a = numpyro.sample("a", dist.Normal(0.0, 5.0))
    b = numpyro.sample("b", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(2.0))
    numpyro.sample("y", dist.Normal(a + b * x, sigma), obs=y)


def synthetic_data(seed: int, n: int = 50):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=n).astype(np.float32)
    y = TRUE["a"] + TRUE["b"] * x + TRUE["sigma"] * rng.normal(size=n).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(y)


def regression():
    """``model`` on the synthetic data of seed 0, callable with no arguments (for the CLI)."""
    x, y = synthetic_data(0)
    model(x, y)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--draws",
        type=int,
        default=int(os.environ.get("SURF_EXAMPLE_DRAWS", 1000)),
        help="draws per chain (default: $SURF_EXAMPLE_DRAWS or 1000)",
    )
    p.add_argument("--warmup", type=int, default=None, help="warmup steps (default: min(500, draws))")
    p.add_argument("--chains", type=int, default=4)
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
    x, y = synthetic_data(args.seed)

    # The model as a Target: log density on unconstrained sites, draws reported constrained.
    target = numpyro_target(model, model_args=(x, y), name="linear-regression")

    init_key, run_key = jax.random.split(jax.random.key(args.seed))
    start = time.perf_counter()
    trace = run_chains(
        run_key,
        build_sampler("nuts", target),
        target.init_fn(init_key, args.chains),
        record_fn=target.record_fn,
        num_warmup=args.warmup,
        num_draws=args.draws,
        progress=False,
    )
    seconds = time.perf_counter() - start

    config = {**target.config, "sampler": "nuts", "chains": args.chains, "draws": args.draws,
              "warmup": args.warmup, "seed": args.seed, "true_values": TRUE}
    dt = trace_to_datatree(trace, config=config, kind="example")
    if args.out:
        save_datatree(dt, args.out, force=args.force)

    print(f"NUTS on a NumPyro linear regression (n = {x.shape[0]}): "
          f"{args.chains} chains x {args.draws} draws in {seconds:.1f} s")
    summary = az.summary(dt)
    summary.insert(0, "true", [TRUE.get(name, float("nan")) for name in summary.index])
    print(summary.to_string())
    diag = convergence(dt)
    rhat = "n/a" if diag["rhat_max"] is None else f"{diag['rhat_max']:.3f}"
    print(f"min ESS (bulk) {diag['ess_bulk_min']:.0f}, max R-hat {rhat}, "
          f"divergences {diag['divergences']}")
    for warning in warnings_for(diag, num_chains=args.chains):
        print(f"warning: {warning}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
