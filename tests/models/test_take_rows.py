"""The embedding lookup's two backward passes (CPU scatter-add, GPU one-hot matmul) agree."""

import jax
import jax.numpy as jnp
import numpy as np

from models.modular import _take_rows, _take_rows_onehot


def test_one_hot_backward_matches_the_gather_backward():
    table = jax.random.normal(jax.random.key(0), (7, 5))
    for index in (jnp.array([0, 3, 3, 6, 1, 3]), jnp.array([[0, 1, 6], [3, 3, 2]])):  # MLP rows, transformer tokens
        weights = jax.random.normal(jax.random.key(1), (*index.shape, 5))

        def loss(t, take, index=index, weights=weights):
            return jnp.sum(jnp.sin(take(t, index)) * weights)

        np.testing.assert_array_equal(_take_rows_onehot(table, index), table[index])
        g_gather = jax.grad(loss)(table, _take_rows)
        g_onehot = jax.grad(loss)(table, _take_rows_onehot)
        np.testing.assert_allclose(g_onehot, g_gather, rtol=1e-6, atol=1e-6)
        assert float(jnp.abs(g_gather[4]).max()) == 0.0  # row 4 is never looked up
        assert float(jnp.abs(g_gather[3]).max()) > 0.0
