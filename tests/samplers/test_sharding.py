"""Chains over several (forced) host devices."""

import os
import subprocess
import sys
import textwrap


def test_chains_sharded_over_four_host_devices_match_one_device(tmp_path):
    script = textwrap.dedent(
        """
        import jax, numpy as np
        from models.toy import toy_target
        from samplers.kernels import SamplerOptions, build_sampler
        from samplers.run import run_chains
        assert jax.local_device_count() == 4
        t = toy_target("cross", beta=20.0)
        s = build_sampler("sgd", t, SamplerOptions(step_size=1e-3))
        pos = t.init_fn(jax.random.key(1), 6)
        kw = dict(record_fn=t.record_fn, num_warmup=50, num_draws=200, progress=False)
        one = run_chains(jax.random.key(0), s, pos, devices=1, **kw)
        for d in (2, 4):
            many = run_chains(jax.random.key(0), s, pos, devices=d, **kw)
            assert many.draws["x"].shape == (6, 200, 2)
            np.testing.assert_array_equal(one.draws["x"], many.draws["x"])
        print("ok")
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "ok"
