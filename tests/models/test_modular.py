"""The modular-arithmetic task and its networks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models.modular import build_problem, is_prime, make_task


def test_split_covers_all_pairs_with_correct_labels():
    task = make_task(7, "sub", train_frac=0.5, split_seed=3)
    x = np.concatenate([task.x_train, task.x_test])
    y = np.concatenate([task.y_train, task.y_test])
    assert len({tuple(r) for r in x.tolist()}) == 49
    np.testing.assert_array_equal(y, (x[:, 0] - x[:, 1]) % 7)
    assert task.x_train.shape[0] == round(0.5 * 49)
    again = make_task(7, "sub", train_frac=0.5, split_seed=3)
    np.testing.assert_array_equal(task.x_train, again.x_train)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"p": 21, "op": "mul"}, "prime"),
        ({"p": 23, "train_frac": 0.0}, r"\(0, 1\)"),
        ({"p": 23, "train_frac": 1.0}, r"\(0, 1\)"),
        ({"p": 23, "op": "div"}, "unknown op"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_task(**kwargs)


def test_primes():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]


@pytest.mark.parametrize("arch, sizes", [("mlp", {}), ("transformer", {"d_model": 16, "num_heads": 2, "d_mlp": 32})])
def test_networks_give_loss_and_observables(arch, sizes):
    task = make_task(7, "add", train_frac=0.5)
    problem = build_problem(task, arch, init_key=jax.random.key(0), **sizes)
    flat = problem.init_position
    assert flat.ndim == 1
    loss = jax.jit(problem.loss_fn)(flat)
    rec = jax.jit(problem.record_fn)(flat)
    assert set(rec) == {"train_loss", "train_acc", "test_loss", "test_acc", "weight_norm", "distance"}
    np.testing.assert_allclose(rec["train_loss"], loss, rtol=1e-5)
    assert float(rec["distance"]) == 0.0
    np.testing.assert_allclose(rec["weight_norm"], jnp.linalg.norm(flat), rtol=1e-6)
    assert np.all(np.isfinite(jax.jit(jax.grad(problem.loss_fn))(flat)))
    moved = jax.jit(problem.with_reference(flat + 1.0).record_fn)(flat)
    np.testing.assert_allclose(moved["distance"], np.sqrt(flat.size), rtol=1e-5)


def test_mlp_factored_first_layer_matches_concatenation():
    """The MLP multiplies the embedding tables first; that is the concatenated network."""
    task = make_task(11, "add", train_frac=0.5)
    problem = build_problem(task, "mlp", init_key=jax.random.key(1))
    params = problem.unravel(problem.init_position)
    x = task.x_train
    h = jnp.concatenate([params["embed_a"][x[:, 0]], params["embed_b"][x[:, 1]]], axis=-1)
    expected = jax.nn.relu(h @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    np.testing.assert_allclose(problem.apply_fn(params, x), expected, rtol=1e-4, atol=1e-4)
