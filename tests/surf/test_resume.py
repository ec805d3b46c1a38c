"""Interrupt and resume: a killed run continues to the same bits; determinism of result files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

ARGS = ["sample", "--model", "cross", "--beta", "20", "--sampler", "mala", "--chains", "4",
        "--warmup", "200", "--draws", "30000", "--thin", "2", "--seed", "3", "--quiet"]


def _env(tmp_path):
    env = dict(os.environ)
    env["SURF_CACHE_DIR"] = str(tmp_path / "jax-cache")
    env.pop("SURF_DEBUG", None)
    return env


def _run(tmp_path, *extra):
    return subprocess.run([sys.executable, "-m", "surf.cli", *ARGS, *extra], capture_output=True,
                          text=True, cwd=tmp_path, env=_env(tmp_path))


def _start(tmp_path, *extra):
    return subprocess.Popen([sys.executable, "-m", "surf.cli", *ARGS, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env(tmp_path))


def _wait_for_chunks(meta_path, proc, minimum=2, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be interrupted: {proc.communicate()}")
        try:
            if json.loads(meta_path.read_text())["chunks_done"] >= minimum:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    pytest.fail("no checkpoint appeared")


def _data(path):
    tree = xr.open_datatree(path, engine="h5netcdf")
    out = {f"{g}/{v}": np.asarray(tree[g][v]) for g in ("posterior", "sample_stats") for v in tree[g].data_vars}
    tree.close()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    proc = _run(tmp, "--out", "full.nc")
    assert proc.returncode == 0, proc.stderr
    return tmp, _data(tmp / "full.nc")


def test_sigkill_then_resume_gives_identical_draws(reference, tmp_path):
    ref_dir, expected = reference
    (tmp_path / "jax-cache").symlink_to(ref_dir / "jax-cache")  # warm compile cache, same programs
    proc = _start(tmp_path, "--out", "run.nc")
    _wait_for_chunks(tmp_path / "run.nc.partial.json", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (tmp_path / "run.nc").exists()
    again = _run(tmp_path, "--out", "run.nc")  # without --resume: refused, nothing lost
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = _run(tmp_path, "--out", "run.nc", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    got = _data(tmp_path / "run.nc")
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert not (tmp_path / "run.nc.partial.npz").exists()


def test_sigint_and_sigterm_leave_a_checkpoint_and_say_how_to_resume(reference, tmp_path):
    ref_dir, _ = reference
    (tmp_path / "jax-cache").symlink_to(ref_dir / "jax-cache")
    for sig in (signal.SIGINT, signal.SIGTERM):
        for leftover in tmp_path.glob("run.nc.partial.*"):  # so the wait below sees this run's
            leftover.unlink()
        proc = _start(tmp_path, "--out", "run.nc", "--force")
        _wait_for_chunks(tmp_path / "run.nc.partial.json", proc, minimum=1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert len(err.strip().splitlines()) == 1 and "--resume" in err, err
        assert (tmp_path / "run.nc.partial.npz").exists()
        assert not (tmp_path / "run.nc").exists()


def test_same_seed_same_file_data_different_seed_different(reference, tmp_path):
    ref_dir, expected = reference
    (tmp_path / "jax-cache").symlink_to(ref_dir / "jax-cache")
    small = ["--draws", "500"]
    a = subprocess.run([sys.executable, "-m", "surf.cli", *ARGS, *small, "--out", "a.nc"], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True)
    b = subprocess.run([sys.executable, "-m", "surf.cli", *ARGS, *small, "--out", "b.nc"], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True)
    c = subprocess.run([sys.executable, "-m", "surf.cli", *ARGS, *small, "--seed", "4", "--out", "c.nc"], cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True)
    assert a.returncode == b.returncode == c.returncode == 0, (a.stderr, c.stderr)
    da, db, dc = _data(tmp_path / "a.nc"), _data(tmp_path / "b.nc"), _data(tmp_path / "c.nc")
    for key in da:
        np.testing.assert_array_equal(da[key], db[key], err_msg=key)
    assert not np.array_equal(da["posterior/x"], dc["posterior/x"])


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    proc = _run(tmp_path, "--out", "x.nc", "--resume")
    assert proc.returncode == 2 and "no interrupted run" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jax-cache"] or not (tmp_path / "x.nc").exists()


GROK = ["grok", "--p", "23", "--train-frac", "0.6", "--lr", "1e-2", "--steps", "4000",
        "--eval-every", "25", "--checkpoint-every", "250", "--seed", "1", "--quiet"]


def _grok_curves(folder):
    tree = xr.open_datatree(folder / "curves.nc", engine="h5netcdf")
    out = {v: np.asarray(tree["posterior"][v]) for v in tree["posterior"].data_vars}
    tree.close()
    return out


def test_grok_killed_and_resumed_gives_the_same_curves(tmp_path):
    env = _env(tmp_path)
    full = subprocess.run([sys.executable, "-m", "surf.cli", *GROK, "--out", "full"], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([sys.executable, "-m", "surf.cli", *GROK, "--out", "run"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_chunks(tmp_path / "run" / "curves.nc.partial.json", proc, minimum=3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (tmp_path / "run" / "curves.nc").exists()
    resumed = subprocess.run([sys.executable, "-m", "surf.cli", *GROK, "--out", "run", "--resume"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = _grok_curves(tmp_path / "full"), _grok_curves(tmp_path / "run")
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
