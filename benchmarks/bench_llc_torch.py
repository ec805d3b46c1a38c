"""LLC estimates per minute: ours (``surf llc``'s SGLD) against a plain PyTorch SGLD loop.

The job: the default MLP (p = 53) after 2000 AdamW steps of ``surf grok``,
an LLC estimate at ``surf llc``'s network defaults (SGLD, full batch,
nbeta = n / log n, gamma = 100, h = 5e-4, 200 warmup + 500 draws) with 8
chains. Both sides take the same number of steps of the same update on the
same network from the same weights:

* ours: ``diagnostics.llc.estimate_llc`` (chains vmapped, steps in compiled
  chunks, spread over one host device per core as in ``surf llc``); timed from its second call (the first compiles; its compile time
  is recorded);
* peer: ``benchmarks/peer_torch_sgld.py``, an ``nn.Module`` per chain and
  the usual ``backward()`` / in-place update loop, in its own interpreter
  (``.venv-torch``, made by ``make bench-peers``; set ``SURF_TORCH_PYTHON``
  to use another). Timed inside, after a first untimed call.

Rounds alternate ours and the peer; the ratio is (our estimates per minute)
/ (the peer's) per round. Both LLCs are recorded (same estimator; they agree
to within the chains' spread). Without a PyTorch interpreter the row says
so and has no ratio.

    python benchmarks/bench_llc_torch.py [--quick]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from samplers.placement import use_host_cores  # noqa: E402

use_host_cores()  # ours as the CLI runs it: a host device per core (before JAX starts)

from common import (  # noqa: E402
    ROOT,
    bench_args,
    clean_env,
    interleave,
    machine,
    print_results,
    result,
    run_child,
    save_json,
)

PEER = Path(__file__).resolve().parent / "peer_torch_sgld.py"


def torch_python() -> str | None:
    """The interpreter with PyTorch: ``$SURF_TORCH_PYTHON`` or ``.venv-torch/bin/python``."""
    candidate = os.environ.get("SURF_TORCH_PYTHON") or str(ROOT / ".venv-torch" / "bin" / "python")
    return candidate if Path(candidate).is_file() else None


def setup(folder: Path, quick: bool):
    """Train the checkpoint, build our problem, and write the peer's arrays."""
    import numpy as np

    from diagnostics import llc as L
    from models.checkpoint_target import checkpoint_llc_problem, load_grok_position
    from surf.grok import DEFAULTS, train

    steps = 300 if quick else 2000
    train(dict(DEFAULTS, steps=steps, checkpoint_every=steps), out=folder, progress=False)
    path = folder / f"checkpoint_{steps}"
    ck = load_grok_position(path)
    problem = checkpoint_llc_problem(ck)
    weights = {k: np.asarray(v, np.float32) for k, v in ck.problem.unravel(ck.position).items()}
    task = ck.problem.task
    npz = folder / "peer_problem.npz"
    np.savez(npz, x_train=np.asarray(task.x_train), y_train=np.asarray(task.y_train), **weights)
    settings = {
        "nbeta": float(L.default_nbeta(problem.num_data)), "gamma": float(L.NETWORK_LOCALIZATION),
        "step_size": float(L.NETWORK_STEP_SIZE), "chains": 2 if quick else 8,
        "warmup": 20 if quick else L.NETWORK_WARMUP, "draws": 30 if quick else L.NETWORK_DRAWS,
    }
    return problem, npz, settings, str(path)


def main(quick: bool = False, reps: int | None = None) -> list[dict]:
    import numpy as np

    from diagnostics import llc as L

    reps = reps or (1 if quick else 3)
    folder = Path(tempfile.mkdtemp(prefix="bench_llc_torch_"))
    problem, npz, settings, checkpoint = setup(folder, quick)
    peer_python = torch_python()
    llcs: dict[str, list] = {"ours": [], "peer": []}
    compile_seconds: list[float] = []

    def ours(rep):
        r = L.estimate_llc(problem, nbeta=settings["nbeta"], localization=settings["gamma"],
                           step_size=settings["step_size"], chains=settings["chains"], draws=settings["draws"],
                           warmup=settings["warmup"], seed=max(rep, 0))
        if rep >= 0:
            llcs["ours"].append(r.llc["mean"])
        compile_seconds.append(r.trace.compile_seconds)
        return 60.0 / r.seconds

    def peer(rep):
        _, payload = run_child([peer_python, str(PEER), str(npz), json.dumps(dict(settings, seed=max(rep, 0)))],
                               env=clean_env(), timeout=3600)
        if rep >= 0:
            llcs["peer"].append(float(np.mean(payload["llc_per_chain"])))
            peer_meta.update(torch=payload["torch"], threads=payload["threads"])
        return 60.0 / payload["seconds"]

    peer_meta: dict = {}
    mach = machine()
    size = f"{settings['chains']} chains x ({settings['warmup']} + {settings['draws']}) SGLD steps, full batch"
    if peer_python is None:
        rates = interleave({"ours": ours}, reps, warmup=True)["ours"]
        row = result("llc_sgld_vs_pytorch", ours=rates, peer=rates, peer_name="PyTorch SGLD loop (not installed)",
                     unit="LLC estimates/min", mach=mach,
                     notes=f"no PyTorch interpreter (make bench-peers, or SURF_TORCH_PYTHON); {size}")
        row.update(peer=None, ratio=None, peer_name=None)
        return [row]
    rates = interleave({"ours": ours, "peer": peer}, reps, warmup=True)
    return [result(
        "llc_sgld_vs_pytorch", ours=rates["ours"], peer=rates["peer"],
        peer_name=f"plain PyTorch SGLD loop (torch {peer_meta.get('torch')}, {peer_meta.get('threads')} threads)",
        unit="LLC estimates/min", target=2.0, target_text=">= 2x", mach=mach,
        extra={"llc_ours": llcs["ours"], "llc_peer": llcs["peer"], "settings": settings, "checkpoint": checkpoint,
               "our_compile_seconds_first_call": compile_seconds[0] if compile_seconds else None},
        notes=f"default MLP p=53 after 2000 AdamW steps; {size}; ours compiled (first call untimed); "
              f"LLC ours {np.median(llcs['ours']):.3g}, peer {np.median(llcs['peer']):.3g} (medians over rounds)",
    )]


if __name__ == "__main__":
    args = bench_args(__doc__.splitlines()[0])
    res = main(quick=args.quick, reps=args.reps)
    print_results(res)
    save_json(res, args.json)
