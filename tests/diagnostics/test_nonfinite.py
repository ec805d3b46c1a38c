"""Non-finite values during a run: stop the chain, say when and why, never average them in."""

import jax
import jax.numpy as jnp
import numpy as np

from diagnostics.arviz_io import trace_to_datatree
from diagnostics.summary import convergence, warnings_for
from models.toy import make_loss_target
from samplers.kernels import SamplerOptions, build_sampler
from samplers.run import run_chains


def _trace(loss, starts, num_draws=60):
    target = make_loss_target("trap", loss, 1, beta=1.0)
    sampler = build_sampler("ula", target, SamplerOptions(step_size=0.01))
    return run_chains(jax.random.key(0), sampler, jnp.asarray(starts), record_fn=target.record_fn,
                      num_warmup=0, num_draws=num_draws, progress=False)


def test_a_chain_that_hits_nan_stops_with_when_and_why_and_is_left_out():
    # the loss is NaN beyond x = 1.5: the chain started at 1.45 drifts in, the one at -1 never does
    loss = lambda x: jnp.where(x[0] > 1.5, jnp.nan, 0.0) + 0.0 * jnp.sum(x)  # noqa: E731
    trace = _trace(loss, [[1.49], [-1.0]], num_draws=400)
    finite = trace.stats["is_finite"]
    assert finite[1].all()
    assert not finite[0].all()
    first = int(np.argmax(~finite[0]))
    assert finite[0, :first].all() and not finite[0, first:].any()
    assert trace.stats["nonfinite_reason"][0, first] == 2  # the log density went NaN
    assert np.isnan(trace.draws["x"][0, first:]).all()
    assert np.isfinite(trace.draws["x"][1]).all()
    dt = trace_to_datatree(trace, config={})
    diag = convergence(dt)
    assert diag["chains_stopped_nonfinite"] == 1
    assert diag["nonfinite_stops"] == [{"chain": 0, "draw": first, "reason": "log density"}]
    message = " ".join(warnings_for(diag, num_chains=2))
    assert f"chain 0 at draw {first} (log density)" in message


def test_a_gradient_blowup_is_reported_as_position():
    loss = lambda x: jnp.sum(jnp.where(x > 1.0, 1e30 * x**4, 0.0))  # noqa: E731
    trace = _trace(loss, [[1.05]], num_draws=20)
    finite = trace.stats["is_finite"][0]
    assert not finite.all()
    first = int(np.argmax(~finite))
    assert trace.stats["nonfinite_reason"][0, first] in (1, 2)
    assert (trace.stats["nonfinite_reason"][0, :first] == 0).all()
