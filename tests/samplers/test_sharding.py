"""Chains over several devices: forced host devices and two processes on loopback.

The contract (``samplers.placement``): the same seed gives the same bits on
any device count and in a multi-process run, for every kind of kernel,
adaptive ones included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from samplers.placement import _has_avx512

FOUR = "--xla_force_host_platform_device_count=4"


def _python(script: str, env_extra: dict, cwd, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def test_every_kernel_gives_the_same_bits_on_1_2_3_4_devices(tmp_path, repo_root):
    script = """
        import jax, numpy as np
        from models.toy import toy_target
        from samplers.kernels import SamplerOptions, build_sampler
        from samplers.run import run_chains
        from samplers.placement import chain_layout, global_chains
        assert jax.local_device_count() == 4
        t = toy_target("cross", beta=20.0)
        pos = t.init_fn(jax.random.key(1), 7)  # 7 chains: padded differently on 2, 3 and 4 devices
        kw = dict(record_fn=t.record_fn, num_warmup=100, num_draws=60, progress=False, chunk_size=25)
        for name, opts in [("sgd", SamplerOptions(step_size=1e-3)), ("mala", SamplerOptions()),
                           ("hmc", SamplerOptions(mass_matrix="identity")), ("nuts", SamplerOptions()),
                           ("sghmc", SamplerOptions(step_size=1e-4))]:
            s = build_sampler(name, t, opts)
            one = run_chains(jax.random.key(0), s, pos, devices=1, **kw)
            for d in (2, 3, 4):
                many = run_chains(jax.random.key(0), s, pos, devices=d, **kw)
                assert many.draws["x"].shape == (7, 60, 2)
                np.testing.assert_array_equal(one.draws["x"], many.draws["x"], err_msg=f"{name} on {d}")
                for k in one.stats:
                    np.testing.assert_array_equal(one.stats[k], many.stats[k], err_msg=f"{name} {k} on {d}")
                for k in one.params:
                    np.testing.assert_array_equal(one.params[k], many.params[k], err_msg=f"{name} {k} on {d}")
        lay = chain_layout(7, 3)
        assert (lay.per_device, lay.padded, len(lay.devices)) == (3, 9, 3)
        assert len(chain_layout(1, 4).devices) == 1  # never more devices than chains
        # memory: each device holds its own block only
        blocks = lay.blocks(np.arange(9.0))
        assert [b.shape for b in blocks] == [(3,)] * 3
        assert [next(iter(b.devices())) for b in blocks] == list(lay.devices)
        whole = global_chains(lay, blocks)
        assert whole.sharding.spec == jax.sharding.PartitionSpec("chains") and whole.sharding.mesh.shape["chains"] == 3
        np.testing.assert_array_equal(np.asarray(whole), np.arange(9.0))
        assert [s.data.shape for s in whole.addressable_shards] == [(3,)] * 3
        print("ok")
    """
    proc = _python(script, {"XLA_FLAGS": FOUR, "PYTHONPATH": str(repo_root)}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_a_run_interrupted_on_one_layout_resumes_on_another_with_the_same_bits(tmp_path, repo_root):
    """4 devices -> 1 and 1 -> 4 (5 chains: padded to 8 there), MALA and the SGLD that carries its gradient."""
    script = """
        import jax, numpy as np
        from models.toy import toy_target
        from models.llc_problem import toy_llc_problem
        from samplers.kernels import SamplerOptions, build_sampler
        from samplers.sgmcmc import sg_sampler
        from samplers.run import run_chains
        t = toy_target("cross", beta=20.0)
        problem = toy_llc_problem("cross")
        kernels = {"mala": (build_sampler("mala", t, SamplerOptions()), t.init_fn(jax.random.key(1), 5), t.record_fn),
                   "sgld": (sg_sampler("sgld", problem, 1e3, 0.0, step_size=1e-5),
                            np.tile(np.asarray(problem.center)[None], (5, 1)), lambda z: {"z": z})}

        class Stop(Exception):
            pass

        def stop_after_two(done, carry):
            if done == 60:
                raise Stop

        for name, (s, pos, rec) in kernels.items():
            kw = dict(record_fn=rec, num_warmup=80, num_draws=90, progress=False, chunk_size=30)
            whole = run_chains(jax.random.key(0), s, pos, devices=1, **kw)
            for first, then in ((4, 1), (1, 4)):
                ck = f"ck_{name}_{first}_{then}"
                try:
                    run_chains(jax.random.key(0), s, pos, devices=first, checkpoint=ck, on_chunk=stop_after_two, **kw)
                except Stop:
                    pass
                resumed = run_chains(jax.random.key(0), s, pos, devices=then, checkpoint=ck, resume=True, **kw)
                for k in whole.draws:
                    np.testing.assert_array_equal(whole.draws[k], resumed.draws[k], err_msg=f"{name} {first}->{then}")
                for k in whole.stats:
                    np.testing.assert_array_equal(whole.stats[k], resumed.stats[k], err_msg=f"{name} {k}")
        print("ok")
    """
    proc = _python(script, {"XLA_FLAGS": FOUR, "PYTHONPATH": str(repo_root)}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


def test_use_host_cores_gives_one_cpu_device_per_core_before_jax_starts(tmp_path, repo_root):
    script = """
        import os
        from samplers.placement import use_host_cores
        assert use_host_cores(3) == 3
        assert "--xla_force_host_platform_device_count=3" in os.environ["XLA_FLAGS"]
        import jax
        assert jax.local_device_count() == 3, jax.devices()
        assert use_host_cores(5) is None  # already set (and too late anyway): nothing changes
        assert os.environ["XLA_FLAGS"].count("device_count") == 1
        print("ok")
    """
    env = {"XLA_FLAGS": ""}
    proc = _python(script, env, cwd=repo_root)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    # the user's own count wins
    proc = _python(script.replace("use_host_cores(3) == 3", "use_host_cores(3) is None")
                   .replace("device_count=3", "device_count=2").replace("== 3, jax", "== 2, jax"),
                   {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}, cwd=repo_root)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    # ... in JAX's own spelling too
    proc = _python(script.replace("use_host_cores(3) == 3", "use_host_cores(3) is None")
                   .replace('assert "--xla_force_host_platform_device_count=3" in os.environ["XLA_FLAGS"]', "")
                   .replace('assert os.environ["XLA_FLAGS"].count("device_count") == 1', "")
                   .replace("== 3, jax", "== 2, jax"),
                   {"XLA_FLAGS": "", "JAX_NUM_CPU_DEVICES": "2"}, cwd=repo_root)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_use_host_cores_does_nothing_once_jax_has_started(monkeypatch):
    import jax

    from samplers.placement import use_host_cores

    jax.devices()  # the backend is up in this process
    monkeypatch.setenv("XLA_FLAGS", "")
    assert use_host_cores(4) is None
    assert os.environ["XLA_FLAGS"] == ""


def test_use_host_cores_asks_for_wide_vectors_on_avx512(monkeypatch, tmp_path):
    from samplers import placement

    has_avx512 = placement._has_avx512
    monkeypatch.setattr(placement, "_backend_started", lambda: False)
    monkeypatch.delenv("JAX_NUM_CPU_DEVICES", raising=False)
    for avx512, user, expected in [
        (True, "", "--xla_cpu_prefer_vector_width=512 --xla_force_host_platform_device_count=2"),
        (False, "", "--xla_force_host_platform_device_count=2"),
        (True, "--xla_cpu_prefer_vector_width=256", "--xla_cpu_prefer_vector_width=256 --xla_force_host_platform_device_count=2"),
        (True, "--xla_force_host_platform_device_count=3", "--xla_force_host_platform_device_count=3 --xla_cpu_prefer_vector_width=512"),
    ]:
        monkeypatch.setattr(placement, "_has_avx512", lambda avx512=avx512: avx512)
        monkeypatch.setenv("XLA_FLAGS", user)
        placement.use_host_cores(2)
        assert os.environ["XLA_FLAGS"] == expected, (avx512, user)

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert has_avx512(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_vnni\n")
    assert not has_avx512(str(info))
    assert not has_avx512(str(tmp_path / "missing"))


@pytest.mark.skipif(not _has_avx512(), reason="needs AVX-512")
def test_wide_vectors_draw_the_same_bits(tmp_path, repo_root):
    """On the toy models the vector-width preference changes code generation, not the draws."""
    script = """
        import hashlib, jax, numpy as np
        from models.toy import toy_target
        from samplers.kernels import build_sampler
        from samplers.run import run_chains, run_final_positions
        t = toy_target("cross", beta=20.0)
        pos = t.init_fn(jax.random.key(1), 8)
        h = hashlib.sha256()
        for name in ("mala", "nuts", "hmc"):
            tr = run_chains(jax.random.key(2), build_sampler(name, t), pos, record_fn=t.record_fn,
                            num_warmup=100, num_draws=100, progress=False)
            h.update(tr.draws["x"].tobytes())
        sgd = build_sampler("sgd", toy_target("cross", {"box": "none"}, beta=1.0))
        out = run_final_positions(jax.random.key(3), sgd, t.init_fn(jax.random.key(4), 4096), num_steps=100,
                                  record_fn=lambda z: {"x": z}, progress=False)["x"]
        h.update(np.ascontiguousarray(out).tobytes())
        print(h.hexdigest())
    """
    digests = []
    for flags in ("--xla_cpu_prefer_vector_width=256", "--xla_cpu_prefer_vector_width=512"):
        proc = _python(script, {"XLA_FLAGS": flags, "PYTHONPATH": str(repo_root)}, tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        digests.append(proc.stdout.strip())
    assert digests[0] == digests[1] and len(digests[0]) == 64
