"""JAX's persistent compilation cache in the CLI: first vs repeated ``surf sample``.

The command: ``surf sample --model cross --beta 20 --sampler nuts --chains 4
--draws 1000 --quiet --json``. Each round makes a fresh, empty
``SURF_CACHE_DIR`` (a temporary folder), runs the command once (first: it
traces, compiles and writes the cache) and then again with the same folder
(repeated: it loads the traced programs from ``<cache>/programs``, see
``samplers/programs.py``, and their compiled executables from JAX's cache, and
reads the exact occupancy back). Wall time of the whole process, as the parent
sees it; the JSON's in-process seconds are recorded too. Rounds alternate (first, repeated)
pairs; the ratio is repeated / first per pair (lower is better).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    bench_args,
    clean_env,
    machine,
    print_results,
    result,
    run_child,
    save_json,
)

COMMAND = [
    "sample",
    "--model",
    "cross",
    "--beta",
    "20",
    "--sampler",
    "nuts",
    "--chains",
    "4",
    "--draws",
    "1000",
    "--quiet",
    "--json",
]
QUICK_COMMAND = [
    "sample",
    "--model",
    "cross",
    "--beta",
    "20",
    "--sampler",
    "nuts",
    "--chains",
    "2",
    "--draws",
    "100",
    "--warmup",
    "50",
    "--quiet",
    "--json",
]


def surf_executable() -> list[str]:
    exe = Path(sys.executable).parent / "surf"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "surf.cli"]


def _pair(command: list[str]) -> dict:
    """(first, repeated) with a fresh SURF_CACHE_DIR: wall and in-process seconds."""
    folder = Path(tempfile.mkdtemp(prefix="surf-cache-bench-"))
    try:
        env = clean_env(SURF_CACHE_DIR=str(folder))
        first, out1 = run_child(command, env=env)
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        repeated, out2 = run_child(command, env=env)
        return {
            "first": first,
            "repeated": repeated,
            "files": files,
            "inner_first": out1.get("seconds"),
            "inner_repeated": out2.get("seconds"),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(quick: bool = False, reps: int | None = None) -> list[dict]:
    reps = reps or (1 if quick else 3)
    args = QUICK_COMMAND if quick else COMMAND
    command = surf_executable() + args
    ours = [_pair(command) for _ in range(reps)]
    mach = machine()
    text = "surf " + " ".join(args)
    results = [
        result(
            "cli_sample_repeated_over_first",
            ours=[p["repeated"] for p in ours],
            peer=[p["first"] for p in ours],
            peer_name="first run (empty cache)",
            unit="s (wall, whole process)",
            higher_is_better=False,
            target=0.5,
            target_text="repeated/first <= 0.5",
            mach=mach,
            extra={
                "command": text,
                "in_process_seconds_first": [p["inner_first"] for p in ours],
                "in_process_seconds_repeated": [p["inner_repeated"] for p in ours],
                "cache_files_after_first": [p["files"] for p in ours],
            },
            notes="'ours' = the repeated run (warm SURF_CACHE_DIR), 'peer' = the first run with a "
            f"fresh empty SURF_CACHE_DIR; {reps} (first, repeated) pairs; `{text}`",
        )
    ]
    return results


if __name__ == "__main__":
    args = bench_args(__doc__.splitlines()[0])
    res = main(quick=args.quick, reps=args.reps)
    print_results(res)
    save_json(res, args.json)
