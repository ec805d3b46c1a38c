"""A grok checkpoint's training loss as a Target."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.checkpoint_target import checkpoint_llc_problem, checkpoint_target, load_grok_position
from samplers.checkpoint import CheckpointError
from surf.grok import DEFAULTS, train

TINY = dict(DEFAULTS, p=7, train_frac=0.6, steps=50, eval_every=50, checkpoint_every=50, seed=0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("grok7")
    train(TINY, out=out / "run", progress=False)
    return str(out / "run" / "checkpoint_50")


def test_equipartition_beta_is_d_over_twice_the_mean_loss(tiny_checkpoint):
    ck = load_grok_position(tiny_checkpoint)
    t = checkpoint_target(ck, beta="equipartition", beta_scale=0.5)
    L0 = float(ck.problem.loss_fn(ck.position))
    assert t.config["loss_reduction"] == "mean"
    assert math.isclose(t.beta, 0.5 * t.dim / (2 * L0), rel_tol=1e-5)
    assert t.num_data == int(ck.problem.task.x_train.shape[0])
    # log p = -beta * mean loss at the start
    assert float(t.logdensity_fn(ck.position)) == pytest.approx(-t.beta * L0, rel=1e-5)


def test_wbic_number_prior_and_localization(tiny_checkpoint):
    ck = load_grok_position(tiny_checkpoint)
    n = int(ck.problem.task.x_train.shape[0])
    assert checkpoint_target(ck, beta="wbic").beta == pytest.approx(n / math.log(n))
    t = checkpoint_target(ck, beta=10.0, prior_wd=1.0, localization=2.0)
    w = ck.position + 0.1
    expected = -10.0 * float(ck.problem.loss_fn(w)) - 0.5 * 10.0 * float(jnp.sum(w**2)) - 0.5 * 2.0 * float(jnp.sum((w - ck.position) ** 2))
    assert float(t.logdensity_fn(w)) == pytest.approx(expected, rel=1e-4)


def test_record_fn_reports_scalars_not_weights(tiny_checkpoint):
    t = checkpoint_target(tiny_checkpoint, beta=1.0)
    rec = t.record_fn(t.init_fn(jax.random.key(0), 2)[0])
    assert set(rec) == {"train_loss", "train_acc", "test_loss", "test_acc", "weight_norm", "distance"}
    assert all(np.ndim(v) == 0 for v in rec.values())
    assert float(rec["distance"]) == 0.0


def test_equipartition_at_zero_loss_is_refused(tiny_checkpoint):
    ck = load_grok_position(tiny_checkpoint)
    zero = ck._replace(problem=ck.problem._replace(loss_fn=lambda w: 0.0 * jnp.sum(w)))
    with pytest.raises(ValueError, match="equipartition"):
        checkpoint_target(zero, beta="equipartition")


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(CheckpointError):
        load_grok_position(tmp_path / "nothing")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        load_grok_position(tmp_path / "bad")


def test_llc_problem_minibatch_loss_matches_full_loss(tiny_checkpoint):
    lp = checkpoint_llc_problem(tiny_checkpoint)
    full = float(lp.loss_fn(lp.center))
    assert float(lp.batch_loss_fn(lp.center, lp.data)) == pytest.approx(full, rel=1e-5)
    assert lp.num_data == lp.data[0].shape[0]


def test_hmc_on_a_tiny_network_has_a_sensible_acceptance_rate(tiny_checkpoint):
    from samplers.kernels import build_sampler
    from samplers.run import run_chains

    t = checkpoint_target(tiny_checkpoint, beta="wbic")
    trace = run_chains(jax.random.key(0), build_sampler("hmc", t), t.init_fn(jax.random.key(1), 2),
                       record_fn=t.record_fn, num_warmup=60, num_draws=30, progress=False)
    acc = float(np.mean(trace.stats["acceptance_rate"]))
    assert 0.4 < acc < 0.99
    assert trace.draws["test_acc"].shape == (2, 30)
    assert np.all(np.isfinite(trace.draws["train_loss"]))
