"""Losses to try with `surf sample --loss examples/potentials.py:NAME --dim 2`.

Each takes a flat position array and returns a scalar, written with jax.numpy
so that gradients come for free.
"""

import jax.numpy as jnp


def banana(x):
    """A curved valley (Rosenbrock-like), regular: its minimum is a point."""
    return 0.5 * x[0] ** 2 + 2.0 * (x[1] - x[0] ** 2) ** 2 + 0.5


def cusp(x):
    """A singular valley: the zero set x1^2 = x0^3 has a cusp at the origin."""
    return 10.0 * (x[1] ** 2 - x[0] ** 3) ** 2 + 0.1 * jnp.sum(x**2) + 0.1


def three_lines(x):
    """Three lines crossing at the origin: x0 * x1 * (x0 - x1) = 0."""
    return 20.0 * (x[0] * x[1] * (x[0] - x[1])) ** 2
