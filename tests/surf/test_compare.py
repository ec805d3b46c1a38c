"""`surf compare`: sampler bias near the singular point against the exact value."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from diagnostics.bias import bias_row, histogram_masses, total_variation
from diagnostics.singularity import occupancy
from models.reference import GibbsReference
from models.toy import toy_target
from samplers.kernels import SamplerOptions, build_sampler
from samplers.run import run_chains


def test_nuts_on_the_cross_agrees_with_the_exact_occupancy():
    target = toy_target("cross", {"lam": 0.0}, beta=20.0)
    exact = GibbsReference(target.loss_fn, beta=20.0).occupancy((0.0, 0.0), 0.1)
    sampler = build_sampler("nuts", target, SamplerOptions(mass_matrix="identity"))
    trace = run_chains(
        jax.random.key(11), sampler, target.init_fn(jax.random.key(12), 8),
        record_fn=target.record_fn, num_warmup=400, num_draws=1500, progress=False,
    )
    occ = occupancy(trace.draws["x"], (0.0, 0.0), 0.1)
    z = (occ.fraction - exact) / occ.mcse
    assert abs(z) < 4, (occ, exact)
    assert int(trace.stats["diverging"].sum()) == 0


def test_bias_row_fields_are_consistent():
    rng = np.random.default_rng(0)
    draws = rng.uniform(-1, 1, size=(4, 2000, 2))
    edges = np.linspace(-1, 1, 11)
    cells = np.full((10, 10), 0.01)
    exact = math.pi * 0.3**2 / 4
    row = bias_row(draws, exact=exact, exact_cells=cells, edges=(edges, edges), center=(0, 0), radius=0.3)
    assert row["z"] == pytest.approx((row["occupancy"] - exact) / row["mcse"])
    assert row["ratio"] == pytest.approx(row["occupancy"] / exact)
    assert abs(row["z"]) < 4
    # uniform draws against the uniform cell masses: TV is the multinomial noise floor,
    # E|p_hat - p| = sqrt(2 p (1 - p) / (pi n)) per cell for large n
    n = draws.shape[0] * draws.shape[1]
    floor = 0.5 * np.sum(np.sqrt(2 * cells * (1 - cells) / (np.pi * n)))
    assert 0.5 * floor < row["tv"] < 1.5 * floor
    assert total_variation(cells, cells) == 0
    assert histogram_masses(draws, edges, edges).sum() == pytest.approx(1.0)


def test_bias_row_with_no_draw_in_the_disk_reports_expected_hits():
    draws = np.full((2, 100, 2), 0.9)
    edges = np.linspace(-1, 1, 3)
    row = bias_row(draws, exact=1e-19, exact_cells=np.full((2, 2), 0.25), edges=(edges, edges),
                   center=(0, 0), radius=0.1)
    assert row["occupancy"] == 0 and row["z"] is None
    assert row["expected_hits"] == pytest.approx(200 * 1e-19)


def _surf(*args, cwd):
    env = dict(os.environ)
    env.setdefault("SURF_CACHE_DIR", str(cwd / "jax-cache"))
    return subprocess.run([sys.executable, "-m", "surf.cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_cli_compare_json_and_outputs(tmp_path):
    out = tmp_path / "cmp"
    proc = _surf(
        "compare", "--model", "cross", "--beta", "20", "--samplers", "nuts,ula,sgd", "--chains", "4",
        "--draws", "300", "--warmup", "200", "--step-sizes", "0.001,0.0003", "--thin-steps", "5",
        "--out", str(out), "--json", "--quiet", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert 0 < result["exact"] < 1
    rows = result["rows"]
    assert [(r["sampler"], r["step_size"]) for r in rows][1:] == [
        ("ula", 0.001), ("ula", 0.0003), ("sgd", 0.001), ("sgd", 0.0003)
    ] or [r["sampler"] for r in rows] == ["nuts", "ula", "ula", "sgd", "sgd"]
    fields = ("sampler", "step_size", "occupancy", "mcse", "z", "ratio", "tv", "ess_bulk",
              "ess_per_second", "divergences", "acceptance_rate")
    for row in rows:
        assert all(f in row for f in fields)
        if row["z"] is not None:
            assert row["z"] == pytest.approx((row["occupancy"] - result["exact"]) / row["mcse"])
    sgd = [r for r in rows if r["sampler"] == "sgd"]
    for r in sgd:  # the matching temperature: eps = sqrt(2 eta / beta)
        assert r["noise"] == pytest.approx(math.sqrt(2 * r["step_size"] / 20.0), rel=1e-5)
    names = sorted(p.name for p in out.iterdir())
    for expected in ("compare.json", "occupancy.png", "bias_vs_step.png", "densities.png", "nuts.nc"):
        assert expected in names
    assert len([n for n in names if n.endswith(".nc")]) == len(rows)


def test_cli_compare_with_a_users_loss(tmp_path):
    (tmp_path / "pot.py").write_text(
        "import jax.numpy as jnp\n"
        "def loss(x):\n    return 50.0 * (x[0] - 0.2) ** 2 * (x[1] + 0.1) ** 2\n"
    )
    proc = _surf(
        "compare", "--loss", "pot.py:loss", "--dim", "2", "--box=-1,1", "--center=0.2,-0.1",
        "--beta", "5", "--samplers", "nuts", "--chains", "4", "--draws", "300", "--warmup", "200",
        "--json", "--quiet", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["center"] == [0.2, -0.1]
    assert 0 < result["exact"] < 1


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "--model", "cross"],  # no beta
        ["compare", "--model", "cross", "--beta", "20", "--samplers", "nuts,bogus"],
        ["compare", "--model", "cross", "--beta", "20", "--step-sizes", "0.1,-1"],
        ["compare", "--model", "quadratic", "--beta", "2"],  # no box
        ["compare", "--loss", "pot.py:loss", "--dim", "2", "--beta", "2"],  # no box / center
    ],
)
def test_cli_compare_bad_input(tmp_path, args):
    proc = _surf(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
