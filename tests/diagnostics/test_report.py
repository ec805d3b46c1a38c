"""``surf report``: one self-contained HTML page for every kind of result, trust first."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import xarray as xr

from diagnostics.arviz_io import provenance_attrs, save_datatree
from diagnostics.report import ReportError, build_report, write_report
from surf.common import UserError

TOY_TARGET = {
    "model": "cross", "name": "cross", "dim": 2, "beta": 20.0, "beta_spec": "20.0", "box": [-1.0, 1.0],
    "params": {"a": 100.0, "lam": 0.0, "c0": -1.0, "c1": -1.0, "box": 1.0},
}


def fake_sample_tree(*, kind: str = "sample", chains: int = 4, draws: int = 300, bad: bool = False, seed: int = 0):
    """A sample-like result without running a sampler: draws near the cross's arms.

    ``bad`` makes the chains disagree (offset means), adds divergences and a
    chain that stopped on a non-finite value, so every warning should fire.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, size=(chains, draws, 2))
    arm = rng.uniform(-1, 1, size=(chains, draws))
    x[:, ::2, 0] = arm[:, ::2]
    x[:, 1::2, 1] = arm[:, 1::2]
    x = np.clip(x, -0.99, 0.99)
    if bad:
        x += np.linspace(-0.5, 0.5, chains)[:, None, None]
    stats = {
        "diverging": np.zeros((chains, draws), bool),
        "acceptance_rate": rng.uniform(0.7, 1.0, size=(chains, draws)),
        "energy": rng.normal(2.0, 1.0, size=(chains, draws)),
        "is_finite": np.ones((chains, draws), bool),
        "lp": -rng.gamma(2.0, size=(chains, draws)),
    }
    if bad:
        stats["diverging"][0, :7] = True
        stats["is_finite"][-1, -1] = False
        stats["acceptance_rate"][:] = 0.1
    dt = az.from_dict(
        {"posterior": {"x": x, "loss": np.sum(x**2, axis=-1)}, "sample_stats": stats},
        dims={"x": ["x_dim_0"]},
    )
    config = {"command": kind, "target": TOY_TARGET, "sampler": "nuts", "chains": chains, "draws": draws,
              "warmup": 0, "seed": seed, "radius": 0.1, "singular_point": [0.0, 0.0]}
    dt.attrs.update(provenance_attrs(config, kind=kind))
    dt.attrs["surf_timing"] = json.dumps({"warmup_seconds": 0.0, "sampling_seconds": 0.0})
    return dt


def fake_unknown_tree():
    """A result kind the report has never heard of (a later 'grok' curves file), no sample_stats."""
    rng = np.random.default_rng(1)
    dt = az.from_dict({"posterior": {
        "train_loss": rng.normal(size=(2, 50)),
        "test_accuracy": rng.uniform(size=(2, 50)),
        "weights": rng.normal(size=(2, 50, 40)),  # too big to plot per element
    }})
    dt.attrs.update(provenance_attrs({"command": "grok", "seed": 7, "p": 97}, kind="grok"))
    return dt


def _run_cli(argv: list[str]) -> None:
    from surf.cli import build_parser

    args = build_parser().parse_args(argv)
    args.func(args)


def _sweep_folder(sgd_nc: Path, folder: Path) -> None:
    """A sweep folder in the recipe's format (sweep.json + sweep.png), from one real sgd run's summary.

    Running ``surf sgd --sweep`` here would compile the kernel once per cell;
    the rows of a sweep are exactly this summary with other (lam, noise).
    """
    from diagnostics.arviz_io import atomic_write, load_datatree, read_config
    from diagnostics.plots import plot_sweep_heatmap

    dt = load_datatree(sgd_nc)
    base = json.loads(dt.attrs["surf_summary"])
    rows = []
    for lam, factor in ((0.0, 1.0), (5.0, 20.0)):
        row = json.loads(json.dumps(base))
        row["lam"] = lam
        row["stickiness"]["value"] *= factor
        rows.append(row)
    config = dict(read_config(dt), sweep={"lam": [0.0, 5.0], "noise": [base["noise"]], "momentum": [0.0]})
    folder.mkdir()
    plot_sweep_heatmap(rows, folder / "sweep.png")
    atomic_write(folder / "sweep.json", lambda tmp: tmp.write_text(json.dumps({"config": config, "rows": rows})),
                 force=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Tiny real results of every kind, made by the recipes themselves, plus two fakes."""
    root = tmp_path_factory.mktemp("results")
    _run_cli(["sample", "--model", "cross", "--beta", "20", "--sampler", "hmc", "--mass-matrix", "identity",
              "--chains", "2", "--warmup", "50", "--draws", "100", "--num-integration-steps", "5",
              "--seed", "0", "--out", str(root / "sample.nc"), "--quiet"])
    _run_cli(["sgd", "--runs", "300", "--trajectories", "2", "--out", str(root / "sgd.nc"), "--quiet"])
    _sweep_folder(root / "sgd.nc", root / "sweep")
    _run_cli(["compare", "--model", "cross", "--beta", "20", "--samplers", "ula", "--step-sizes", "0.001",
              "--chains", "2", "--draws", "100", "--warmup", "50", "--thin-steps", "2", "--seed", "0",
              "--out", str(root / "compare"), "--quiet"])
    shutil.copy(root / "compare" / "occupancy.png", root / "loose_figure.png")  # shown as found
    save_datatree(fake_unknown_tree(), root / "curves.nc")
    save_datatree(fake_sample_tree(bad=True), root / "bad" / "bad_sample.nc")
    return root


@pytest.fixture(scope="module")
def report(results, tmp_path_factory) -> str:
    """One report over the whole folder (every kind), built once for the tests below."""
    out = tmp_path_factory.mktemp("report") / "all.html"
    write_report([results], out)
    assert [p.name for p in out.parent.iterdir()] == ["all.html"]  # no temporary files left
    return out.read_text()


def _section(text: str, name: str) -> str:
    """The HTML of the result section whose title names ``name``, unescaped."""
    for part in text.split('<section class="result"')[1:]:
        title = part[part.index("<h2>") + 4: part.index("</h2>")]
        if html.unescape(title).endswith("/" + name) or f"/{name} " in html.unescape(title):
            return html.unescape(part.split("</section>")[0])
    raise AssertionError(f"no section for {name}")


def _images(text: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', text)


def test_the_report_is_self_contained_and_checks_itself_on_load(report):
    for src in re.findall(r'(?:src|href)="([^"#][^"]*)"', report):
        assert src.startswith("data:image/png;base64,"), f"external resource {src[:60]}"
    assert "<link" not in report and "@import" not in report and "url(" not in report
    assert "data-images-ok" in report and "data-errors" in report
    kinds = set(re.findall(r'data-kind="([^"]+)"', report))
    assert {"sample", "sgd", "sweep", "compare", "grok", "figure"} <= kinds


def test_sample_file_has_trust_summary_arviz_and_toy_figures(report):
    text = _section(report, "sample.nc")
    for needle in ("ArviZ summary", "ess_bulk", "ess_tail", "r_hat", "mcse_mean", "eti89_lb",
                   "ArviZ trace plot", "ArviZ rank plot", "ArviZ ess plot", "ArviZ energy plot",
                   "sample density over contours", "occupancy against radius", "exact Gibbs",
                   "Provenance", "Package versions", "Full configuration", '"seed": 0', "blackjax",
                   "git commit", "created", "ran on", "up to 1 cpu device(s) x 1 process(es)"):
        assert needle in text, needle
    assert len(_images(text)) == 6
    # trust first: warnings (or the all-clear) before the summary table, the summary before the figures
    first = min(i for i in (text.find("Check before trusting"), text.find("No convergence warnings")) if i >= 0)
    assert first < text.index("ArviZ summary") < text.index("ArviZ trace plot")


def test_warnings_name_each_problem_in_plain_language(report):
    text = _section(report, "bad_sample.nc")
    for needle in ("chains disagree", "divergent transitions", "low acceptance rate",
                   "stopped on a non-finite value", "low effective sample size"):
        assert needle in text, needle
    top = html.unescape(report[: report.index('id="contents"')])
    assert "Trust first" in top and "chains disagree" in top  # in the overview at the very top


def test_sgd_file_has_stickiness_and_final_density(report):
    text = _section(report, "sgd.nc")
    for needle in ("Stickiness summary", "stickiness S(0.1)", "sgd final-position density", "do not apply",
                   "Provenance", '"runs": 300'):
        assert needle in text, needle
    assert len(_images(text)) == 1


def test_sweep_folder_has_table_and_heatmap(report):
    text = _section(report, "sweep")
    for needle in ("stickiness S(r)", "sweep heatmap", "Full configuration", '"sweep"'):
        assert needle in text, needle
    assert len(_images(text)) == 1
    assert text.count("<tr>") >= 3


def test_compare_folder_has_bias_table_and_figures(report):
    text = _section(report, "compare")
    for needle in ("Bias against the exact Gibbs occupancy", "Convergence per sampler", 'alt="occupancy.png"',
                   'alt="bias_vs_step.png"', 'alt="densities.png"', "ula_h0.001.nc", "TV distance"):
        assert needle in text, needle
    assert len(_images(text)) == 3


def test_unknown_kind_gets_provenance_summary_and_trace(report):
    text = _section(report, "curves.nc")
    for needle in ("grok", "train_loss", "test_accuracy", "ArviZ summary", "ArviZ trace plot",
                   "leave out large", "weights", '"p": 97', "Package versions"):
        assert needle in text, needle


def test_one_file_alone_is_a_report_too(results):
    text = build_report([results / "sgd.nc"])
    assert text.count('<section class="result"') == 1 and "Stickiness summary" in text


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: (d / "corrupt.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50), "not a readable netCDF"),
        (lambda d: xr.Dataset({"a": ("t", np.arange(3.0))}).to_netcdf(d / "foreign.nc", engine="h5netcdf"),
         "not a gradient-surfing result"),
        (lambda d: (d / "notes.txt").write_text("hello"), "not a result this toolkit writes"),
        (lambda d: None, "no such result file or folder"),
        (lambda d: (d / "empty").mkdir(), "holds no gradient-surfing results"),
        (lambda d: (d / "cmp").mkdir() or (d / "cmp" / "compare.json").write_text("{trunc"), "not readable JSON"),
    ],
    ids=["corrupt", "foreign", "unknown-type", "missing", "empty-folder", "corrupt-json"],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, make, message):
    made = make(tmp_path)
    del made
    target = sorted(p for p in tmp_path.iterdir())
    path = target[0] if target else tmp_path / "missing.nc"
    out = tmp_path / "out" / "report.html"
    with pytest.raises(UserError) as err:
        _run_cli(["report", str(path), "--out", str(out)])
    text = str(err.value)
    assert message in text and "\n" not in text
    assert not out.exists() and not out.parent.exists()


def test_existing_out_is_refused_without_force_and_replaced_with_it(results, tmp_path):
    source = results / "sgd.nc"
    out = tmp_path / "report.html"
    out.write_text("keep me")
    with pytest.raises(UserError, match="exists; pass --force"):
        _run_cli(["report", str(source), "--out", str(out)])
    assert out.read_text() == "keep me"
    with pytest.raises(ReportError):
        write_report([source], out)
    _run_cli(["report", str(source), "--out", str(out), "--force", "--quiet"])
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_cli_error_is_one_line_on_stderr_with_exit_2(tmp_path, surf_env):
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not netcdf at all")
    out = tmp_path / "r.html"
    proc = subprocess.run(
        [sys.executable, "-m", "surf.cli", "report", str(bad), "--out", str(out)],
        capture_output=True, text=True, env=surf_env, timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surf report: error:") and "bad.nc" in lines[0]
    assert not out.exists()
