"""NUTS on the normal-crossing target: ours (BlackJAX via ``run_chains``) vs NumPyro.

The job: ``U(x) = x0^2 x1^2`` on the box [-1, 1]^2 at ``beta = 20``, sampled
through the sigmoid bijection of the box; 8 chains, 500 warmup, 2000 draws.

* ours: ``run_chains(key, build_sampler("nuts", toy_target("normal-crossing",
  beta=20)), ...)`` as the CLI runs it: one host device per core
  (``samplers.placement.use_host_cores``, called before JAX starts), the
  chains spread over them, one dispatch thread per device (2 cores here: 2
  devices of 4 chains); a row with everything on one device shows what that
  placement is worth;
* peer: the same density as a NumPyro model (two ``Uniform(-1, 1)`` sites and
  ``numpyro.factor("u", -beta x0^2 x1^2)``, so NumPyro applies its own
  sigmoid transform), ``MCMC(NUTS(model), num_warmup=500, num_samples=2000,
  num_chains=8, chain_method="vectorized")`` (the issue's peer; it runs on one
  device). NumPyro's ``chain_method="sequential"`` under ``jax.jit`` is
  reported too: on a CPU it is NumPyro's fastest way here (its "parallel"
  needs a device per chain and falls back to sequential with 2 devices for 8
  chains).

Why beta = 20: the density exp(-20 x0^2 x1^2) puts its mass on a cross along
the two axes (arms of width about 1/(sqrt(40) |x_other|)), the singular
geometry the project is about; NUTS must change its trajectory length between
the arms and the centre (mean tree depth ~2.7) but neither sampler diverges, so
the ESS comparison is about speed, not about failure. It is also the beta the
CLI examples and ``bench_cache.py`` use.

ESS: the minimum over the two coordinates of ``arviz.ess(method="bulk")`` of
the draws in box coordinates (chains x draws x 2).

Measured:

(a) once compiled: ESS per second of the second and later runs (new seeds) in
    one process. NumPyro's ``MCMC.run`` recompiles its sampling loop on every
    call (about 5 s here: the jitted loop is rebuilt for each run), so the
    fair compiled peer is ``MCMC.run`` wrapped in ``jax.jit`` (its compiled
    program is reused); the plain second ``mcmc.run`` is reported separately.
    Two times are reported: warmup + draws (the whole job) and draws only
    (ours: ``Trace.sampling_seconds``; NumPyro: ``mcmc.warmup`` and then
    ``mcmc.run`` from ``post_warmup_state``, each jitted).
(b) end to end: a fresh Python process per run (imports, tracing, compiling,
    sampling, no persistent compilation cache), wall time seen by the parent;
    ESS computed by the parent from the draws the child saved.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samplers.placement import use_host_cores  # noqa: E402

use_host_cores()  # as the CLI does, before anything starts JAX's backend

from common import (  # noqa: E402
    PYTHON,
    bench_args,
    clean_env,
    interleave,
    machine,
    print_results,
    result,
    run_child,
    save_json,
)

BETA = 20.0
FULL = {"chains": 8, "warmup": 500, "draws": 2000, "reps": 10, "e2e_reps": 5, "rerun_reps": 2}
QUICK = {"chains": 4, "warmup": 100, "draws": 200, "reps": 2, "e2e_reps": 1, "rerun_reps": 1}


def min_ess(x: np.ndarray) -> float:
    """Min over coordinates of ArviZ's bulk ESS; ``x`` is (chains, draws, 2)."""
    import arviz as az

    return float(np.min(az.ess(np.asarray(x, dtype=np.float64), method="bulk")))


# ----------------------------------------------------------------- ours


def make_ours(size: dict, devices: int | None = None):
    """``devices``: how many local devices (``None``: all of them, the default of a run)."""
    import jax

    from models.toy import toy_target
    from samplers.kernels import build_sampler
    from samplers.run import run_chains

    target = toy_target("normal-crossing", beta=BETA)
    sampler = build_sampler("nuts", target)  # one object: its jitted functions are cached

    def job(seed: int) -> dict:
        init_key, run_key = jax.random.split(jax.random.key(1000 + seed))
        positions = target.init_fn(init_key, size["chains"])
        start = time.perf_counter()
        trace = run_chains(
            run_key,
            sampler,
            positions,
            record_fn=target.record_fn,
            num_warmup=size["warmup"],
            num_draws=size["draws"],
            progress=False,
            devices=devices,
        )
        total = time.perf_counter() - start
        x = trace.draws["x"]
        return {
            "total_s": total,
            "draws_s": trace.sampling_seconds,
            "ess": min_ess(x),
            "divergences": int(np.sum(trace.stats["diverging"])),
            "tree_depth": float(np.mean(trace.stats["tree_depth"])),
            "step_size": float(np.mean(trace.params["step_size"])),
        }

    return job


# ----------------------------------------------------------------- NumPyro


def numpyro_model(beta: float = BETA):
    import numpyro
    import numpyro.distributions as dist

    def model():
        x0 = numpyro.sample("x0", dist.Uniform(-1.0, 1.0))
        x1 = numpyro.sample("x1", dist.Uniform(-1.0, 1.0))
        numpyro.factor("u", -beta * x0**2 * x1**2)

    return model


def make_mcmc(size: dict, chain_method: str = "vectorized"):
    from numpyro.infer import MCMC, NUTS

    return MCMC(
        NUTS(numpyro_model()),
        num_warmup=size["warmup"],
        num_samples=size["draws"],
        num_chains=size["chains"],
        chain_method=chain_method,
        progress_bar=False,
    )


def _stack(samples) -> np.ndarray:
    return np.stack([np.asarray(samples["x0"]), np.asarray(samples["x1"])], axis=-1)


def make_peer_jit(size: dict, chain_method: str = "vectorized"):
    """``mcmc.run`` inside ``jax.jit``: compiled once, reused for new keys."""
    import jax

    mcmc = make_mcmc(size, chain_method)

    @jax.jit
    def full(key):
        mcmc.run(key)
        return mcmc.get_samples(group_by_chain=True), mcmc.get_extra_fields(group_by_chain=True)

    def job(seed: int) -> dict:
        start = time.perf_counter()
        samples, extra = jax.block_until_ready(full(jax.random.key(2000 + seed)))
        x = _stack(samples)
        total = time.perf_counter() - start
        return {"total_s": total, "ess": min_ess(x), "divergences": int(np.sum(extra["diverging"]))}

    return job


def make_peer_split(size: dict):
    """Jitted ``mcmc.warmup`` then jitted ``mcmc.run`` from ``post_warmup_state``: draws timed alone."""
    import jax

    mcmc = make_mcmc(size)

    @jax.jit
    def warm(key):
        mcmc.warmup(key)
        state = mcmc.post_warmup_state
        mcmc.post_warmup_state = None
        return state

    @jax.jit
    def draws(state, key):
        mcmc.post_warmup_state = state
        mcmc.run(key)
        mcmc.post_warmup_state = None
        return mcmc.get_samples(group_by_chain=True)

    def job(seed: int) -> dict:
        start = time.perf_counter()
        state = jax.block_until_ready(warm(jax.random.key(3000 + seed)))
        mid = time.perf_counter()
        x = _stack(jax.block_until_ready(draws(state, jax.random.key(4000 + seed))))
        end = time.perf_counter()
        return {"total_s": end - start, "draws_s": end - mid, "ess": min_ess(x)}

    return job


def make_peer_rerun(size: dict):
    """Plain ``mcmc.run`` again on the same MCMC object (NumPyro's documented usage)."""
    import jax

    mcmc = make_mcmc(size)

    def job(seed: int) -> dict:
        start = time.perf_counter()
        mcmc.run(jax.random.key(5000 + seed))
        x = _stack(jax.block_until_ready(mcmc.get_samples(group_by_chain=True)))
        total = time.perf_counter() - start
        return {"total_s": total, "ess": min_ess(x)}

    return job


# ----------------------------------------------------------------- end to end (children)


def child(which: str, seed: int, out: str, size: dict) -> None:
    """Fresh process: import, build, compile, sample; save the draws (no ESS here)."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    if which == "ours":
        from models.toy import toy_target
        from samplers.kernels import build_sampler
        from samplers.run import run_chains

        target = toy_target("normal-crossing", beta=BETA)
        init_key, run_key = jax.random.split(jax.random.key(6000 + seed))
        trace = run_chains(
            run_key,
            build_sampler("nuts", target),
            target.init_fn(init_key, size["chains"]),
            record_fn=target.record_fn,
            num_warmup=size["warmup"],
            num_draws=size["draws"],
            progress=False,
        )
        x = trace.draws["x"]
    else:
        mcmc = make_mcmc(size)
        mcmc.run(jax.random.key(7000 + seed))
        x = _stack(mcmc.get_samples(group_by_chain=True))
    np.save(out, np.asarray(x))
    print(json.dumps({"which": which, "shape": list(np.shape(x))}))


def end_to_end(size: dict, reps: int) -> dict[str, list[dict]]:
    script = str(Path(__file__).resolve())
    env = clean_env()
    sizes = [
        "--chains",
        str(size["chains"]),
        "--warmup",
        str(size["warmup"]),
        "--draws",
        str(size["draws"]),
    ]
    with tempfile.TemporaryDirectory() as tmp:

        def make(which):
            def job(seed: int) -> dict:
                out = str(Path(tmp) / f"{which}-{seed}.npy")
                wall, _ = run_child(
                    [PYTHON, script, "--child", which, "--seed", str(seed), "--out", out, *sizes],
                    env=env,
                )
                ess = min_ess(np.load(out))
                return {"total_s": wall, "ess": ess}

            return job

        return interleave({"ours": make("ours"), "peer": make("numpyro")}, reps)


# ----------------------------------------------------------------- main


def main(quick: bool = False, reps: int | None = None) -> list[dict]:
    size = dict(QUICK if quick else FULL)
    if reps:
        size.update(reps=reps, e2e_reps=reps, rerun_reps=max(1, reps // 2))
    mach = machine()
    job = f"{size['chains']} chains, {size['warmup']} warmup, {size['draws']} draws, beta {BETA:g}"
    results = []

    # (a) compiled, in one process, interleaved: ours (all cores, one device), NumPyro jitted
    import jax

    runs = interleave(
        {
            "ours": make_ours(size),
            "one": make_ours(size, devices=1),
            "peer": make_peer_jit(size),
            "split": make_peer_split(size),
            "sequential": make_peer_jit(size, "sequential"),
        },
        size["reps"],
        warmup=True,
    )
    ours, one, peer, split, seq = (runs[k] for k in ("ours", "one", "peer", "split", "sequential"))
    detail = {
        "devices": jax.local_device_count(),
        "ours": {k: [r[k] for r in ours] for k in ours[0]},
        "ours_one_device": {k: [r[k] for r in one] for k in one[0]},
        "numpyro_jit": {k: [r[k] for r in peer] for k in peer[0]},
        "numpyro_split": {k: [r[k] for r in split] for k in split[0]},
        "numpyro_sequential_jit": {k: [r[k] for r in seq] for k in seq[0]},
    }
    placement = f"ours on {jax.local_device_count()} host devices (one per core, the CLI's default)"
    results.append(
        result(
            "nuts_ess_per_s_compiled",
            ours=[r["ess"] / r["total_s"] for r in ours],
            peer=[r["ess"] / r["total_s"] for r in peer],
            peer_name="NumPyro NUTS vectorized, MCMC.run under jax.jit",
            unit="ESS/s",
            target=3.0,
            mach=mach,
            extra=detail,
            notes=f"{job}; warmup + draws, compile excluded (second and later runs, new seeds); "
            f"{placement}; ESS = min bulk ESS over x0, x1 in box coordinates",
        )
    )
    results.append(
        result(
            "nuts_ess_per_s_compiled_draws_only",
            ours=[r["ess"] / r["draws_s"] for r in ours],
            peer=[r["ess"] / r["draws_s"] for r in split],
            peer_name="NumPyro: jitted mcmc.run from post_warmup_state",
            unit="ESS/s",
            target=3.0,
            mach=mach,
            notes=f"{job}; draws only (ours: Trace.sampling_seconds; NumPyro: the run after a "
            f"separate jitted mcmc.warmup); {placement}",
        )
    )
    results.append(
        result(
            "nuts_ess_per_s_compiled_one_device",
            ours=[r["ess"] / r["total_s"] for r in one],
            peer=[r["ess"] / r["total_s"] for r in peer],
            peer_name="NumPyro NUTS vectorized, MCMC.run under jax.jit",
            unit="ESS/s",
            mach=mach,
            notes=f"{job}; ours with every chain on one device (run_chains(devices=1)): what the "
            "placement over cores is worth, by difference with nuts_ess_per_s_compiled",
        )
    )
    results.append(
        result(
            "nuts_ess_per_s_vs_numpyro_sequential",
            ours=[r["ess"] / r["total_s"] for r in ours],
            peer=[r["ess"] / r["total_s"] for r in seq],
            peer_name="NumPyro NUTS chain_method='sequential', MCMC.run under jax.jit",
            unit="ESS/s",
            mach=mach,
            notes=f"{job}; NumPyro's fastest configuration on this CPU (no vmap: each chain runs "
            f"its own trajectory lengths); {placement}",
        )
    )

    # NumPyro's plain second mcmc.run, for the record (it recompiles each call)
    runs = interleave(
        {"ours": make_ours(size), "peer": make_peer_rerun(size)}, size["rerun_reps"], warmup=True
    )
    results.append(
        result(
            "nuts_ess_per_s_vs_plain_rerun",
            ours=[r["ess"] / r["total_s"] for r in runs["ours"]],
            peer=[r["ess"] / r["total_s"] for r in runs["peer"]],
            peer_name="NumPyro: second plain mcmc.run (recompiles each call)",
            unit="ESS/s",
            mach=mach,
            extra={"peer_seconds": [r["total_s"] for r in runs["peer"]]},
            notes=f"{job}; NumPyro's MCMC.run rebuilds and recompiles its sampling loop on every "
            "call, so its 'second run' still pays ~5 s of XLA compilation",
        )
    )

    # (b) end to end, fresh processes, interleaved
    e2e = end_to_end(size, size["e2e_reps"])
    results.append(
        result(
            "nuts_ess_per_s_end_to_end",
            ours=[r["ess"] / r["total_s"] for r in e2e["ours"]],
            peer=[r["ess"] / r["total_s"] for r in e2e["peer"]],
            peer_name="NumPyro NUTS vectorized, plain mcmc.run",
            unit="ESS/s",
            target=1.0,
            mach=mach,
            extra={
                "ours_wall_s": [r["total_s"] for r in e2e["ours"]],
                "peer_wall_s": [r["total_s"] for r in e2e["peer"]],
                "ours_ess": [r["ess"] for r in e2e["ours"]],
                "peer_ess": [r["ess"] for r in e2e["peer"]],
            },
            notes=f"{job}; fresh Python process each (imports + trace + XLA compile + sampling, "
            "no persistent compilation cache; ours on one host device per core, compiled once per "
            "device, concurrently), wall time measured by the parent",
        )
    )
    return results


if __name__ == "__main__":
    import argparse

    if "--child" in sys.argv:
        p = argparse.ArgumentParser()
        p.add_argument("--child", choices=["ours", "numpyro"])
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--out", required=True)
        p.add_argument("--chains", type=int, default=FULL["chains"])
        p.add_argument("--warmup", type=int, default=FULL["warmup"])
        p.add_argument("--draws", type=int, default=FULL["draws"])
        a = p.parse_args()
        child(a.child, a.seed, a.out, {"chains": a.chains, "warmup": a.warmup, "draws": a.draws})
        sys.exit(0)
    args = bench_args(__doc__.splitlines()[0])
    res = main(quick=args.quick, reps=args.reps)
    print_results(res)
    save_json(res, args.json)
