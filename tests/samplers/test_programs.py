"""Traced programs kept across processes (``samplers.programs``).

The contract: a stored program gives the same bits as tracing, is used only
for the facts it was stored under, and a bad entry is traced again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

from samplers import programs

FOUR = "--xla_force_host_platform_device_count=4"


def _python(script: str, *args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=FOUR)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


SCRIPT = """
    import sys
    from pathlib import Path
    import jax, numpy as np
    from surf.common import enable_compilation_cache
    enable_compilation_cache(sys.argv[1])
    from models.toy import toy_target
    from samplers import programs, run as R
    from samplers.kernels import SamplerOptions, build_sampler, describe

    store = Path(sys.argv[1]) / "programs"
    t = toy_target("cross", beta=20.0)
    pos = t.init_fn(jax.random.key(1), 7)
    kw = dict(record_fn=t.record_fn, num_warmup=60, num_draws=40, progress=False, chunk_size=20)

    def same(a, b, what):
        for part in ("draws", "stats", "params"):
            x, y = getattr(a, part), getattr(b, part)
            assert x.keys() == y.keys(), what
            for k in x:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{what}: {part}.{k}")

    export = jax.export.export
    exports = []

    def counting_export(*args, **kwargs):
        exports.append(args)
        return export(*args, **kwargs)

    jax.export.export = counting_export
    for name, opts in [("sgd", SamplerOptions(step_size=1e-3)), ("mala", SamplerOptions()),
                       ("hmc", SamplerOptions(mass_matrix="identity")), ("nuts", SamplerOptions())]:
        s = build_sampler(name, t, opts)
        facts = {"target": t.config, "sampler": name, "options": describe(opts)}
        before = set(store.glob("*.jaxprog")) if store.exists() else set()
        traced = R.run_chains(jax.random.key(0), s, pos, devices=1, **kw)
        assert (set(store.glob("*.jaxprog")) if store.exists() else set()) == before, "stored without facts"
        stored = R.run_chains(jax.random.key(0), s, pos, devices=2, program_key=facts, **kw)
        new = set(store.glob("*.jaxprog")) - before
        assert len(new) == 2, f"{name}: expected a warmup and a chunk program, got {len(new)}"
        same(traced, stored, f"{name} stored vs traced")
        R._COMPILED.clear(); programs._EXPORTED.clear()  # as in a new process
        exports.clear()
        loaded = R.run_chains(jax.random.key(0), s, pos, devices=2, program_key=facts, **kw)
        assert not exports, f"{name}: a stored program was traced again"
        same(traced, loaded, f"{name} loaded vs traced")
        four = R.run_chains(jax.random.key(0), s, pos, devices=4, program_key=facts, **kw)  # other shapes
        assert len(exports) == 2, f"{name}: blocks of other shapes are other programs"
        same(traced, four, f"{name} on 4 devices vs traced")
        # a corrupt, truncated or bit-flipped entry (header intact) is traced again and rewritten
        for i, path in enumerate(sorted(new)):
            data = bytearray(path.read_bytes())
            if i == 0:
                data[-500] ^= 0x10  # inside the serialized program; the header still parses
                path.write_bytes(bytes(data))
            else:
                path.write_bytes(b"garbage" if name == "sgd" else bytes(data[:100]))
        R._COMPILED.clear(); programs._EXPORTED.clear()
        again = R.run_chains(jax.random.key(0), s, pos, devices=2, program_key=facts, **kw)  # the same shapes
        same(traced, again, f"{name} after corruption")
        assert all(p.stat().st_size > 1000 and p.read_bytes().startswith(b"surf-program 1\\n") for p in new), \
            "not rewritten"
    # the same facts with other chunk sizes, thinning or warmup: other programs, never the stored ones
    s = build_sampler("mala", t, SamplerOptions())
    facts = {"target": t.config, "sampler": "mala"}
    for change in ({"chunk_size": 10}, {"thin": 2}, {"num_warmup": 30}):
        R._COMPILED.clear(); programs._EXPORTED.clear()
        base = R.run_chains(jax.random.key(0), s, pos, devices=1, program_key=facts, **kw)
        count = len(list(store.glob("*.jaxprog")))
        R._COMPILED.clear(); programs._EXPORTED.clear()
        other = R.run_chains(jax.random.key(0), s, pos, devices=1, program_key=facts, **dict(kw, **change))
        assert len(list(store.glob("*.jaxprog"))) > count, f"{change}: no new program"
        R._COMPILED.clear(); programs._EXPORTED.clear()
        traced = R.run_chains(jax.random.key(0), s, pos, devices=1, **dict(kw, **change))
        same(traced, other, f"{change}: stored vs traced")
        if "chunk_size" in change:
            same(base, other, "the chunk size does not change the draws")
    # other facts (another model): another entry, never the first model's program
    t2 = toy_target("cross", ["lam=1"], beta=20.0)
    s2 = build_sampler("mala", t2, SamplerOptions())
    kw2 = dict(kw, record_fn=t2.record_fn)
    R._COMPILED.clear(); programs._EXPORTED.clear()
    traced2 = R.run_chains(jax.random.key(0), s2, pos, devices=1, **kw2)
    R._COMPILED.clear(); programs._EXPORTED.clear()
    count = len(list(store.glob("*.jaxprog")))
    stored2 = R.run_chains(jax.random.key(0), s2, pos, devices=1, program_key={"target": t2.config}, **kw2)
    assert len(list(store.glob("*.jaxprog"))) == count + 2
    same(traced2, stored2, "lam=1 stored vs traced")
    first = R.run_chains(jax.random.key(0), build_sampler("mala", t, SamplerOptions()), pos, devices=1,
                         program_key={"target": t.config}, **kw)
    assert not np.array_equal(first.draws["loss"], stored2.draws["loss"])
    print("ok")
"""


def test_stored_programs_give_the_bits_of_tracing_and_survive_corruption(tmp_path, repo_root):
    proc = _python(SCRIPT, str(tmp_path / "cache"), cwd=repo_root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_the_key_changes_with_what_shapes_a_program(monkeypatch):
    args = (jax.numpy.zeros((3, 2)),)
    base, record = programs._key("chunk", {"model": "cross"}, args)
    assert record["facts"] == {"model": "cross"} and record["backend"][0] == jax.default_backend()
    assert programs._key("chunk", {"model": "cross"}, args)[0] == base  # deterministic
    assert programs._key("warmup", {"model": "cross"}, args)[0] != base
    assert programs._key("chunk", {"model": "cross", "beta": 2.0}, args)[0] != base
    assert programs._key("chunk", {"model": "cross"}, (jax.numpy.zeros((4, 2)),))[0] != base
    assert programs._key("chunk", {"model": "cross"}, (jax.numpy.zeros((3, 2), "int32"),))[0] != base
    monkeypatch.setattr(programs, "_source_digest", lambda: "edited source")
    assert programs._key("chunk", {"model": "cross"}, args)[0] != base
    monkeypatch.undo()
    monkeypatch.setattr(programs, "_versions", lambda: {"jax": "0.0"})
    assert programs._key("chunk", {"model": "cross"}, args)[0] != base
    monkeypatch.undo()
    for option, value in (("jax_default_matmul_precision", "highest"), ("jax_accurate_erf_inv", True)):
        old = getattr(jax.config, option)
        jax.config.update(option, value)
        try:
            assert programs._key("chunk", {"model": "cross"}, args)[0] != base, option
        finally:
            jax.config.update(option, old)
    assert programs._key("chunk", {"model": "cross"}, args)[0] == base


def test_no_store_without_facts_or_without_a_cache(tmp_path, monkeypatch):
    fn = jax.jit(lambda x: x * 2)
    x = jax.numpy.ones(3)
    monkeypatch.setattr(programs, "program_folder", lambda: None)
    assert float(programs.compile_program(fn, (x,), role="r", facts={"a": 1})(x)[0]) == 2.0
    monkeypatch.setattr(programs, "program_folder", lambda: tmp_path)
    assert float(programs.compile_program(fn, (x,), role="r", facts=None)(x)[0]) == 2.0
    assert list(tmp_path.iterdir()) == []
    assert float(programs.compile_program(fn, (x,), role="r", facts={"a": 1})(x)[0]) == 2.0
    (entry,) = tmp_path.iterdir()
    header = entry.read_bytes().split(b"\n")[1]
    assert json.loads(header)["key"]["facts"] == {"a": 1}


def test_an_entry_under_another_key_or_naming_a_foreign_type_is_not_used(tmp_path, monkeypatch):
    fn = jax.jit(lambda x: x + 1)
    x = jax.numpy.ones(2)
    monkeypatch.setattr(programs, "program_folder", lambda: tmp_path)
    programs.compile_program(fn, (x,), role="r", facts={"a": 1})
    (entry,) = tmp_path.iterdir()
    digest, record = programs._key("r", {"a": 1}, (x,))
    assert programs._load(entry, record) is not None
    assert programs._load(entry, dict(record, facts={"a": 2})) is None  # a collision is traced again
    magic, header, blob = entry.read_bytes().split(b"\n", 2)
    meta = json.loads(header)
    meta["types"] = ["os:PathLike"]
    entry.write_bytes(magic + b"\n" + json.dumps(meta).encode() + b"\n" + blob)
    assert programs._load(entry, record) is None
    with pytest.raises(ValueError, match="unexpected type"):
        programs._resolve("subprocess:Popen")


def test_the_source_digest_changes_with_any_source_file(repo_root, tmp_path):
    import shutil

    for package in ("samplers", "models"):
        shutil.copytree(Path(repo_root, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    before = programs._tree_digest(tmp_path, ("samplers", "models"))
    assert before == programs._tree_digest(tmp_path, ("samplers", "models"))
    path = tmp_path / "models" / "toy.py"
    path.write_text(path.read_text().replace("def ", "def  ", 1))
    assert programs._tree_digest(tmp_path, ("samplers", "models")) != before
    assert programs._source_digest() == programs._tree_digest(Path(repo_root))


def test_facts_without_an_exact_json_form_are_not_stored(tmp_path, monkeypatch):
    import numpy as np

    fn = jax.jit(lambda x: x * 3)
    x = jax.numpy.ones(2)
    monkeypatch.setattr(programs, "program_folder", lambda: tmp_path)
    assert float(programs.compile_program(fn, (x,), role="r", facts={"f": object()})(x)[0]) == 3.0
    assert list(tmp_path.iterdir()) == []
    # arrays enter by the digest of their bytes, not by a rounded repr
    a, b = np.array(0.000123456789012), np.array(0.000123456789999)
    assert repr(a) == repr(b)
    assert programs._key("r", {"w": a}, (x,))[0] != programs._key("r", {"w": b}, (x,))[0]
    assert programs._key("r", {"w": np.float32(0.5)}, (x,))[0] == programs._key("r", {"w": 0.5}, (x,))[0]


def test_remembered_values_come_back_equal_or_are_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(programs, "program_folder", lambda: tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return 0.08720950097246506

    assert programs.remembered("occupancy", {"model": "cross"}, compute) == 0.08720950097246506
    assert programs.remembered("occupancy", {"model": "cross"}, compute) == 0.08720950097246506
    assert len(calls) == 1
    assert programs.remembered("occupancy", {"model": "cross", "radius": 0.2}, compute) and len(calls) == 2
    assert programs.remembered("occupancy", None, compute) and len(calls) == 3  # no facts: computed
    odd = programs.remembered("pair", {"a": 1}, lambda: (1, 2))  # a tuple would come back a list
    assert odd == (1, 2) and not list(tmp_path.glob("*.tmp"))
    assert programs.remembered("pair", {"a": 1}, lambda: (3, 4)) == (3, 4)  # it was not kept


def test_a_program_that_cannot_be_exported_is_compiled_as_before(tmp_path, monkeypatch):
    import numpy as np

    fn = jax.jit(lambda x: jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x))
    x = jax.numpy.ones(2)
    monkeypatch.setattr(programs, "program_folder", lambda: tmp_path)
    out = programs.compile_program(fn, (x,), role="callback", facts={"a": 1})(x)
    np.testing.assert_allclose(np.asarray(out), np.sin(1.0), rtol=1e-6)
    assert list(tmp_path.iterdir()) == []
