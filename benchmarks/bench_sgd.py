"""The seed's noisy SGD on 10^6 runs: ours (``run_final_positions``) vs plain NumPy; then a profile.

The job (SCIENCE.md section 2, the "vanilla" panel): cross potential
``U = a min(x0^2, x1^2)`` with a = 100, lam = 0; eps = 0.01, eta = 1e-3,
T = 100 steps, momentum 0; 10^6 independent runs from uniform starts on
[-1, 1]^2; only the final positions are kept.

* ours: ``samplers.run.run_final_positions`` with the ``sgd`` sampler, as
  ``surf.sgd.sgd_experiment`` calls it (batch size 65 536), compiled (a first
  call on the same batch shape is not timed), on one host device per core as
  the CLI runs it (``use_host_cores``; each batch split over them); a row
  with one device shows what that is worth;
* peer: vectorized NumPy, float32, the same update in place,
  ``rng.standard_normal(dtype=np.float32)`` for the noise.

Unit: particle-steps per second (runs x steps / seconds).

The profile (prototypes in ``sgd_prototypes.py``, never the source) times, in
rounds interleaved with ours: the fixed cost per batch, batch sizes, the
per-step non-finite check and ``where``-select, the state carried, the PRNG
implementation, how the noise is drawn, and JAX's unrolled Threefry lowering
on CPU (a process-local monkeypatch, undone afterwards).
"""

from __future__ import annotations

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
FULL = {
    "runs": 1_000_000,
    "reps": 5,
    "experiment_reps": 2,
    "profile_runs": 2**17,
    "profile_reps": 2,
    "sweep_runs": 2**19,
    "sweep_sizes": (4096, 16384, 65536, 524288),
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


def make_ours(num_runs: int, batch_size: int = 65_536, devices: int | None = None):
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


def profile(size: dict, mach: dict) -> list[dict]:
    import jax
    import sgd_prototypes as P

    from samplers.run import run_final_positions

    P.check_threefry()
    P.check_unrolled_impl()
    parity = P.check_parity(num_runs=2048 if size["profile_runs"] < 2**15 else 4096)
    assert parity == 0.0, f"faithful prototype differs from the package by {parity}"

    out: list[dict] = []
    n, reps = size["profile_runs"], size["profile_reps"]
    _, sampler, positions, run_key = _setup(n)
    ours = make_ours(n, devices=1)  # the prototypes run on one device

    # fixed cost per batch: T = 1 step, 16 batches of 4096
    def overhead(seed):
        start = time.perf_counter()
        run_final_positions(
            run_key,
            sampler,
            positions[: 16 * 4096],
            num_steps=1,
            record_fn=_record,
            batch_size=4096,
            progress=False, devices=1,
        )
        return (time.perf_counter() - start) / 16

    overhead(-1)
    per_batch = [overhead(i) for i in range(3)]

    # variants vs ours, interleaved round by round
    def variant_job(v):
        x = np.asarray(positions)
        P.run(v, x[: min(65_536, n)], run_key=run_key)  # compile

        def job(seed):
            start = time.perf_counter()
            P.run(v, x, run_key=jax.random.fold_in(run_key, seed + 1))
            return n * T / (time.perf_counter() - start)

        return job

    jobs = {"ours": lambda s: ours(s)["rate"]}
    for v in P.VARIANTS:
        jobs[v.name] = variant_job(v)
    rates = interleave(jobs, reps)
    for v in P.VARIANTS:
        out.append(
            result(
                f"sgd_profile: {v.name}",
                ours=rates[v.name],
                peer=rates["ours"],
                peer_name="ours (run_final_positions, one device)",
                unit="particle-steps/s",
                mach=mach,
                prototype=True,
                extra={"variant": v.__dict__},
                notes=f"{n} runs x {T} steps, batch 65536; ratio = prototype / package"
                + (" (bit-identical to the package)" if v == P.FAITHFUL else ""),
            )
        )

    # JAX's own unrolled Threefry lowering on CPU (monkeypatch, this process only)
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32 as tf

    _, sampler2, _, _ = _setup(n)  # a new sampler: its functions compile after the patch
    P.use_unrolled_cpu_lowering()
    P.make.cache_clear()
    try:
        ref = run_final_positions(
            run_key, sampler, positions, num_steps=T, record_fn=_record, progress=False, devices=1
        )["x"]
        got = run_final_positions(
            run_key, sampler2, positions, num_steps=T, record_fn=_record, progress=False, devices=1
        )["x"]
        identical = bool(np.array_equal(ref, got, equal_nan=True))

        def patched(seed):
            start = time.perf_counter()
            run_final_positions(
                jax.random.fold_in(run_key, seed + 1),
                sampler2,
                positions,
                num_steps=T,
                record_fn=_record,
                progress=False, devices=1,
            )
            return n * T / (time.perf_counter() - start)

        lean = P.Variant("lean + flag, fold_in, unrolled lowering", state="lean", finite="flag")
        rates = interleave(
            {"ours": lambda s: ours(s)["rate"], "patched": patched, "lean": variant_job(lean)}, reps
        )
    finally:
        mlir.register_lowering(
            tf.threefry2x32_p, tf._threefry2x32_cpu_lowering_rule, platform="cpu"
        )
        P.make.cache_clear()
    out.append(
        result(
            "sgd_profile: package loop, JAX's unrolled Threefry lowering on CPU",
            ours=rates["patched"],
            peer=rates["ours"],
            peer_name="ours (run_final_positions, one device)",
            unit="particle-steps/s",
            mach=mach,
            prototype=True,
            extra={"bit_identical_to_package": identical},
            notes="process-local re-registration of threefry2x32_p's CPU lowering "
            "(JAX registers a rolled 5-iteration loop for CPU, unrolled elsewhere); "
            f"final positions bit-identical: {identical}",
        )
    )
    out.append(
        result(
            "sgd_profile: lean + flag, fold_in, unrolled lowering",
            ours=rates["lean"],
            peer=rates["ours"],
            peer_name="ours (run_final_positions, one device)",
            unit="particle-steps/s",
            mach=mach,
            prototype=True,
            notes="the package's noise scheme (same draws), lean state, alive flag, unrolled Threefry",
        )
    )

    # batch sizes, ours vs the default batch size in the same round
    nb = size["sweep_runs"]
    sweep = {
        f"batch {b}": (lambda b: (lambda job: lambda s: job(s)["rate"])(make_ours(nb, b, devices=1)))(b)
        for b in size["sweep_sizes"]
    }
    best = P.Variant("lean, flag, counter", state="lean", finite="flag", noise="counter")
    xb = np.asarray(_setup(nb)[2])
    for b in size["sweep_sizes"]:

        def proto_job(seed, b=b):
            start = time.perf_counter()
            P.run(best, xb, run_key=jax.random.fold_in(run_key, seed + 1), batch_size=b)
            return nb * T / (time.perf_counter() - start)

        P.run(best, xb[:b], run_key=run_key, batch_size=b)  # compile
        sweep[f"prototype batch {b}"] = proto_job
    rates = interleave(sweep, size["sweep_reps"])
    default = "batch 65536" if "batch 65536" in rates else f"batch {size['sweep_sizes'][0]}"
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
        out.append(
            result(
                f"sgd_profile: prototype (lean, flag, counter), batch size {b}",
                ours=rates[f"prototype batch {b}"],
                peer=rates[default],
                peer_name=f"ours, {default}",
                unit="particle-steps/s",
                mach=mach,
                prototype=True,
                notes=f"{nb} runs x {T} steps",
            )
        )
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
            "notes": "run_chains' Python, key derivation and dispatch per batch; "
            "16 batches of 65536 for 10^6 runs",
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
            f"ours = run_final_positions (batch 65536), compiled, on {jax.local_device_count()} host "
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
    runs = interleave({"ours": make_experiment(n), "numpy": make_numpy(n)}, size["experiment_reps"])
    results.append(
        result(
            "sgd_experiment_particle_steps_per_s",
            ours=[r["rate"] for r in runs["ours"]],
            peer=[r["rate"] for r in runs["numpy"]],
            peer_name="NumPy float32, vectorized, in place",
            unit="particle-steps/s",
            target=3.0,
            mach=mach,
            extra={"reported_by_summary": [r["reported_rate"] for r in runs["ours"]]},
            notes="surf.sgd.sgd_experiment end to end in a warm process: it builds a new sampler "
            "per call, so the run loop is traced and compiled again each call; it also computes "
            "the occupancy, stickiness and the Gibbs reference by quadrature",
        )
    )
    if do_profile:
        results += prototype_vs_numpy(size, mach)
        results += profile(size, mach)
    return results


def prototype_vs_numpy(size: dict, mach: dict) -> list[dict]:
    """The fastest prototype that keeps the package's guarantees, on the full job, vs NumPy.

    ``lean + flag + counter``: vmap over runs as in the package, only (x, grad)
    carried, an alive flag instead of the per-step ``where``-select, and one
    unrolled Threefry hash of (run index, step) per run and step (two normals),
    so the draws still do not depend on the batch size or chunking.
    """
    import jax
    import sgd_prototypes as P

    n = size["runs"]
    _, _, positions, run_key = _setup(n)
    x = np.asarray(positions)
    best = P.Variant("lean + flag + counter", state="lean", finite="flag", noise="counter")
    P.run(best, x[: min(65_536, n)], run_key=run_key)  # compile

    def proto(seed):
        start = time.perf_counter()
        out = P.run(best, x, run_key=jax.random.fold_in(run_key, seed + 1))
        seconds = time.perf_counter() - start
        return {"rate": n * T / seconds, "final": out}

    reps = max(1, size["reps"] - 2)
    runs = interleave({"proto": proto, "numpy": make_numpy(n)}, reps)
    return [
        result(
            "prototype_sgd_lean_flag_counter_vs_numpy",
            ours=[r["rate"] for r in runs["proto"]],
            peer=[r["rate"] for r in runs["numpy"]],
            peer_name="NumPy float32, vectorized, in place",
            unit="particle-steps/s",
            target=3.0,
            mach=mach,
            prototype=True,
            extra={
                "proto_P(|x|<0.1)": [_near_origin(r["final"]) for r in runs["proto"]],
                "numpy_P(|x|<0.1)": [_near_origin(r["final"]) for r in runs["numpy"]],
            },
            notes=f"PROTOTYPE, not the source (sgd_prototypes.py): {n} runs, batch 65536; lean "
            "state, alive flag, counter-based noise (one unrolled Threefry hash per run and step)",
        )
    ]


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--reps", type=int)
    p.add_argument("--json")
    p.add_argument("--no-profile", action="store_true")
    a = p.parse_args()
    res = main(quick=a.quick, reps=a.reps, do_profile=not a.no_profile)
    print_results(res)
    save_json(res, a.json)
