"""Trace -> DataTree -> netCDF -> DataTree, and the files the loader must refuse."""

from __future__ import annotations

import json
import os

import arviz as az
import jax
import numpy as np
import pytest
import xarray as xr

from diagnostics.arviz_io import (
    atomic_write,
    check_writable,
    load_datatree,
    read_config,
    save_datatree,
    trace_to_datatree,
)
from samplers.run import Trace

CHAINS, DRAWS, DIM = 3, 7, 2


def make_trace(seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(CHAINS, DRAWS, DIM)).astype(np.float32)
    is_finite = np.ones((CHAINS, DRAWS), dtype=bool)
    is_finite[2, 4:] = False
    x[2, 4:] = np.nan
    return Trace(
        draws={"x": x, "loss": np.sum(x**2, axis=-1)},
        stats={
            "lp": -np.sum(x**2, axis=-1),
            "diverging": rng.random((CHAINS, DRAWS)) < 0.2,
            "tree_depth": rng.integers(1, 5, size=(CHAINS, DRAWS)),
            "is_finite": is_finite,
        },
        params={"step_size": np.array([0.1, 0.2, 0.3], np.float32)},
        warmup_seconds=1.5,
        sampling_seconds=2.5,
        num_warmup=10,
        thin=1,
    )


CONFIG = {
    "command": "sample",
    "seed": np.int64(3),  # numpy scalars must survive as plain JSON numbers
    "beta": np.float32(2.0),
    "center": np.array([0.0, 1.0]),
    "nested": {"a": [1, 2], "b": None},
}


@pytest.fixture
def trace():
    return make_trace()


@pytest.fixture
def tree(trace):
    return trace_to_datatree(trace, config=CONFIG, kind="test")


@pytest.fixture
def saved(tree, tmp_path):
    path = tmp_path / "run.nc"
    assert save_datatree(tree, path) == path
    return path


def test_datatree_layout(tree, trace):
    post, stats = tree["posterior"], tree["sample_stats"]
    assert post["x"].dims == ("chain", "draw", "x_dim_0")
    assert post["loss"].dims == ("chain", "draw")
    assert post.sizes["chain"] == CHAINS and post.sizes["draw"] == DRAWS
    np.testing.assert_array_equal(post["x"].values, trace.draws["x"])
    for name, value in trace.stats.items():
        assert stats[name].dims == ("chain", "draw")
        np.testing.assert_array_equal(stats[name].values, value)


def test_provenance_attributes(tree, trace):
    attrs = tree.attrs
    assert attrs["surf_kind"] == "test"
    config = read_config(tree)
    assert config == {
        "command": "sample",
        "seed": 3,
        "beta": 2.0,
        "center": [0.0, 1.0],
        "nested": {"a": [1, 2], "b": None},
    }
    assert isinstance(config["seed"], int)
    versions = json.loads(attrs["surf_versions"])
    assert versions["jax"] == jax.__version__
    assert versions["arviz"] == az.__version__
    assert versions["python"].count(".") == 2
    params = json.loads(attrs["surf_sampler_params"])
    assert params["step_size"] == pytest.approx(trace.params["step_size"].tolist())
    timing = json.loads(attrs["surf_timing"])
    assert timing == {"warmup_seconds": 1.5, "sampling_seconds": 2.5}
    assert attrs["surf_created"][:2] == "20"


def test_round_trip_preserves_data_and_attributes(tree, saved):
    loaded = load_datatree(saved)
    assert dict(loaded.attrs) == dict(tree.attrs)
    assert read_config(loaded) == read_config(tree)
    for group in ("posterior", "sample_stats"):
        for name, var in tree[group].data_vars.items():
            got = loaded[group][name]
            assert got.dims == var.dims
            assert got.dtype == var.dtype, (group, name)
            np.testing.assert_array_equal(got.values, var.values)


def test_arviz_opens_our_files(saved, trace):
    dt = az.from_netcdf(saved)
    assert "posterior" in dt.children and "sample_stats" in dt.children
    np.testing.assert_array_equal(dt["posterior"]["x"].values, trace.draws["x"])
    summary = az.summary(dt.isel(chain=[0, 1]), var_names=["x"])
    assert len(summary) == DIM


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such result file") as info:
        load_datatree(tmp_path / "nope.nc")
    assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError):
        load_datatree(tmp_path)  # a folder is not a result file


def assert_refused(path):
    with pytest.raises(ValueError) as info:
        load_datatree(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "noise.nc"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a readable netCDF file" in assert_refused(path)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.nc"
    path.write_bytes(b"")
    assert "not a readable netCDF file" in assert_refused(path)


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.9])
def test_truncated_file_is_refused(saved, tmp_path, fraction):
    data = saved.read_bytes()
    path = tmp_path / "cut.nc"
    path.write_bytes(data[: int(len(data) * fraction)])
    assert_refused(path)


def test_foreign_netcdf_is_refused(tmp_path):
    path = tmp_path / "foreign.nc"
    xr.Dataset({"t": ("time", np.arange(5.0))}, attrs={"title": "not ours"}).to_netcdf(
        path, engine="h5netcdf"
    )
    assert "not a gradient-surfing result" in assert_refused(path)


def test_save_refuses_an_existing_file_and_leaves_it_unchanged(tree, tmp_path):
    path = tmp_path / "keep.nc"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--force") as info:
        save_datatree(tree, path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["keep.nc"]  # no temporary left behind


def test_save_with_force_replaces_and_leaves_no_temporary(tree, tmp_path):
    path = tmp_path / "out.nc"
    path.write_bytes(b"old")
    save_datatree(tree, path, force=True)
    assert read_config(load_datatree(path)) == read_config(tree)
    assert sorted(os.listdir(tmp_path)) == ["out.nc"]


def test_save_creates_missing_folders(tree, tmp_path):
    path = tmp_path / "a" / "b" / "run.nc"
    save_datatree(tree, path)
    assert load_datatree(path).attrs["surf_kind"] == "test"


def test_a_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "x.nc"

    def write(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, write, force=False)
    assert os.listdir(tmp_path) == []


def test_check_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        check_writable(tmp_path / "file" / "out.nc", force=False)
    with pytest.raises(IsADirectoryError):
        check_writable(tmp_path, force=True)
    with pytest.raises(FileExistsError):
        check_writable(tmp_path / "file", force=False)
    assert check_writable(tmp_path / "new" / "deeper" / "out.nc", force=False).name == "out.nc"
    assert not (tmp_path / "new").exists()  # checking creates nothing
