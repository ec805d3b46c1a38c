"""``surf grok``: grokking with and without weight decay, checkpoints, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import arviz as az
import numpy as np
import pytest

from surf.common import UserError
from surf.grok import DEFAULTS, load_grok_checkpoint, parse_interventions, train

# Test size (measured): p = 23, 60% train, AdamW lr 1e-2 reaches ~0.98 test
# accuracy by step 2000 with weight decay 1; with weight decay 0 it memorizes
# (train accuracy 1) and test accuracy stays 0.
SMALL = dict(DEFAULTS, p=23, train_frac=0.6, lr=1e-2, steps=2000, eval_every=100, checkpoint_every=1000)
CLI_SMALL = ["--p", "23", "--train-frac", "0.6", "--lr", "1e-2", "--eval-every", "100"]


def test_weight_decay_groks_and_no_weight_decay_memorizes():
    grok = train(SMALL, out=None, progress=False)["summary"]
    memo = train(dict(SMALL, weight_decay=0.0), out=None, progress=False)["summary"]
    assert grok["final_train_acc"] == 1.0 and memo["final_train_acc"] == 1.0
    assert grok["final_test_acc"] > 0.9
    assert memo["max_test_acc"] < 0.2


def test_checkpoint_continuation_is_bitwise_the_uninterrupted_run(tmp_path):
    cfg = dict(SMALL, steps=600, checkpoint_every=300, interventions=parse_interventions(["noise=1e-3"]))
    full = train(cfg, out=tmp_path / "full", progress=False)
    position, opt_state, meta = load_grok_checkpoint(str(tmp_path / "full" / "checkpoint_300"))
    assert meta["step"] == 300 and meta["config"]["split_seed"] == 0 and meta["config"] == cfg
    rest = train(dict(cfg, steps=300), out=tmp_path / "rest", position=position, opt_state=opt_state,
                 start_step=300, progress=False)
    for key in ("train_loss", "test_loss", "test_acc", "weight_norm"):
        np.testing.assert_array_equal(full["curves"][key][3:], rest["curves"][key])
    np.testing.assert_array_equal(rest["curves"]["step"], [400, 500, 600])
    # the checkpoint round trip: position and optimizer state come back exactly
    end, end_state, _ = load_grok_checkpoint(str(tmp_path / "rest" / "checkpoint_600"))
    end_full, end_full_state, _ = load_grok_checkpoint(str(tmp_path / "full" / "checkpoint_600"))
    np.testing.assert_array_equal(end, end_full)
    import jax

    for a, b in zip(jax.tree.leaves(end_state), jax.tree.leaves(end_full_state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "spec, expected",
    [
        (["noise=0.01"], [{"kind": "noise", "sigma": 0.01}]),
        (["antireg=1e-3", "norm=1e-3,2"], [{"kind": "antireg", "gamma": 1e-3}, {"kind": "norm", "gamma": 1e-3, "k": 2.0}]),
    ],
)
def test_parse_interventions(spec, expected):
    assert parse_interventions(spec) == expected


@pytest.mark.parametrize("spec", ["noise", "noise=x", "norm=1", "antireg=1,2", "spin=1", "noise=-1"])
def test_malformed_intervention_is_a_user_error(spec):
    with pytest.raises(UserError):
        parse_interventions([spec])


def _surf(args, env):
    return subprocess.run([sys.executable, "-m", "surf.cli", "grok", *args], capture_output=True, text=True, env=env, timeout=300)


def test_cli_happy_path_and_continuation(tmp_path, surf_env):
    out = tmp_path / "run"
    res = _surf([*CLI_SMALL, "--steps", "400", "--checkpoint-every", "200", "--out", str(out), "--json", "--quiet"], surf_env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert set(summary) == {"final_train_acc", "final_test_acc", "max_test_acc", "step_test_acc_50",
                            "step_test_acc_95", "seconds", "steps_per_second", "out"}
    assert summary["final_train_acc"] > 0.9
    dt = az.from_netcdf(out / "curves.nc")
    np.testing.assert_array_equal(dt.posterior["step"].values, [100, 200, 300, 400])
    assert dt.posterior["test_acc"].shape == (1, 4)
    assert {"checkpoint_200.npz", "checkpoint_200.json", "checkpoint_400.npz", "checkpoint_400.json"} <= {
        p.name for p in out.iterdir()}
    meta = json.loads((out / "checkpoint_200.json").read_text())
    assert meta["step"] == 200 and meta["split_seed"] == 0 and meta["config"]["p"] == 23
    # continue with another optimizer and an intervention (reference = the checkpoint)
    more = tmp_path / "more"
    res = _surf(["--from", str(out / "checkpoint_400"), "--optimizer", "adam", "--weight-decay", "0", "--b1", "0",
                 "--intervention", "antireg=1e-3", "--steps", "200", "--out", str(more), "--json", "--quiet"], surf_env)
    assert res.returncode == 0, res.stderr
    dt = az.from_netcdf(more / "curves.nc")
    np.testing.assert_array_equal(dt.posterior["step"].values, [500, 600])
    cfg = json.loads(dt.attrs["surf_config"])
    assert cfg["optimizer"] == "adam" and cfg["from_checkpoint"]["optimizer_state"] == "fresh"


@pytest.mark.parametrize(
    "args",
    [
        ["--p", "21", "--op", "mul"],
        ["--train-frac", "1.5"],
        ["--intervention", "norm=1"],
        ["--op", "pow"],
        ["--arch", "resnet"],
        ["--from", "nowhere/checkpoint_5"],
        ["EXISTING"],
    ],
)
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, surf_env, args):
    existing = tmp_path / "existing"
    existing.mkdir()
    out = tmp_path / "out"
    if args == ["EXISTING"]:
        args, out = [], existing
    res = _surf([*args, "--steps", "100", "--out", str(out)], surf_env)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "out").exists()
    assert list(existing.iterdir()) == []


def test_cli_corrupt_checkpoint_is_a_user_error(tmp_path, surf_env):
    (tmp_path / "checkpoint_1.json").write_text("{not json")
    (tmp_path / "checkpoint_1.npz").write_bytes(b"junk")
    res = _surf(["--from", str(tmp_path / "checkpoint_1"), "--out", str(tmp_path / "out")], surf_env)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "corrupt" in res.stderr
    assert not (tmp_path / "out").exists()
