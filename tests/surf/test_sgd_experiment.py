"""The seed's noisy-SGD experiment (issue: reproduce the three panels)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.toy import cross_potential
from surf.sgd import seed_claims, sgd_experiment


@pytest.mark.parametrize("lam", [0.0, 5.0])
def test_cross_gradient_matches_finite_differences_away_from_diagonals(lam):
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, size=(200, 2))
    points = points[np.abs(np.abs(points[:, 0]) - np.abs(points[:, 1])) > 0.05]
    with jax.enable_x64(True):
        u = lambda x: cross_potential(x, a=100.0, lam=lam)  # noqa: E731
        grad = jax.vmap(jax.grad(u))(jnp.asarray(points, dtype=jnp.float64))
        h = 1e-6
        for i in range(2):
            e = np.zeros(2)
            e[i] = h
            fd = (np.asarray(jax.vmap(u)(points + e)) - np.asarray(jax.vmap(u)(points - e))) / (2 * h)
            np.testing.assert_allclose(np.asarray(grad[:, i]), fd, rtol=1e-6, atol=1e-6)


def test_without_noise_every_run_ends_on_the_axes():
    res = sgd_experiment(lam=0.0, noise=0.0, runs=2000, seed=1, progress=False)
    final = res["final"]
    off_axis = np.min(np.abs(final), axis=1)
    assert np.all(off_axis < 1e-6), off_axis.max()
    # ...and the starting spread along the arms is kept (the valley floor is flat)
    assert np.max(np.abs(final)) > 0.9


def test_results_do_not_depend_on_the_batch_size():
    a = sgd_experiment(lam=0.0, noise=0.01, runs=3000, seed=3, batch_size=3000, progress=False)
    b = sgd_experiment(lam=0.0, noise=0.01, runs=3000, seed=3, batch_size=512, progress=False)
    np.testing.assert_array_equal(a["final"], b["final"])
    c = sgd_experiment(lam=0.0, noise=0.01, runs=3000, seed=4, batch_size=3000, progress=False)
    assert not np.array_equal(a["final"], c["final"])


def test_trajectories_end_where_the_final_positions_are():
    res = sgd_experiment(lam=1.0, noise=0.01, runs=500, seed=2, trajectories=5, progress=False)
    assert res["paths"].shape == (5, 100, 2)
    np.testing.assert_array_equal(res["paths"][:, -1], res["final"][:5])


@pytest.fixture(scope="module")
def seed_rows():
    settings = [(0.0, 0.01), (5.0, 0.01), (0.0, 0.1)]
    return [
        sgd_experiment(lam=lam, noise=eps, runs=6000, seed=0, progress=False)["summary"]
        for lam, eps in settings
    ]


def test_the_posts_three_claims_reproduce_at_test_size(seed_rows):
    vanilla, regularized, noisy = (r["stickiness"] for r in seed_rows)
    # margins of 3 standard errors: a claim "holds" only when the noise cannot explain it
    assert vanilla["value"] + 3 * vanilla["stderr"] < 1
    assert regularized["value"] - 3 * regularized["stderr"] > 1
    gap = noisy["value"] - vanilla["value"]
    assert gap > 3 * math.hypot(noisy["stderr"], vanilla["stderr"])
    assert all(c["holds"] for c in seed_claims(seed_rows))


def test_gibbs_reference_is_at_the_matching_temperature(seed_rows):
    vanilla = seed_rows[0]
    assert vanilla["gibbs"]["beta_eff"] == pytest.approx(2 * 1e-3 / 0.01**2)
    gibbs = vanilla["gibbs"]["occupancy"]
    assert 0 < gibbs["0.05"] < gibbs["0.1"] < gibbs["0.2"] < 1


def _surf(*args, cwd):
    env = dict(os.environ)
    env.setdefault("SURF_CACHE_DIR", str(cwd / "jax-cache"))
    return subprocess.run(
        [sys.executable, "-m", "surf.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_sgd_json_and_netcdf(tmp_path):
    out = tmp_path / "sgd.nc"
    proc = _surf("sgd", "--runs", "2000", "--trajectories", "3", "--out", str(out), "--json", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("runs", "seconds", "occupancy", "stickiness", "gibbs"):
        assert key in result
    assert set(result["occupancy"]) == {"0.05", "0.1", "0.2"}
    assert set(result["stickiness"]) == {"radius", "value", "stderr"}
    import arviz as az

    dt = az.from_netcdf(out)
    assert dt["posterior"]["x"].shape == (1, 2000, 2)
    assert dt["trajectories"]["x"].shape == (3, 100, 2)
    assert json.loads(dt.attrs["surf_config"])["seed"] == 0


def test_cli_sweep_writes_table_and_heatmap(tmp_path):
    out = tmp_path / "sweep"
    proc = _surf(
        "sgd", "--sweep", "lam=0,5", "noise=0.01,0.1", "--runs", "1000", "--out", str(out), "--json", "--quiet",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert {(r["lam"], r["noise"]) for r in rows} == {(0, 0.01), (0, 0.1), (5, 0.01), (5, 0.1)}
    assert (out / "sweep.png").stat().st_size > 10_000
    assert len(json.loads((out / "sweep.json").read_text())["rows"]) == 4


@pytest.mark.parametrize(
    "args",
    [
        ["sgd", "--sweep", "gamma=1,2"],
        ["sgd", "--sweep", "lam=a,b"],
        ["sgd", "--sweep", "momentum=0,1.5"],
        ["sgd", "--runs", "0"],
        ["sgd", "--noise", "-1"],
        ["sgd", "--lr", "0"],
        ["sgd", "--out", "result.txt"],
        ["sgd", "--panels", "seed", "--out", "figure.nc"],
    ],
)
def test_cli_sgd_bad_input_is_one_line_and_writes_nothing(tmp_path, args):
    proc = _surf(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "jax-cache") == []


def test_gibbs_occupancy_is_computed_once_per_setting(monkeypatch):
    """Panels and sweeps repeat settings: the quadrature runs once, callers get their own copies."""
    import models.reference as reference
    from surf import sgd

    sgd._gibbs_occupancy_json.cache_clear()
    calls = []
    original = reference.GibbsReference.occupancy

    def counted(self, center, radius):
        calls.append(radius)
        return original(self, center, radius)

    monkeypatch.setattr(reference.GibbsReference, "occupancy", counted)
    first = sgd.gibbs_occupancy(lam=0.0, a=100.0, noise=0.05, lr=1e-3)
    first["occupancy"]["0.1"] = -1.0  # the caller's copy, not the cached one
    computed = len(calls)  # one per radius, or none if a compilation cache already held it
    assert computed in (0, len(sgd.RADII))
    again = sgd.gibbs_occupancy(lam=0.0, a=100.0, noise=0.05, lr=1e-3)
    assert len(calls) == computed
    assert again["occupancy"]["0.1"] > 0
    assert again["beta_eff"] == pytest.approx(2 * 1e-3 / 0.05**2)
    other = sgd.gibbs_occupancy(lam=1.0, a=100.0, noise=0.05, lr=1e-3)
    assert other["occupancy"] != again["occupancy"]
