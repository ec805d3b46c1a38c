"""Convergence headline numbers and the warnings built from them."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from diagnostics.arviz_io import trace_to_datatree
from diagnostics.summary import convergence, finite_chain_mask, summary_table, warnings_for
from samplers.run import Trace


def tree_from(x, *, stats=None):
    x = np.asarray(x, dtype=np.float32)
    stats = dict(stats or {})
    stats.setdefault("is_finite", np.all(np.isfinite(x), axis=-1) if x.ndim == 3 else np.isfinite(x))
    trace = Trace({"x": x}, stats, {}, 0.0, 0.0, 0, 1)
    return trace_to_datatree(trace, config={"test": True})


def iid(chains=4, draws=500, dim=2, seed=0):
    return np.random.default_rng(seed).normal(size=(chains, draws, dim))


def test_good_chains_converge():
    diag = convergence(tree_from(iid()))
    assert diag["rhat_max"] < 1.01
    assert diag["ess_bulk_min"] > 1000  # 2000 independent draws per coordinate
    assert diag["divergences"] == 0 and diag["chains_stopped_nonfinite"] == 0
    assert diag["acceptance_rate"] is None
    assert warnings_for(diag, num_chains=4) == []


def test_disagreeing_chains_are_flagged():
    x = iid()
    x[0] += 3.0  # one chain stuck somewhere else
    diag = convergence(tree_from(x))
    assert diag["rhat_max"] > 1.1
    assert any("R-hat" in w for w in warnings_for(diag, num_chains=4))


def test_a_single_chain_has_no_rhat():
    diag = convergence(tree_from(iid(chains=1)))
    assert diag["rhat_max"] is None and diag["ess_bulk_min"] > 0


def test_stopped_chains_are_left_out():
    x = iid()
    finite_part = x[[0, 2, 3]].copy()
    x[1, 100:] = np.nan
    tree = tree_from(x)
    assert list(finite_chain_mask(tree)) == [True, False, True, True]
    diag = convergence(tree)
    assert diag["chains_stopped_nonfinite"] == 1
    assert diag["rhat_max"] == pytest.approx(convergence(tree_from(finite_part))["rhat_max"])
    table = summary_table(tree)
    assert table.loc["x[0]", "mean"] == pytest.approx(finite_part[..., 0].mean(), abs=1e-3)
    assert any("1 of 4 chains stopped" in w for w in warnings_for(diag, num_chains=4))


def test_every_chain_stopped_is_an_error():
    x = iid()
    x[:, -1] = np.nan
    with pytest.raises(ValueError, match="every chain stopped"):
        convergence(tree_from(x))


def test_divergences_and_acceptance_are_read_from_sample_stats():
    rng = np.random.default_rng(1)
    diverging = rng.random((4, 500)) < 0.01
    acceptance = rng.uniform(0.1, 0.3, size=(4, 500))
    diag = convergence(tree_from(iid(), stats={"diverging": diverging, "acceptance_rate": acceptance}))
    assert diag["divergences"] == int(diverging.sum()) > 0
    assert diag["acceptance_rate"] == pytest.approx(acceptance.mean(), rel=1e-5)
    messages = warnings_for(diag, num_chains=4)
    assert any(f"{diverging.sum()} divergent" in w for w in messages)
    assert any("low acceptance rate" in w for w in messages)


def test_low_ess_is_flagged():
    x = np.cumsum(iid(draws=200), axis=1)  # random walks: tiny ESS
    diag = convergence(tree_from(x))
    assert diag["ess_bulk_min"] < 100
    assert any("effective sample size" in w for w in warnings_for(diag, num_chains=4))


def test_summary_table_matches_arviz():
    tree = tree_from(iid())
    ours, theirs = summary_table(tree), az.summary(tree)
    assert list(ours.index) == list(theirs.index)
    np.testing.assert_allclose(ours["mean"].astype(float), theirs["mean"].astype(float))
