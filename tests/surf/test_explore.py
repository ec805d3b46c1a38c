"""``surf explore`` and ``surf llc`` through the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _surf(args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "surf.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, surf_env):
    out = tmp_path_factory.mktemp("explore") / "grok"
    res = _surf(["grok", "--p", "7", "--train-frac", "0.6", "--steps", "50", "--eval-every", "50",
                 "--checkpoint-every", "50", "--out", str(out), "--quiet", "--json"], surf_env)
    assert res.returncode == 0, res.stderr
    return out / "checkpoint_50"


def test_explore_happy_path(tiny, surf_env, tmp_path):
    nc = tmp_path / "x.nc"
    res = _surf(["explore", "--from", str(tiny), "--sampler", "hmc", "--beta", "wbic", "--chains", "2",
                 "--draws", "20", "--warmup", "30", "--seed", "1", "--out", str(nc), "--json", "--quiet"], surf_env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for key in ("beta", "initial_test_acc", "final_test_acc", "mean_test_acc_last_half", "ess_bulk", "rhat_max",
                "acceptance_rate", "divergences", "llc", "seconds"):
        assert key in out
    assert set(out["ess_bulk"]) == {"train_loss", "test_acc"}
    assert 0 < out["acceptance_rate"] <= 1
    assert nc.is_file()


def test_explore_sgld_minibatch(tiny, surf_env):
    res = _surf(["explore", "--from", str(tiny), "--sampler", "sgld", "--beta", "100", "--batch-size", "8",
                 "--step-size", "1e-5", "--chains", "2", "--draws", "10", "--warmup", "5", "--json", "--quiet"], surf_env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["beta"] == 100.0


@pytest.mark.parametrize("args", [
    ["explore", "--from", "MISSING", "--chains", "1", "--draws", "2"],
    ["explore", "--from", "CORRUPT", "--chains", "1", "--draws", "2"],
    ["llc", "--from", "MISSING", "--chains", "1", "--draws", "2"],
    ["llc", "--model", "quadratic", "--batch-size", "4"],
])
def test_bad_input_is_one_line(args, surf_env, tmp_path):
    (tmp_path / "corrupt.npz").write_bytes(b"junk")
    args = [a.replace("MISSING", str(tmp_path / "nope")).replace("CORRUPT", str(tmp_path / "corrupt")) for a in args]
    res = _surf(args, surf_env)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_llc_cli_toy_json(surf_env, tmp_path):
    png = tmp_path / "trace.png"
    res = _surf(["llc", "--model", "quadratic", "--chains", "4", "--draws", "2000", "--seed", "0", "--json",
                 "--quiet", "--out", str(png)], surf_env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out["llc"]) == {"mean", "std", "per_chain"} and len(out["llc"]["per_chain"]) == 4
    assert out["llc"]["mean"] == pytest.approx(1.0, rel=0.15)
    assert out["nbeta"] > 0 and out["seconds"] > 0
    assert png.is_file()


def test_llc_cli_checkpoint(tiny, surf_env):
    res = _surf(["llc", "--from", str(tiny), "--chains", "2", "--draws", "20", "--warmup", "5", "--json", "--quiet"],
                surf_env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["llc"]["mean"] is not None and out["localization"] == 100.0
