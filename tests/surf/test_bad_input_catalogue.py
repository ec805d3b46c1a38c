"""The bad-input catalogue: one clear line on stderr, exit code 2, nothing written.

Each case is (name, argv, words the message must contain). The README's table
is this list; `python -m tests.surf.test_bad_input_catalogue` prints it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surf.cli import main

FIXTURES = {
    "good.py": "import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x ** 2) + 1.0\n",
    "broken.py": "import jax.numpy as jnp\ndef loss(x)\n    return 0\n",
    "vector.py": "import jax.numpy as jnp\ndef loss(x):\n    return x ** 2\n",
    "shape.py": "import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x[:3] @ jnp.ones((3, 3)))\n",
    "nan.py": "import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x) * jnp.nan\n",
    "zero.py": "import jax.numpy as jnp\ndef loss(x):\n    return 0.0 * jnp.sum(x)\n",
    "discrete.py": (
        "import numpyro, numpyro.distributions as dist\n"
        "def model():\n    numpyro.sample('k', dist.Poisson(3.0))\n"
    ),
    "corrupt.nc": "this is not netCDF",
    "afile": "a regular file, not a folder",
    "taken.nc": "an existing result",
    "taken.html": "an existing report",
    "out.nc.partial.npz": "not a zip archive",
}

S = ["sample", "--model", "cross", "--beta", "20", "--draws", "10", "--warmup", "0", "--chains", "2"]

CASES = [
    ("unknown command", ["frobnicate"], "invalid choice"),
    ("unknown model", ["sample", "--model", "nope"], "invalid choice: 'nope'"),
    ("unknown sampler", [*S, "--sampler", "gibbs"], "invalid choice: 'gibbs'"),
    ("unknown flag", [*S, "--colour", "red"], "unrecognized arguments"),
    ("nothing to sample", ["sample", "--sampler", "nuts"], "say what to sample"),
    ("malformed --param", [*S, "--param", "lam"], "malformed --param 'lam'"),
    ("unknown --param key", [*S, "--param", "zz=1"], "unknown parameter 'zz'"),
    ("non-numeric --param", [*S, "--param", "lam=abc"], "must be a number"),
    ("non-integer --param", ["sample", "--model", "normal-crossing", "--param", "k0=1.5"], "must be an integer"),
    ("--param without --model", ["sample", "--loss", "good.py:loss", "--dim", "2", "--param", "a=1"], "--param only applies"),
    ("zero chains", [*S, "--chains", "0"], "expected a positive integer"),
    ("non-numeric draws", [*S, "--draws", "many"], "expected a positive integer"),
    ("negative warmup", [*S, "--warmup", "-5"], "expected an integer >= 0"),
    ("zero thin", [*S, "--thin", "0"], "expected a positive integer"),
    ("negative step size", [*S, "--step-size", "-1"], "expected a positive number"),
    ("zero radius", [*S, "--radius", "0"], "expected a positive number"),
    ("negative beta", ["sample", "--model", "cross", "--beta", "-2"], "expected a positive number, 'equipartition'"),
    ("non-finite beta", ["sample", "--model", "cross", "--beta", "inf"], "expected a positive number"),
    ("momentum >= 1", [*S, "--sampler", "sgd", "--momentum", "1"], "expected a number in [0, 1)"),
    ("equipartition at zero loss", ["sample", "--loss", "zero.py:loss", "--dim", "2", "--beta", "equipartition"], "loss above"),
    ("wbic without n", ["sample", "--model", "cross", "--beta", "wbic"], "--num-data"),
    ("loss file missing", ["sample", "--loss", "missing.py:loss", "--dim", "2"], "file not found"),
    ("loss file fails to import", ["sample", "--loss", "broken.py:loss", "--dim", "2"], "importing broken.py failed"),
    ("loss function missing", ["sample", "--loss", "good.py:nope", "--dim", "2"], "has no function 'nope'"),
    ("--loss without FILE:FN", ["sample", "--loss", "good.py", "--dim", "2"], "expected FILE.py:FUNCTION"),
    ("--loss without --dim", ["sample", "--loss", "good.py:loss"], "--loss needs --dim"),
    ("loss returns a vector", ["sample", "--loss", "vector.py:loss", "--dim", "2"], "must return a scalar"),
    ("loss of the wrong shape", ["sample", "--loss", "shape.py:loss", "--dim", "2"], "the loss failed on a position of shape (2,)"),
    ("loss non-finite at the start", ["sample", "--loss", "nan.py:loss", "--dim", "2"], "not finite at the starting point"),
    ("bad --box", ["sample", "--loss", "good.py:loss", "--dim", "2", "--box", "1,-1"], "low < high"),
    ("--center of the wrong length", ["sample", "--loss", "good.py:loss", "--dim", "2", "--center", "0,0,0"], "--center has 3"),
    ("NumPyro model with a discrete latent", ["sample", "--numpyro", "discrete.py:model"], "discrete latent sites"),
    ("existing --out without --force", [*S, "--out", "taken.nc"], "exists; pass --force"),
    ("--out inside a file", [*S, "--out", "afile/x.nc"], "is not a folder"),
    ("--resume with no checkpoint", [*S, "--out", "fresh.nc", "--resume"], "no interrupted run"),
    ("--resume with a corrupt checkpoint", [*S, "--out", "out.nc", "--resume"], "corrupt or truncated"),
    ("partial run left, no --resume", [*S, "--out", "out.nc"], "add --resume"),
    ("more --devices than there are", [*S, "--devices", "99"], "--devices 99: this process sees"),
    ("zero --devices", [*S, "--devices", "0"], "expected a positive integer"),
    ("an abbreviated option", [*S, "--distrib"], "unrecognized arguments: --distrib"),
    ("sgd: zero runs", ["sgd", "--runs", "0"], "expected a positive integer"),
    ("sgd: negative noise", ["sgd", "--noise", "-0.1"], "expected a number >= 0"),
    ("sgd: zero learning rate", ["sgd", "--lr", "0"], "expected a positive number"),
    ("sgd: malformed --sweep", ["sgd", "--sweep", "lam"], "malformed --sweep item"),
    ("sgd: unknown --sweep key", ["sgd", "--sweep", "gamma=1,2"], "malformed --sweep item"),
    ("sgd: --out not .nc", ["sgd", "--out", "result.txt"], "ending in .nc"),
    ("sgd: panels to a non-figure", ["sgd", "--panels", "seed", "--out", "fig.nc"], "give --out FIGURE.png"),
    ("compare: no --beta", ["compare", "--model", "cross"], "needs --beta"),
    ("compare: unknown sampler in list", ["compare", "--model", "cross", "--beta", "20", "--samplers", "nuts,bogus"], "unknown sampler 'bogus'"),
    ("compare: negative step sizes", ["compare", "--model", "cross", "--beta", "20", "--step-sizes", "0.1,-1"], "--step-sizes must all be > 0"),
    ("compare: target without a box", ["compare", "--model", "quadratic", "--beta", "2"], "needs a 2-D target on a box"),
    ("compare: --loss without --box", ["compare", "--loss", "good.py:loss", "--dim", "2", "--beta", "2"], "--box LO,HI and --center"),
    ("compare: --out is a file", ["compare", "--model", "cross", "--beta", "20", "--out", "afile"], "not a folder"),
    ("demo: --out is a file", ["demo", "--out", "afile"], "not a folder"),
    ("grok: unknown op", ["grok", "--op", "pow"], "unknown --op 'pow'"),
    ("grok: unknown arch", ["grok", "--arch", "rnn"], "unknown --arch 'rnn'"),
    ("grok: non-prime p for mul", ["grok", "--p", "10", "--op", "mul"], "needs a prime --p"),
    ("grok: train fraction outside (0, 1)", ["grok", "--train-frac", "1.5"], "must be in (0, 1)"),
    ("grok: zero learning rate", ["grok", "--lr", "0"], "expected a positive number"),
    ("grok: malformed --intervention", ["grok", "--intervention", "bogus=1"], "malformed --intervention"),
    ("grok: missing checkpoint", ["grok", "--from", "nothing.npz"], "no checkpoint"),
    ("grok: corrupt checkpoint", ["grok", "--from", "out.nc.partial.npz"], "out.nc.partial"),
    ("report: missing file", ["report", "nothing.nc"], "no such result file"),
    ("report: corrupt netCDF", ["report", "corrupt.nc", "--out", "r.html"], "not a readable netCDF"),
    ("report: truncated netCDF", ["report", "truncated.nc", "--out", "r.html"], "not a readable netCDF"),
    ("report: foreign netCDF", ["report", "foreign.nc", "--out", "r.html"], "not a gradient-surfing result"),
    ("report: existing --out", ["report", "real.nc", "--out", "taken.html"], "exists; pass --force"),
]


@pytest.fixture(scope="module")
def netcdf_files(tmp_path_factory):
    """A real result file, a truncated copy and a foreign (plain xarray) netCDF."""
    import numpy as np
    import xarray as xr

    from diagnostics.arviz_io import save_datatree, trace_to_datatree
    from samplers.run import Trace

    folder = tmp_path_factory.mktemp("nc")
    trace = Trace({"x": np.zeros((2, 5, 2))}, {"lp": np.zeros((2, 5))}, {}, 0.0, 0.0, 0, 1)
    save_datatree(trace_to_datatree(trace, config={"seed": 0}), folder / "real.nc")
    data = (folder / "real.nc").read_bytes()
    (folder / "truncated.nc").write_bytes(data[: len(data) // 2])
    xr.Dataset({"y": ("t", np.arange(3.0))}).to_netcdf(folder / "foreign.nc", engine="h5netcdf")
    return {name: (folder / name).read_bytes() for name in ("real.nc", "truncated.nc", "foreign.nc")}


@pytest.fixture
def folder(tmp_path, monkeypatch, netcdf_files):
    for name, text in FIXTURES.items():
        (tmp_path / name).write_text(text)
    for name, data in netcdf_files.items():
        (tmp_path / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SURF_CACHE_DIR", str(tmp_path / ".jax-cache"))
    monkeypatch.delenv("SURF_DEBUG", raising=False)
    return tmp_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".jax-cache" not in p.parts
    }


def _call(argv) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize("name, argv, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_exit_2_and_changes_nothing(folder, capsys, name, argv, words):
    before = _snapshot(folder)
    code = _call(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert words in lines[0], lines[0]
    assert _snapshot(folder) == before


def test_the_catalogue_has_at_least_30_cases():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


class _Reached(Exception):
    """The arguments were accepted and the run loop was reached."""


VOCABULARY = [
    "sample", "sgd", "compare", "demo", "--model", "cross", "quadratic", "normal-crossing", "nope",
    "--sampler", "nuts", "ula", "sgd", "bogus", "--param", "lam=5", "lam", "a=x", "box=none",
    "--beta", "20", "-1", "0", "equipartition", "wbic", "nan", "--chains", "--draws", "--warmup",
    "--thin", "2", "1e9", "abc", "--step-size", "--radius", "--noise", "--lr", "--runs", "--sweep",
    "noise=0.1,0.2", "--loss", "good.py:loss", "nan.py:loss", "missing.py:f", "--dim", "--box",
    "-1,1", "1,-1", "--center", "0,0", "--out", "x.nc", "afile/x.nc", "taken.nc", "--force",
    "--json", "--quiet", "--resume", "--samplers", "nuts,ula", "--step-sizes", "0.01", "--panels",
    "grok", "--p", "7", "--op", "mul", "--train-frac", "report", "real.nc", "corrupt.nc",
    "seed", "--momentum", "0.5", "--trajectories", "--", "",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.sampled_from(VOCABULARY), max_size=10))
def test_random_argument_lists_never_raise_a_traceback(folder, monkeypatch, capsys, argv):
    import samplers.run as run_module

    def reached(*args, **kwargs):
        raise _Reached

    import diagnostics.report as report_module

    monkeypatch.setattr(run_module, "run_chains", reached)
    monkeypatch.setattr(run_module, "run_final_positions", reached)
    for name in dir(report_module):  # a valid report request is reached, not written
        if name == "build_report":
            monkeypatch.setattr(report_module, name, reached)
    before = _snapshot(folder)
    try:
        code = _call(argv)
    except _Reached:
        return  # valid input: handed to the run loop
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, err)
    assert "Traceback" not in err
    if code == 2:
        assert len([line for line in err.splitlines() if line.strip()]) == 1, (argv, err)
        assert _snapshot(folder) == before, argv


if __name__ == "__main__":  # the README's table
    print("| input | message (excerpt) |\n|---|---|")
    for name, argv, words in CASES:
        print(f"| {name}: `surf {' '.join(argv)}` | {words} |")
    os._exit(0)
