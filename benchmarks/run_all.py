"""Run every ``benchmarks/bench_*.py`` and write ``results.json`` and ``RESULTS.md``.

Each benchmark runs in its own Python process (so one's compiled programs,
monkeypatches and memory do not leak into the next) and hands its result
dicts back through a JSON file. ``--quick`` runs each at a smoke size (and
writes ``results-quick.json`` / ``RESULTS-quick.md`` unless ``--out`` is given).

    python benchmarks/run_all.py            # full size, a few minutes per benchmark
    python benchmarks/run_all.py --quick    # smoke size
    python benchmarks/run_all.py --only sgd # the benchmarks whose name contains "sgd"
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import HERE, PYTHON, ROOT, machine  # noqa: E402


def discover(only: list[str] | None) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if only:
        files = [f for f in files if any(o in f.stem for o in only)]
    return files


def child(name: str, quick: bool, out: str) -> None:
    """In a fresh process: import ``benchmarks/<name>.py``, call its ``main()``, dump the results.

    ``main`` gets ``quick=`` only if it takes it (a benchmark without a smoke
    size runs at its own default either way).
    """
    import importlib
    import inspect

    sys.path.insert(0, str(ROOT))
    module = importlib.import_module(name)
    kwargs = {"quick": quick} if "quick" in inspect.signature(module.main).parameters else {}
    results = module.main(**kwargs)
    try:
        from common import print_results

        print_results(results)
    except Exception as err:  # noqa: BLE001 - printing is a courtesy; the JSON is the result
        print(f"(could not print results: {err})")
    Path(out).write_text(json.dumps(results, indent=1, default=str))


def run_one(path: Path, quick: bool) -> tuple[list[dict[str, Any]], float, str | None]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        args = [PYTHON, str(Path(__file__).resolve()), "--child", path.stem, "--json", str(out)]
        args += ["--quick"] if quick else []
        start = time.perf_counter()
        proc = subprocess.run(args, cwd=ROOT, text=True, stdout=sys.stdout, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            return [], seconds, proc.stderr[-4000:]
        return json.loads(out.read_text()), seconds, None


def _f(x: Any) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4g}"
    return f"{x:.3g}"


def _cell(r: dict, side: str) -> str:
    s = r.get("spread", {}).get(side)
    if not s:
        value = r.get(side)
        return "n/a" if value is None else _f(value)
    return f"{_f(s['median'])} ({_f(s['min'])}–{_f(s['max'])})"


def markdown(
    results: list[dict],
    mach: dict,
    timings: dict[str, float],
    failures: dict[str, str],
    quick: bool,
) -> str:
    v = mach["versions"]
    lines = [
        "# Benchmark results" + (" (quick smoke size)" if quick else ""),
        "",
        f"Written by `benchmarks/run_all.py{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}.",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}, {mach['cores']} cores ({mach['usable_cores']} usable), "
        f"{mach['memory_gib']} GiB memory; {mach['platform']}",
        f"- load average at start: {mach['loadavg_at_start']} (the machine is shared: "
        "other processes ran concurrently, so absolute times drift; ratios come from "
        "runs of ours and the peer interleaved in one process)",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## How to read",
        "",
        "Each cell is the median over interleaved rounds with the min–max in brackets. "
        "*Ratio* is the median of the per-round ratios ours/peer (each pair measured back to "
        "back), with their min–max. For rates (ESS/s, particle-steps/s) higher is better; "
        "for the cache benchmark (seconds) lower is better.",
        "",
        "## Targets",
        "",
        "| benchmark | unit | ours | peer | peer is | ratio ours/peer | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    main = [r for r in results if not r.get("prototype")]
    proto = [r for r in results if r.get("prototype")]
    for r in main:
        target = r.get("target_text", "–")
        met = ("yes" if r["met"] else "**no**") if "met" in r else "–"
        lines.append(
            f"| `{r['name']}` | {r['unit']} | {_cell(r, 'ours')} | {_cell(r, 'peer')} "
            f"| {r.get('peer_name') or '–'} | {_cell(r, 'ratio')} | {target} | {met} |"
        )
    lines += ["", "Notes:", ""]
    for r in main:
        lines.append(f"- `{r['name']}` ({r['runs']} rounds): {r.get('notes', '')}")
    if proto:
        lines += [
            "",
            "## Profile (variants measured in benchmarks/, not what the package runs)",
            "",
            "Ratios here are variant / reference (the reference named in the peer column).",
            "",
            "| variant | unit | value | reference | reference is | ratio | rounds |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in proto:
            if r.get("peer") is None:
                lines.append(
                    f"| `{r['name']}` | {r['unit']} | {_cell(r, 'ours')} | – | – | – | {r['runs']} |"
                )
                continue
            lines.append(
                f"| `{r['name']}` | {r['unit']} | {_cell(r, 'ours')} | {_cell(r, 'peer')} "
                f"| {r['peer_name']} | {_cell(r, 'ratio')} | {r['runs']} |"
            )
        lines += ["", "Notes:", ""]
        for r in proto:
            if r.get("notes"):
                lines.append(f"- `{r['name']}`: {r['notes']}")
    lines += ["", "## Wall time per benchmark", ""]
    for name, secs in timings.items():
        lines.append(f"- `{name}`: {secs:.0f} s" + (" (FAILED)" if name in failures else ""))
    for name, err in failures.items():
        lines += ["", f"### {name} failed", "", "```", err.strip(), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke size")
    p.add_argument(
        "--only", nargs="+", help="run only benchmarks whose file name contains one of these"
    )
    p.add_argument("--out", help="folder for the results files (default: benchmarks/)")
    p.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="only rewrite the Markdown next to an existing results JSON",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.quick, args.json)
        return 0
    if args.render:
        src = Path(args.render)
        data = json.loads(src.read_text())
        md = src.with_name(src.name.replace("results", "RESULTS").replace(".json", ".md"))
        md.write_text(
            markdown(
                data["results"], data["machine"], data["seconds"], data["failures"], data["quick"]
            )
        )
        print(f"wrote {md}")
        return 0
    out = Path(args.out) if args.out else HERE
    suffix = "-quick" if args.quick and not args.out else ""
    mach = machine()
    results: list[dict] = []
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    for path in discover(args.only):
        print(f"== {path.name}{' --quick' if args.quick else ''}", flush=True)
        res, seconds, err = run_one(path, args.quick)
        timings[path.stem] = seconds
        if err is not None:
            failures[path.stem] = err
            print(f"   FAILED after {seconds:.0f} s:\n{err}", flush=True)
        else:
            print(f"   done in {seconds:.0f} s", flush=True)
        for r in res:
            r["bench"] = path.stem
        results += res
    out.mkdir(parents=True, exist_ok=True)
    target_json = out / f"results{suffix}.json"
    if args.only and target_json.exists():  # keep the other benchmarks' last results
        old = json.loads(target_json.read_text())
        ran = {p.stem for p in discover(args.only)}
        kept = [r for r in old.get("results", []) if r.get("bench") and r["bench"] not in ran]
        results = kept + results
        timings = {**{k: v for k, v in old.get("seconds", {}).items() if k not in ran}, **timings}
        failures = {
            **{k: v for k, v in old.get("failures", {}).items() if k not in ran},
            **failures,
        }
    payload = {
        "machine": mach,
        "quick": args.quick,
        "seconds": timings,
        "failures": failures,
        "results": results,
    }
    target_json.write_text(json.dumps(payload, indent=1, default=str))
    (out / f"RESULTS{suffix}.md").write_text(markdown(results, mach, timings, failures, args.quick))
    print(f"wrote {out / f'results{suffix}.json'} and {out / f'RESULTS{suffix}.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
