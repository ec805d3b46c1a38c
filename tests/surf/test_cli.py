"""``surf sample`` end to end, through a subprocess as a user runs it.

All invocations of this module are started together (a few at a time) by one
module-scoped fixture, since each pays for a Python + JAX start-up; the tests
then read their results.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from diagnostics.arviz_io import load_datatree, read_config

LOSS_FILE = """
import jax.numpy as jnp

def loss(x):
    return jnp.sum((x - 0.25) ** 2) + 0.5 * x[0] ** 2 * x[1] ** 2
"""

NUMPYRO_FILE = """
import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

DATA = jnp.array([0.3, -0.9, 0.4, 1.2, -0.2])

def model():
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    numpyro.sample("y", dist.Normal(mu, sigma), obs=DATA)
"""

EXISTING = b"an earlier result that must survive"

HAPPY = {
    "cross": "sample --model cross --beta 20 --sampler nuts --chains 4 --draws 200 --warmup 100 "
    "--out X.nc --json --quiet",
    "loss": "sample --loss user_loss.py:loss --dim 2 --sampler nuts --chains 2 --draws 100 "
    "--warmup 50 --out L.nc --json --quiet",
    "numpyro": "sample --numpyro user_model.py:model --sampler nuts --chains 2 --draws 100 "
    "--warmup 50 --out N.nc --json --quiet",
    # human-readable output, and --force over an existing file
    "force": "sample --model quadratic --param dim=3 --sampler mala --step-size 0.3 --chains 2 "
    "--draws 50 --warmup 0 --out replaced.nc --force --quiet",
}

# name -> (arguments, words expected on stderr). Every one names an --out that must not appear.
# (More bad flags are checked in-process, faster, in test_common.py.)
BAD = {
    "unknown_model": ("sample --model nope --out bad.nc", "invalid choice: 'nope'"),
    "unknown_sampler": ("sample --model cross --sampler gibbs --out bad.nc", "invalid choice: 'gibbs'"),
    "malformed_param": ("sample --model cross --param lam --out bad.nc", "malformed --param 'lam'"),
    "unknown_param": ("sample --model cross --param zz=1 --out bad.nc", "unknown parameter 'zz'"),
    "missing_loss_file": ("sample --loss missing.py:loss --dim 2 --out bad.nc", "file not found"),
    "missing_function": ("sample --loss user_loss.py:nope --dim 2 --out bad.nc", "has no function 'nope'"),
    "zero_chains": ("sample --model cross --chains 0 --out bad.nc", "--chains"),
    "negative_step": ("sample --model cross --step-size -1 --out bad.nc", "--step-size"),
    "existing_out": ("sample --model cross --draws 10 --warmup 0 --out existing.nc", "exists"),
}


def surf(args: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "surf.cli", *args.split()],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli(tmp_path_factory, surf_env):
    """Run every invocation once; ``cli[name] -> (CompletedProcess, workdir)``."""
    jobs = {}
    for name, args in HAPPY.items():
        jobs[name] = args
    for name, (args, _) in BAD.items():
        jobs[name] = args
    folders = {}
    for name in jobs:
        folder = tmp_path_factory.mktemp(f"cli_{name}")
        (folder / "user_loss.py").write_text(LOSS_FILE)
        (folder / "user_model.py").write_text(NUMPYRO_FILE)
        (folder / "existing.nc").write_bytes(EXISTING)
        (folder / "replaced.nc").write_bytes(EXISTING)
        folders[name] = folder
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            name: pool.submit(surf, args, cwd=folders[name], env=surf_env) for name, args in jobs.items()
        }
        return {name: (future.result(), folders[name]) for name, future in futures.items()}


def one_json_object(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def test_happy_path_prints_one_json_object_and_writes_the_file(cli):
    proc, folder = cli["cross"]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = one_json_object(proc.stdout)
    for key in ("out", "model", "sampler", "beta", "chains", "draws", "seconds",
                "ess_bulk_min", "rhat_max", "divergences", "occupancy"):
        assert key in result, key
    assert {"radius", "fraction", "mcse"} <= set(result["occupancy"])
    assert result["out"] == "X.nc" and result["model"] == "cross" and result["sampler"] == "nuts"
    assert result["beta"] == 20.0 and result["chains"] == 4 and result["draws"] == 200
    assert result["seconds"] > 0
    assert result["ess_bulk_min"] > 0 and result["rhat_max"] > 0.9
    assert isinstance(result["divergences"], int) and result["divergences"] >= 0
    occ = result["occupancy"]
    assert occ["radius"] == 0.1 and 0 <= occ["fraction"] <= 1 and occ["mcse"] > 0

    dt = load_datatree(folder / "X.nc")
    assert dt["posterior"]["x"].shape == (4, 200, 2)
    config = read_config(dt)
    assert config["seed"] == 0 and config["sampler"] == "nuts" and config["target"]["beta"] == 20.0
    # the file holds what the JSON summarized
    x = dt["posterior"]["x"].values
    inside = (x**2).sum(-1) < occ["radius"] ** 2
    assert inside.mean() == pytest.approx(occ["fraction"])


def test_the_compilation_cache_goes_to_surf_cache_dir(cli, surf_env):
    proc, _ = cli["cross"]
    assert proc.returncode == 0
    cache = Path(surf_env["SURF_CACHE_DIR"])
    assert any(p.is_file() for p in cache.rglob("*")), "nothing was cached in $SURF_CACHE_DIR"


def test_a_repeated_run_reads_its_programs_back_and_a_users_loss_is_never_stored(tmp_path, surf_env):
    env = dict(surf_env, SURF_CACHE_DIR=str(tmp_path / "cache"))
    (tmp_path / "user_loss.py").write_text(LOSS_FILE)
    store = tmp_path / "cache" / "programs"
    proc = surf("sample --loss user_loss.py:loss --dim 2 --chains 2 --draws 40 --warmup 20 --quiet --json",
                cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not store.exists() or not list(store.iterdir()), "a user's loss must be traced every run"
    args = "sample --model cross --beta 20 --chains 3 --draws 60 --warmup 40 --quiet --json --out {}"
    first = surf(args.format("a.nc"), cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    entries = sorted(p.name for p in store.iterdir())
    assert sum(name.endswith(".jaxprog") for name in entries) == 2, entries  # warmup and chunk
    assert sum(name.endswith(".json") for name in entries) == 1, entries  # the exact occupancy
    stamps = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    second = surf(args.format("b.nc"), cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == stamps  # read back, not rewritten
    a, b = load_datatree(tmp_path / "a.nc"), load_datatree(tmp_path / "b.nc")
    for group in ("posterior", "sample_stats"):
        for name in a[group].data_vars:
            np.testing.assert_array_equal(a[group][name].values, b[group][name].values, err_msg=name)
    ra, rb = one_json_object(first.stdout), one_json_object(second.stdout)
    assert ra["occupancy"] == rb["occupancy"] and ra["occupancy"]["exact"] > 0


def test_a_users_loss_samples(cli):
    proc, folder = cli["loss"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = one_json_object(proc.stdout)
    assert result["model"] == "custom:user_loss.py:loss"
    dt = load_datatree(folder / "L.nc")
    assert dt["posterior"]["x"].shape == (2, 100, 2)


def test_a_numpyro_model_samples(cli):
    proc, folder = cli["numpyro"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = one_json_object(proc.stdout)
    assert result["model"] == "numpyro:user_model.py:model"
    assert "occupancy" not in result  # no singular point for a NumPyro model
    dt = load_datatree(folder / "N.nc")
    assert set(dt["posterior"].data_vars) == {"mu", "sigma"}
    assert (dt["posterior"]["sigma"].values > 0).all()


def test_force_replaces_an_existing_file_and_prints_a_summary(cli):
    proc, folder = cli["force"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "occupancy within r=0.1" in proc.stdout
    assert "wrote replaced.nc" in proc.stdout
    dt = load_datatree(folder / "replaced.nc")
    assert dt["posterior"]["x"].shape == (2, 50, 3)
    assert read_config(dt)["sampler_options"]["step_size"] == 0.3


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, name):
    proc, folder = cli[name]
    words = BAD[name][1]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("surf sample: error:")
    assert words in lines[0]
    assert proc.stdout == ""
    assert not (folder / "bad.nc").exists()
    assert (folder / "existing.nc").read_bytes() == EXISTING
    leftovers = {p.name for p in folder.iterdir()} - {
        "user_loss.py", "user_model.py", "existing.nc", "replaced.nc", "__pycache__"
    }
    assert leftovers == set()


def test_the_console_script_is_installed(repo_root, surf_env):
    script = Path(sys.executable).parent / "surf"
    if not script.exists():
        pytest.skip("no console script next to this interpreter")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=surf_env, timeout=120)
    assert proc.returncode == 0
    assert "sample" in proc.stdout and "demo" in proc.stdout
