"""``--devices`` and ``--distributed`` through the command line (README: Scaling out).

Four forced host devices stand in for four GPUs; two processes on loopback
with two devices each stand in for two hosts. The result files must hold the
same draws as a one-device run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

FOUR = "--xla_force_host_platform_device_count=4"


def _surf(args, env, timeout=400, **extra):
    return subprocess.run([sys.executable, "-m", "surf.cli", *args], capture_output=True, text=True,
                          env=dict(env, **extra), timeout=timeout)


def _same_groups(a_path, b_path, groups=("posterior", "sample_stats")):
    a, b = xr.open_datatree(a_path), xr.open_datatree(b_path)
    for group in groups:
        assert set(a[group].data_vars) == set(b[group].data_vars)
        for name in a[group].data_vars:
            np.testing.assert_array_equal(a[group][name].values, b[group][name].values, err_msg=f"{group}/{name}")
    return a, b


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, surf_env):
    out = tmp_path_factory.mktemp("scale") / "grok"
    res = _surf(["grok", "--p", "7", "--train-frac", "0.6", "--steps", "50", "--eval-every", "50",
                 "--checkpoint-every", "50", "--out", str(out), "--quiet"], surf_env)
    assert res.returncode == 0, res.stderr
    return out / "checkpoint_50"


SAMPLE = ["sample", "--model", "cross", "--beta", "20", "--sampler", "nuts", "--chains", "6", "--draws", "150",
          "--warmup", "150", "--seed", "3", "--quiet"]


def test_sample_on_four_devices_writes_the_one_device_draws(surf_env, tmp_path):
    one = _surf([*SAMPLE, "--devices", "1", "--out", str(tmp_path / "one.nc")], surf_env, XLA_FLAGS=FOUR)
    four = _surf([*SAMPLE, "--out", str(tmp_path / "four.nc")], surf_env, XLA_FLAGS=FOUR)  # default: all four
    assert one.returncode == 0 and four.returncode == 0, one.stderr + four.stderr
    _, b = _same_groups(tmp_path / "one.nc", tmp_path / "four.nc")
    assert json.loads(b.attrs["surf_placement"])["device_limit_per_process"] == 4


def test_sgd_runs_and_llc_on_four_devices_match_one(surf_env, tmp_path, tiny_checkpoint):
    sgd = ["sgd", "--runs", "3001", "--steps", "40", "--seed", "5", "--json", "--quiet"]
    one = _surf([*sgd, "--devices", "1"], surf_env, XLA_FLAGS=FOUR)
    four = _surf([*sgd, "--devices", "4"], surf_env, XLA_FLAGS=FOUR)
    assert one.returncode == 0 and four.returncode == 0, one.stderr + four.stderr
    a, b = json.loads(one.stdout), json.loads(four.stdout)
    assert a["occupancy"] == b["occupancy"] and a["stickiness"] == b["stickiness"]
    llc = ["llc", "--from", str(tiny_checkpoint), "--chains", "5", "--draws", "20", "--warmup", "5",
           "--batch-size", "8", "--json", "--quiet"]
    one = _surf([*llc, "--devices", "1"], surf_env, XLA_FLAGS=FOUR)
    four = _surf([*llc, "--devices", "4"], surf_env, XLA_FLAGS=FOUR)
    assert one.returncode == 0 and four.returncode == 0, one.stderr + four.stderr
    a, b = json.loads(one.stdout), json.loads(four.stdout)
    assert a["llc"]["per_chain"] == b["llc"]["per_chain"] and len(a["llc"]["per_chain"]) == 5
    assert all(np.isfinite(v) for v in a["llc"]["per_chain"])


def test_more_devices_than_the_machine_has_is_one_line(surf_env, tmp_path):
    res = _surf([*SAMPLE, "--devices", "9", "--out", str(tmp_path / "x.nc")], surf_env, XLA_FLAGS=FOUR)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "--devices 9" in res.stderr and "1..4" in res.stderr
    assert not (tmp_path / "x.nc").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_on_loopback_write_the_one_device_draws_once(surf_env, tmp_path):
    out = tmp_path / "two.nc"
    args = [sys.executable, "-m", "surf.cli", *SAMPLE, "--sampler", "mala", "--json", "--distributed",
            "--out", str(out)]
    env = dict(surf_env, XLA_FLAGS="--xla_force_host_platform_device_count=2",
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{_free_port()}", JAX_NUM_PROCESSES="2")
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(env, JAX_PROCESS_ID=str(i))) for i in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    result = json.loads(outs[0][0])  # process 0 speaks for the run: clean JSON on stdout
    assert result["chains"] == 6
    assert outs[1][0] == ""  # process 1 prints nothing
    one = _surf([*SAMPLE, "--sampler", "mala", "--devices", "1", "--out", str(tmp_path / "one.nc")], surf_env)
    assert one.returncode == 0, one.stderr
    _, b = _same_groups(tmp_path / "one.nc", out)
    assert json.loads(b.attrs["surf_placement"])["process_count"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.nc", "two.nc"]  # no stray checkpoints or temp files


def test_distributed_without_a_coordinator_is_one_line(surf_env, tmp_path):
    env = {k: v for k, v in surf_env.items() if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROC", "SLURM"))}
    res = _surf([*SAMPLE, "--distributed", "--out", str(tmp_path / "x.nc")], env, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().count("\n") == 0 and "--distributed" in res.stderr
    assert not (tmp_path / "x.nc").exists()
