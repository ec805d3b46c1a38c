"""Throughput on 1, 2 and 4 devices, and the check that the draws do not change.

The issue's question on a CPU-only machine: what does spreading chains over
devices cost, and is the answer the same? Four host devices are forced with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` in a child process
(the device count is fixed when JAX starts), then, in rounds (1, 2, 4
devices, 1, 2, 4, ...):

* NUTS on the normal-crossing target at beta 20, 8 chains: draws per
  second of sampling (compiled chunks only) and the whole ``run_chains``
  call once compiled (warmup and sampling); the first call's wall time,
  which compiles one program per device, is recorded too;
* the seed's SGD, ``run_final_positions`` over many runs: particle-steps
  per second.

Each row's ratio is (N devices) / (1 device) in the same round. On two
cores four "devices" share two cores, so no speed-up is expected: the rows
measure the overhead. Every round also asserts the draws are bitwise equal
to the one-device run's. On a machine with several GPUs run it without
the flag (``--real``) to measure the real scaling.

    python benchmarks/bench_devices.py [--quick] [--real]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PYTHON,
    bench_args,
    clean_env,
    machine,
    print_results,
    result,
    run_child,
    save_json,
)

DEVICES = (1, 2, 4)
FULL = {"chains": 8, "warmup": 500, "draws": 2000, "runs": 400_000, "steps": 100, "reps": 3}
QUICK = {"chains": 8, "warmup": 50, "draws": 100, "runs": 20_000, "steps": 20, "reps": 1}


def child(size: dict) -> dict:
    """In the child: the rounds, as raw numbers (one JSON line on stdout)."""
    import jax
    import numpy as np

    from models.toy import toy_target
    from samplers.kernels import SamplerOptions, build_sampler
    from samplers.run import run_chains, run_final_positions

    devices = [d for d in DEVICES if d <= jax.local_device_count()]
    target = toy_target("normal-crossing", beta=20.0)  # bench_nuts' target
    nuts = build_sampler("nuts", target, SamplerOptions())
    positions = target.init_fn(jax.random.key(1), size["chains"])
    seed_loss = toy_target("cross", {"a": 100.0, "lam": 0.0, "box": "none"}, beta=1.0)  # the seed's vanilla panel
    sgd = build_sampler("sgd", seed_loss, SamplerOptions(step_size=1e-3, noise=0.01, momentum=0.0))
    starts = seed_loss.init_fn(jax.random.key(2), size["runs"])

    def record(x):  # one function for every call: compiled programs are reused across rounds
        return {"x": x}
    out: dict = {"devices": devices, "backend": jax.default_backend(), "nuts": {}, "sgd": {}, "identical": True}
    reference: dict = {}
    for rep in range(-1, size["reps"]):  # round -1 compiles everything once
        for d in devices:
            start = time.perf_counter()
            trace = run_chains(jax.random.key(rep), nuts, positions, record_fn=target.record_fn,
                               num_warmup=size["warmup"], num_draws=size["draws"], progress=False, devices=d)
            wall = time.perf_counter() - start
            start = time.perf_counter()
            final = run_final_positions(jax.random.key(rep), sgd, starts, num_steps=size["steps"],
                                        record_fn=record, progress=False, batch_size=size["runs"],
                                        devices=d)
            sgd_seconds = time.perf_counter() - start
            if d == devices[0]:
                reference = {"nuts": trace.draws["x"], "sgd": final["x"]}
            else:
                out["identical"] &= bool(np.array_equal(reference["nuts"], trace.draws["x"], equal_nan=True))
                out["identical"] &= bool(np.array_equal(reference["sgd"], final["x"], equal_nan=True))
            if rep < 0:
                out.setdefault("first_call_wall", {})[str(d)] = wall  # compiles: one program per device
                continue
            out["nuts"].setdefault(str(d), []).append(
                {"draws_per_s": size["chains"] * size["draws"] / trace.sampling_seconds, "wall": wall,
                 "compile": trace.compile_seconds}
            )
            out["sgd"].setdefault(str(d), []).append(size["runs"] * size["steps"] / sgd_seconds)
    return out


def main(quick: bool = False, reps: int | None = None, real: bool = False) -> list[dict]:
    size = dict(QUICK if quick else FULL)
    if reps:
        size["reps"] = reps
    env = clean_env() if real else clean_env(XLA_FLAGS="--xla_force_host_platform_device_count=4",
                                             JAX_PLATFORMS="cpu")
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); " \
           f"from bench_devices import child; print(json.dumps(child({size!r})))"
    _, raw = run_child([PYTHON, "-c", code], env=env, timeout=3600)
    mach = machine()
    where = "real devices" if real else "4 forced host devices on this CPU"
    if not raw["identical"]:
        raise AssertionError("draws differ between device counts: the placement contract is broken")
    results = []
    one = "1"
    for d in raw["devices"][1:]:
        n = str(d)
        rows = [
            ("nuts_draws_per_s", [r["draws_per_s"] for r in raw["nuts"][n]],
             [r["draws_per_s"] for r in raw["nuts"][one]], "draws/s (sampling, compiled)", True),
            ("nuts_run_chains_wall", [r["wall"] for r in raw["nuts"][n]], [r["wall"] for r in raw["nuts"][one]],
             "s (warmup + sampling, compiled)", False),
            ("sgd_particle_steps_per_s", raw["sgd"][n], raw["sgd"][one], "particle-steps/s", True),
        ]
        for name, ours, peer, unit, higher in rows:
            results.append(result(
                f"devices_{name}_{d}_over_1", ours=ours, peer=peer, peer_name="the same on 1 device",
                unit=unit, higher_is_better=higher, mach=mach,
                extra={"devices": d, "where": where, "backend": raw["backend"], "size": size,
                       "draws_identical_to_one_device": raw["identical"],
                       "nuts_first_call_wall_seconds": raw.get("first_call_wall")},
                notes=f"{where}; rounds of 1/2/4 devices, ratio = {d} devices / 1 device in the same round; "
                      f"draws bitwise equal to the 1-device run: {raw['identical']}",
            ))
    return results


if __name__ == "__main__":
    p_args = bench_args(__doc__.splitlines()[0], [a for a in sys.argv[1:] if a != "--real"])
    res = main(quick=p_args.quick, reps=p_args.reps, real="--real" in sys.argv[1:])
    print_results(res)
    save_json(res, p_args.json)
    if os.environ.get("SURF_BENCH_PRINT_RAW"):
        print(json.dumps(res, indent=1, default=str))
