"""Checkpoints: plain arrays plus JSON, atomic, and never a pickle."""

import numpy as np
import pytest

from samplers.checkpoint import CheckpointError, checkpoint_paths, load_checkpoint, save_checkpoint


def test_round_trip_with_a_template(tmp_path):
    tree = {"a": np.arange(6.0).reshape(2, 3), "b": (np.int32(7), np.array([True, False]))}
    save_checkpoint(tmp_path / "ck", tree, {"step": 12, "config": {"lr": 1e-3}})
    back, meta = load_checkpoint(tmp_path / "ck", template=tree)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert int(back["b"][0]) == 7 and back["b"][1].tolist() == [True, False]
    assert meta["step"] == 12 and meta["config"] == {"lr": 1e-3}
    npz, js = checkpoint_paths(tmp_path / "ck")
    assert npz.exists() and js.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.json", "ck.npz"]  # no temporaries left


def test_a_pickle_is_refused(tmp_path):
    npz, _ = checkpoint_paths(tmp_path / "ck")
    save_checkpoint(tmp_path / "ck", [np.zeros(2)], {})
    with np.load(npz) as data:
        arrays = dict(data)
    arrays["leaf_0"] = np.array([{"evil": "object"}], dtype=object)
    np.savez(npz, **arrays, allow_pickle=True)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "ck")


def test_object_leaves_are_not_written(tmp_path):
    with pytest.raises(TypeError, match="object"):
        save_checkpoint(tmp_path / "ck", [np.array([object()], dtype=object)], {})
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "missing"])
def test_damaged_checkpoints_give_one_clear_error(tmp_path, damage):
    save_checkpoint(tmp_path / "ck", [np.arange(1000.0)], {"step": 1})
    npz, _ = checkpoint_paths(tmp_path / "ck")
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif damage == "garbage":
        npz.write_bytes(b"\x00garbage" * 10)
    elif damage == "foreign":
        np.savez(npz, something=np.ones(3))
    else:
        npz.unlink()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "ck")
    assert "\n" not in str(info.value)


def test_template_mismatch_is_reported(tmp_path):
    save_checkpoint(tmp_path / "ck", [np.zeros(3)], {})
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(tmp_path / "ck", template=[np.zeros(4)])
    with pytest.raises(CheckpointError, match="arrays"):
        load_checkpoint(tmp_path / "ck", template=[np.zeros(3), np.zeros(1)])
