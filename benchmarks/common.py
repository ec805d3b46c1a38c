"""Shared helpers of the benchmarks: interleaved timing, robust summaries, the machine.

The benchmark machine is small and shared, so absolute times drift. Every
comparison therefore runs ours and the peer *alternately in one process*
(A B A B ...) and reports the median of the per-pair ratios with its min-max
spread, next to the medians of each side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable

__all__ = [
    "HERE",
    "ROOT",
    "PYTHON",
    "machine",
    "interleave",
    "spread",
    "ratio_spread",
    "result",
    "print_results",
    "bench_args",
    "run_child",
    "clean_env",
]


def machine() -> dict[str, Any]:
    """CPU model, cores, load, and the versions that matter."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": platform.python_version()}
    for mod in ("jax", "jaxlib", "numpy", "numpyro", "blackjax", "arviz"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            versions[mod] = None
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "loadavg_at_start": load,
        "versions": versions,
    }


def interleave(
    fns: dict[str, Callable[[int], Any]], reps: int, *, warmup: bool = False
) -> dict[str, list[Any]]:
    """Call each function once per round, in a fixed order (A B A B ...), ``reps`` rounds.

    Each function gets the round index (use it as the seed) and returns what
    it measured (a number or a dict). ``warmup``: one extra untimed round first
    (index -1) to compile.
    """
    if warmup:
        for fn in fns.values():
            fn(-1)
    out: dict[str, list[Any]] = {name: [] for name in fns}
    for rep in range(reps):
        for name, fn in fns.items():
            out[name].append(fn(rep))
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def ratio_spread(ours: Sequence[float], peer: Sequence[float]) -> dict[str, float]:
    """Spread of the per-round ratios ``ours[i] / peer[i]`` (pairs measured back to back)."""
    return spread([o / p for o, p in zip(ours, peer, strict=True)])


def result(
    name: str,
    *,
    ours: Sequence[float],
    peer: Sequence[float],
    peer_name: str,
    unit: str,
    higher_is_better: bool = True,
    target: float | None = None,
    target_text: str | None = None,
    notes: str = "",
    extra: dict[str, Any] | None = None,
    mach: dict[str, Any] | None = None,
    prototype: bool = False,
) -> dict[str, Any]:
    """One result dict (keys: name, ours, peer, peer_name, unit, ratio, runs, machine, spread, ...).

    ``ratio`` is the median of the per-round ratios ours/peer. ``target`` is
    the ratio to reach: at least it if ``higher_is_better``, else at most.
    """
    r = ratio_spread(ours, peer)
    out = {
        "name": name,
        "ours": statistics.median(ours),
        "peer": statistics.median(peer),
        "peer_name": peer_name,
        "unit": unit,
        "ratio": r["median"],
        "runs": len(ours),
        "machine": mach or machine(),
        "spread": {"ours": spread(ours), "peer": spread(peer), "ratio": r},
        "raw": {"ours": [float(x) for x in ours], "peer": [float(x) for x in peer]},
        "higher_is_better": higher_is_better,
        "notes": notes,
        "prototype": prototype,
    }
    if target is not None:
        met = r["median"] >= target if higher_is_better else r["median"] <= target
        out["target"] = target
        out["target_text"] = target_text or (
            f">= {target:g}" if higher_is_better else f"<= {target:g}"
        )
        out["met"] = bool(met)
    if extra:
        out["extra"] = extra
    return out


def _fmt(x: float) -> str:
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3e}"


def print_results(results: list[dict[str, Any]]) -> None:
    for r in results:
        s = r["spread"]
        if r.get("peer") is None:
            print(
                f"{r['name']}: {_fmt(r['ours'])} {r['unit']} "
                f"[{_fmt(s['ours']['min'])}-{_fmt(s['ours']['max'])}]",
                flush=True,
            )
            if r.get("notes"):
                print(f"  note: {r['notes']}", flush=True)
            continue
        tag = "[profile variant, not the package] " if r.get("prototype") else ""
        ratio = s.get("ratio", {"min": r["ratio"], "max": r["ratio"]})  # a single comparison has no spread
        line = (
            f"{tag}{r['name']}: ours {_fmt(r['ours'])} {r['unit']} "
            f"[{_fmt(s['ours']['min'])}-{_fmt(s['ours']['max'])}], "
            f"{r['peer_name']} {_fmt(r['peer'])} [{_fmt(s['peer']['min'])}-{_fmt(s['peer']['max'])}], "
            f"ratio ours/peer {r['ratio']:.3g} [{ratio['min']:.3g}-{ratio['max']:.3g}] "
            f"over {r['runs']} interleaved runs"
        )
        if "target" in r:
            line += f"; target {r['target_text']}: {'met' if r['met'] else 'NOT met'}"
        print(line, flush=True)
        if r.get("notes"):
            print(f"  note: {r['notes']}", flush=True)


def bench_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small smoke size")
    p.add_argument("--reps", type=int, help="interleaved rounds (default per benchmark)")
    p.add_argument("--json", help="also write the result dicts to this file")
    return p.parse_args(argv)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no JAX persistent cache or flags inherited, the repo on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_", "SURF_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_child(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 600
) -> tuple[float, dict[str, Any]]:
    """Run ``args`` in a fresh process; return (wall seconds, the last JSON line it printed)."""
    start = time.perf_counter()
    proc = subprocess.run(
        args, capture_output=True, text=True, env=env or clean_env(), cwd=ROOT, timeout=timeout
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    payload: dict[str, Any] = {}
    for line in reversed(proc.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            payload = json.loads(line)
            break
    return wall, payload


def save_json(results: list[dict[str, Any]], path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(results, indent=1, default=str))
