"""The seed's noisy SGD on 10^6 runs: ours (``run_final_positions``) vs plain NumPy; then a profile.

The job (SCIENCE.md section 2, the "vanilla" panel): cross potential
``U = a min(x0^2, x1^2)`` with a = 100, lam = 0; eps = 0.01, eta = 1e-3,
T = 100 steps, momentum 0; 10^6 independent runs from uniform starts on
[-1, 1]^2; only the final positions are kept.

* ours: ``samplers.run.run_final_positions`` with the ``sgd`` sampler, as
  ``surf.sgd.sgd_experiment`` calls it (its default batch of 131 072 runs),
  compiled (a first call on the same batch shape is not timed), as the CLI
  runs it: ``use_host_cores`` first (one host device per core, each batch
  split over them; 512-bit vectors on an AVX-512 CPU); a row with one device
  shows what the cores are worth;
* peer: vectorized NumPy, float32, the same update in place,
  ``rng.standard_normal(dtype=np.float32)`` for the noise.

Unit: particle-steps per second (runs x steps / seconds).

The profile undoes one of ours' speed-ups at a time, in rounds interleaved
with ours: the unrolled Threefry keys of ``samplers.threefry``, the cross
written without a reduction, 512-bit vectors (in child processes); then batch
sizes and the fixed cost of a batch.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samplers.placement import use_host_cores  # noqa: E402

use_host_cores()  # ours as the CLI runs it: a host device per core (before JAX starts)

from common import interleave, machine, print_results, result, save_json  # noqa: E402

A, LAM, EPS, ETA, T = 100.0, 0.0, 0.01, 1e-3, 100
DEFAULT_BATCH = 131_072  # run_final_positions' and surf sgd's default
FULL = {
    "runs": 1_000_000,
    "reps": 5,
    "experiment_reps": 2,
    "profile_runs": 2**18,
    "profile_reps": 3,
    "sweep_runs": 2**19,
    "sweep_sizes": (32768, 65536, 131072, 524288),
    "sweep_reps": 2,
}
QUICK = {
    "runs": 2**15,
    "reps": 2,
    "experiment_reps": 1,
    "profile_runs": 2**13,
    "profile_reps": 1,
    "sweep_runs": 2**14,
    "sweep_sizes": (4096, 16384),
    "sweep_reps": 1,
}


def numpy_sgd(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    a=A,
    lam=LAM,
    eta=ETA,
    eps=EPS,
    steps=T,
    c=(-1.0, -1.0),
) -> np.ndarray:
    """Noisy gradient descent on the cross, float32, vectorized over runs, in place.

    ``x <- x - eta grad U(x) + eps N(0, I)`` with ``grad U = 2 a x_i`` on the
    coordinate with the smaller square (the other is 0), plus ``lam (x - c)``.
    """
    x = np.array(x, dtype=np.float32, copy=True)
    sq = np.empty_like(x)
    g = np.empty_like(x)
    two_a_eta, e = np.float32(2 * a * eta), np.float32(eps)
    for _ in range(steps):
        np.multiply(x, x, out=sq)
        first = sq[:, 0] < sq[:, 1]  # x0^2 < x1^2: the valley term acts on x0
        np.multiply(x, two_a_eta, out=g)
        g[:, 0] *= first
        g[:, 1] *= ~first
        if lam:
            g += np.float32(eta * lam) * (x - np.asarray(c, np.float32))
        x -= g
        x += e * rng.standard_normal(x.shape, dtype=np.float32)
    return x


def _setup(num_runs: int, seed: int = 0):
    import jax

    from models.toy import toy_target
    from samplers.kernels import SamplerOptions, build_sampler

    target = toy_target("cross", {"a": A, "lam": LAM, "box": "none"}, beta=1.0)
    sampler = build_sampler("sgd", target, SamplerOptions(step_size=ETA, noise=EPS, momentum=0.0))
    init_key, run_key = jax.random.split(jax.random.key(seed))
    positions = target.init_fn(init_key, num_runs)
    return target, sampler, positions, run_key


def _record(z):
    return {"x": z}


def make_ours(num_runs: int, batch_size: int = DEFAULT_BATCH, devices: int | None = None):
    import jax

    from samplers.run import run_final_positions

    _, sampler, positions, run_key = _setup(num_runs)
    # compile the batch shape once (untimed)
    run_final_positions(
        run_key,
        sampler,
        positions[: min(batch_size, num_runs)],
        num_steps=T,
        record_fn=_record,
        batch_size=batch_size,
        progress=False,
        devices=devices,
    )

    def job(seed: int) -> dict:
        start = time.perf_counter()
        out = run_final_positions(
            jax.random.fold_in(run_key, seed + 1),
            sampler,
            positions,
            num_steps=T,
            record_fn=_record,
            batch_size=batch_size,
            progress=False,
            devices=devices,
        )["x"]
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rate": num_runs * T / seconds, "final": out}

    return job


def make_numpy(num_runs: int):
    _, _, positions, _ = _setup(num_runs)
    x0 = np.asarray(positions)

    def job(seed: int) -> dict:
        rng = np.random.default_rng(seed + 1)
        start = time.perf_counter()
        out = numpy_sgd(x0, rng)
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "rate": num_runs * T / seconds, "final": out}

    return job


def make_experiment(num_runs: int):
    from surf.sgd import sgd_experiment

    def job(seed: int) -> dict:
        start = time.perf_counter()
        res = sgd_experiment(
            lam=LAM,
            noise=EPS,
            momentum=0.0,
            lr=ETA,
            steps=T,
            runs=num_runs,
            a=A,
            seed=seed + 1,
            progress=False,
        )
        seconds = time.perf_counter() - start
        return {
            "seconds": seconds,
            "rate": num_runs * T / seconds,
            "reported_rate": res["summary"]["particle_steps_per_second"],
        }

    return job


def _near_origin(x: np.ndarray, r: float = 0.1) -> float:
    return float(np.mean(np.linalg.norm(x, axis=1) < r))


# ----------------------------------------------------------------- profile


def _summed_cross(x):
    """The cross as it was written before: the lam term through ``jnp.sum(axis=-1)``."""
    import jax.numpy as jnp

    valley = A * jnp.minimum(x[..., 0] ** 2, x[..., 1] ** 2)
    return valley + 0.5 * LAM * jnp.sum((x - jnp.asarray((-1.0, -1.0), x.dtype)) ** 2, axis=-1)


def _child_rate(num_runs: int, reps: int) -> None:
    """In a child process (its own ``XLA_FLAGS``): ours' rate, ``reps`` timed calls, as JSON."""
    import json

    job = make_ours(num_runs)
    print(json.dumps([job(i)["rate"] for i in range(reps)]))


def _rate_with_flags(flags: str, num_runs: int, reps: int) -> float:
    import json
    import subprocess

    env = dict(os.environ, XLA_FLAGS=flags)
    cmd = [sys.executable, __file__, "--child-rate", str(num_runs), "--reps", str(reps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return float(np.median(json.loads(out.strip().splitlines()[-1])))


def profile(size: dict, mach: dict) -> list[dict]:
    """What each of ours' speed-ups is worth: the package with one of them undone, vs as it is.

    Rounds interleaved with ours as the CLI runs it (every core). Undone in turn:
    the unrolled Threefry keys (``samplers.threefry``; JAX's rolled CPU lowering
    instead), the reduction-free cross (``jnp.sum`` over the size-2 axis, as
    before), 512-bit vectors (XLA's default 256, in child processes, since XLA
    reads its flags at start-up); then batch sizes and the fixed cost of a batch.
    """
    import jax

    from models.toy import make_loss_target
    from samplers import run as run_module
    from samplers.kernels import SamplerOptions, build_sampler
    from samplers.run import run_final_positions

    out: list[dict] = []
    n, reps = size["profile_runs"], size["profile_reps"]
    target, sampler, positions, run_key = _setup(n)
    ours = make_ours(n)

    def timed(sampler_, key=None):
        def job(seed):
            start = time.perf_counter()
            final = run_final_positions(
                jax.random.fold_in(key if key is not None else run_key, seed + 1), sampler_, positions,
                num_steps=T, record_fn=_record, progress=False,
            )["x"]
            return {"rate": n * T / (time.perf_counter() - start), "final": final}

        return job

    # 1. JAX's rolled Threefry: trace a new sampler (its own compiled programs) with the relabeling off
    rolled_sampler = build_sampler("sgd", target, SamplerOptions(step_size=ETA, noise=EPS, momentum=0.0))
    rolled = timed(rolled_sampler)
    relabel = run_module.unrolled
    run_module.unrolled = lambda key: key
    try:
        rolled(-1)  # traced and compiled now, with the hash as JAX lowers it on CPU
    finally:
        run_module.unrolled = relabel
    # 2. the cross summed with jnp.sum
    summed = make_loss_target("cross (jnp.sum)", _summed_cross, 2, beta=1.0, init_low=-1.0, init_high=1.0)
    summed_sampler = build_sampler("sgd", summed, SamplerOptions(step_size=ETA, noise=EPS, momentum=0.0))
    summed_job = timed(summed_sampler)
    summed_job(-1)
    rates = interleave({"ours": ours, "rolled": rolled, "summed": summed_job}, reps)
    same = bool(np.array_equal(rates["ours"][0]["final"], rates["rolled"][0]["final"], equal_nan=True))
    for key, name, notes in [
        ("rolled", "sgd_profile: JAX's rolled Threefry lowering instead of samplers.threefry",
         f"the run loop's relabeling to the unrolled keys turned off; final positions bit-identical: {same}"),
        ("summed", "sgd_profile: cross with jnp.sum over the size-2 axis (as before)",
         "a loss target with the lam term as jnp.sum((x - c)**2, axis=-1): on CPU the reduction, feeding "
         "the per-step finite check, made XLA split each step into multi-threaded kernels"),
    ]:
        out.append(
            result(
                name,
                ours=[r["rate"] for r in rates[key]],
                peer=[r["rate"] for r in rates["ours"]],
                peer_name="ours (run_final_positions, every core)",
                unit="particle-steps/s",
                mach=mach,
                prototype=True,
                notes=f"{n} runs x {T} steps; ratio = variant / package; " + notes,
            )
        )

    # 3. XLA's default 256-bit vectors vs ours (512 on an AVX-512 CPU), one child process per round
    from samplers.placement import _VECTOR_FLAG, _has_avx512

    if _has_avx512():
        base = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(_VECTOR_FLAG))
        wide, narrow = [], []
        for _ in range(reps):
            narrow.append(_rate_with_flags(f"{base} {_VECTOR_FLAG}=256", n, 2))
            wide.append(_rate_with_flags(f"{base} {_VECTOR_FLAG}=512", n, 2))
        out.append(
            result(
                "sgd_profile: XLA's default 256-bit vectors instead of 512",
                ours=narrow,
                peer=wide,
                peer_name="ours (512-bit vectors, as use_host_cores sets them on AVX-512)",
                unit="particle-steps/s",
                mach=mach,
                prototype=True,
                notes=f"{n} runs x {T} steps; one child process per measurement (XLA reads its flags at "
                "start-up), the median of 2 timed calls each; ratio = 256 / 512",
            )
        )

    # 4. batch sizes, ours vs the default batch size in the same round
    nb = size["sweep_runs"]
    sweep = {
        f"batch {b}": (lambda job: lambda s: job(s)["rate"])(make_ours(nb, b)) for b in size["sweep_sizes"]
    }
    rates = interleave(sweep, size["sweep_reps"])
    default = f"batch {DEFAULT_BATCH}" if f"batch {DEFAULT_BATCH}" in rates else next(iter(rates))
    for b in size["sweep_sizes"]:
        out.append(
            result(
                f"sgd_profile: ours, batch size {b}",
                ours=rates[f"batch {b}"],
                peer=rates[default],
                peer_name=f"ours, {default}",
                unit="particle-steps/s",
                mach=mach,
                prototype=True,
                notes=f"{nb} runs x {T} steps; the package at another --batch-size",
            )
        )

    # 5. fixed cost per batch: T = 1 step, 16 batches of 4096
    def overhead(seed):
        start = time.perf_counter()
        run_final_positions(
            run_key, sampler, positions[: 16 * 4096], num_steps=1, record_fn=_record, batch_size=4096,
            progress=False,
        )
        return (time.perf_counter() - start) / 16

    overhead(-1)
    per_batch = [overhead(i) for i in range(3)]
    out.append(
        {
            "name": "sgd_profile: fixed cost per batch (T = 1, batch 4096)",
            "ours": float(np.median(per_batch)),
            "peer": None,
            "peer_name": None,
            "unit": "s/batch",
            "ratio": None,
            "runs": len(per_batch),
            "machine": mach,
            "prototype": True,
            "spread": {
                "ours": {
                    "median": float(np.median(per_batch)),
                    "min": min(per_batch),
                    "max": max(per_batch),
                    "n": len(per_batch),
                }
            },
            "notes": "run_chains' Python, key derivation and dispatch per batch",
        }
    )
    return out


# ----------------------------------------------------------------- main


def main(quick: bool = False, reps: int | None = None, do_profile: bool = True) -> list[dict]:
    size = dict(QUICK if quick else FULL)
    if reps:
        size["reps"] = reps
    mach = machine()
    n = size["runs"]
    import jax

    runs = interleave({"ours": make_ours(n), "one": make_ours(n, devices=1), "numpy": make_numpy(n)}, size["reps"])
    ours, one, peer = runs["ours"], runs["one"], runs["numpy"]
    check = {
        "devices": jax.local_device_count(),
        "ours_P(|x|<0.1)": [_near_origin(r["final"]) for r in ours],
        "numpy_P(|x|<0.1)": [_near_origin(r["final"]) for r in peer],
        "ours_seconds": [r["seconds"] for r in ours],
        "numpy_seconds": [r["seconds"] for r in peer],
    }
    results = [
        result(
            "sgd_particle_steps_per_s",
            ours=[r["rate"] for r in ours],
            peer=[r["rate"] for r in peer],
            peer_name="NumPy float32, vectorized, in place",
            unit="particle-steps/s",
            target=3.0,
            mach=mach,
            extra=check,
            notes=f"cross a={A:g} lam={LAM:g}, eps={EPS:g}, eta={ETA:g}, T={T}, momentum 0, {n} runs; "
            f"ours = run_final_positions (batch {DEFAULT_BATCH}), compiled, on {jax.local_device_count()} host "
            "devices (one per core, the CLI's default); same statistics checked "
            "(fraction of runs within 0.1 of the origin in extra)",
        ),
        result(
            "sgd_particle_steps_per_s_one_device",
            ours=[r["rate"] for r in one],
            peer=[r["rate"] for r in peer],
            peer_name="NumPy float32, vectorized, in place",
            unit="particle-steps/s",
            mach=mach,
            notes="as sgd_particle_steps_per_s with every run on one device (devices=1)",
        ),
    ]
    runs = interleave({"ours": make_experiment(n), "numpy": make_numpy(n)}, size["experiment_reps"], warmup=True)
    results.append(
        result(
            "sgd_experiment_particle_steps_per_s",
            ours=[r["rate"] for r in runs["ours"]],
            peer=[r["rate"] for r in runs["numpy"]],
            peer_name="NumPy float32, vectorized, in place (the runs only)",
            unit="particle-steps/s",
            mach=mach,
            extra={"reported_by_summary": [r["reported_rate"] for r in runs["ours"]]},
            notes="surf.sgd.sgd_experiment end to end, repeated in one process (as in a sweep or "
            "--panels; one untimed call first: the sampler is cached per setting, so later calls do "
            "not trace again): the runs plus the initial positions, occupancy, stickiness and the "
            "Gibbs reference by quadrature (once per setting), which the peer does not compute, so "
            "no target: the issue's 3x is the runs' rate (sgd_particle_steps_per_s)",
        )
    )
    if do_profile:
        results += profile(size, mach)
    return results


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int)
    p.add_argument("--json")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--child-rate", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child_rate:
        _child_rate(a.child_rate, a.reps or 2)
        sys.exit(0)
    res = main(quick=a.quick, reps=a.reps, do_profile=not a.no_profile)
    print_results(res)
    save_json(res, a.json)
