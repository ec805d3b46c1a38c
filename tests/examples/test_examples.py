"""The examples run, at a tiny size, as a user would run them."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from diagnostics.arviz_io import load_datatree, read_config


@pytest.fixture(scope="module")
def runs(repo_root, surf_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples")
    custom_env = dict(surf_env, SURF_EXAMPLE_DRAWS="25")  # the env var sets the size
    jobs = {
        "custom": (
            [str(repo_root / "examples" / "custom_potential.py"), "--chains", "2", "--warmup", "25",
             "--out", str(folder / "cusp.nc")],
            custom_env,
        ),
        "numpyro": (
            [str(repo_root / "examples" / "numpyro_model.py"), "--draws", "30", "--warmup", "25",
             "--chains", "2", "--out", str(folder / "regression.nc")],
            surf_env,
        ),
    }

    def go(args, env):
        return subprocess.run(
            [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(go, *job) for name, job in jobs.items()}
        return {name: f.result() for name, f in futures.items()}, folder


def test_custom_potential(runs):
    procs, folder = runs
    proc = procs["custom"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "2 chains x 25 draws" in out
    match = re.search(r"occupancy within r=0\.1 of the cusp: ([0-9.]+).*exact Gibbs value ([0-9.]+)", out)
    assert match, out
    fraction, exact = map(float, match.groups())
    assert 0 <= fraction <= 1 and 0 < exact < 1
    dt = load_datatree(folder / "cusp.nc")
    x = dt["posterior"]["x"].values
    assert x.shape == (2, 25, 2)
    assert ((x > -1) & (x < 1)).all()  # the box
    assert read_config(dt)["example"] == "custom_potential"
    inside = (x**2).sum(-1) < 0.1**2
    assert inside.mean() == pytest.approx(fraction, abs=1e-4)


def test_numpyro_model(runs):
    procs, folder = runs
    proc = procs["numpyro"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "2 chains x 30 draws" in out
    for name in ("a", "b", "sigma"):
        assert re.search(rf"^{name}\s", out, flags=re.MULTILINE), out
    assert "ess_bulk" in out and "r_hat" in out
    dt = load_datatree(folder / "regression.nc")
    assert set(dt["posterior"].data_vars) == {"a", "b", "sigma"}
    assert dt["posterior"]["sigma"].shape == (2, 30)
    assert (dt["posterior"]["sigma"].values > 0).all()


def test_llc_across_training_example(repo_root, surf_env, tmp_path):
    grok = subprocess.run(
        [sys.executable, "-m", "surf.cli", "grok", "--p", "7", "--train-frac", "0.6", "--steps", "100",
         "--eval-every", "50", "--checkpoint-every", "50", "--out", "g", "--quiet"],
        cwd=tmp_path, env=surf_env, capture_output=True, text=True, timeout=300,
    )
    assert grok.returncode == 0, grok.stderr
    proc = subprocess.run(
        [sys.executable, str(repo_root / "examples" / "llc_across_training.py"), "--run", "g",
         "--chains", "1", "--draws", "5", "--warmup", "5", "--out", "llc.png"],
        cwd=tmp_path, env=surf_env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json

    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["step"] for r in rows] == [50, 100]
    assert all(np.isfinite(r["llc_mean"]) for r in rows)
    assert (tmp_path / "llc.png").stat().st_size > 5_000
