"""Grokking at the default configuration: time to 95% test accuracy, steps per second.

The job (SCIENCE.md section 5): p = 53, add, 40% train, the embedding MLP,
AdamW lr 3e-3, betas (0.9, 0.98), weight decay 1, full batch, evaluated
every 100 steps (``surf grok`` with its defaults, through
:func:`surf.grok.train`). Target: test accuracy >= 0.95 in under 2 minutes.

Reported (no peer: there is no second implementation to race):

* seconds until the first evaluation with test accuracy >= 0.95 (compile
  excluded; the run is stopped at 6000 steps), measured as the sampling time
  scaled to the step where 95% is first recorded;
* optimizer steps per second (one step = one gradient evaluation on the full
  training batch, plus the observables every 100 steps).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import machine, print_results, spread  # noqa: E402


def _row(name, values, unit, mach, notes=""):
    return {
        "name": name,
        "ours": sorted(values)[len(values) // 2],
        "peer": None,
        "peer_name": None,
        "unit": unit,
        "ratio": None,
        "runs": len(values),
        "machine": mach,
        "spread": {"ours": spread(values)},
        "notes": notes,
    }


def main(runs: int = 1, steps: int = 6000) -> list[dict]:
    from surf.grok import DEFAULTS, train

    mach = machine()
    to95, rate, wall = [], [], []
    for r in range(runs):
        cfg = dict(DEFAULTS, steps=steps, checkpoint_every=0, seed=r)
        res = train(cfg, out=None, progress=False)
        s = res["summary"]
        rate.append(s["steps_per_second"])
        wall.append(s["seconds"])
        if s["step_test_acc_95"] is not None:
            to95.append(s["step_test_acc_95"] / s["steps_per_second"])
    out = [
        _row(
            "grok default: optimizer steps per second",
            rate,
            "steps/s (= gradient evaluations/s)",
            mach,
        ),
        _row(
            "grok default: wall seconds for the whole run incl. compile",
            wall,
            "s",
            mach,
            notes=f"{steps} steps",
        ),
    ]
    if to95:
        out.insert(
            0,
            _row(
                "grok default: seconds to test accuracy >= 0.95",
                to95,
                "s",
                mach,
                notes=f"target < 120 s; {len(to95)}/{runs} runs reached 0.95 within {steps} steps",
            ),
        )
    else:
        out.insert(
            0,
            _row(
                "grok default: seconds to test accuracy >= 0.95",
                [float("nan")],
                "s",
                mach,
                notes=f"no run reached 0.95 within {steps} steps",
            ),
        )
    return out


if __name__ == "__main__":
    print_results(main())
