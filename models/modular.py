"""Modular arithmetic: the grokking task and its networks (SCIENCE.md section 5).

Data are all pairs ``(a, b)`` in ``[0, p)^2`` labelled ``(a op b) mod p``; a
random fraction is the training set (full batch), the rest the test set.
The networks are plain JAX functions of parameter pytrees (no NN library):

* ``mlp``: learned embeddings of width 64 for ``a`` and ``b`` (one table
  each), concatenated, one ReLU hidden layer of 256, logits over ``p``
  (the configuration known to grok quickly on two CPU cores);
* ``transformer``: the reference one-layer transformer (Nanda et al.):
  tokens ``a b =``, d_model 128, 4 heads, d_mlp 512, ReLU, no LayerNorm,
  causal attention, read out at the last position.

The parameters are raveled once into a flat vector
(:func:`jax.flatten_util.ravel_pytree`) so a network fits the run loop's
flat-position contract: :class:`ModularProblem` carries ``loss_fn(flat)`` and
``record_fn(flat) -> dict`` of scalar observables.

``mul`` needs a prime ``p`` (the multiplicative structure the task is about
is the group of units mod p); ``add`` and ``sub`` are well posed for any
``p >= 2`` and are not restricted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = [
    "OPS",
    "ARCHS",
    "ModularTask",
    "ModularProblem",
    "make_task",
    "is_prime",
    "init_mlp",
    "mlp_apply",
    "init_transformer",
    "transformer_apply",
    "build_problem",
]

OPS = ("add", "sub", "mul")
ARCHS = ("mlp", "transformer")


def is_prime(n: int) -> bool:
    """Whether ``n`` is prime (trial division; ``p`` is small here)."""
    n = int(n)
    if n < 2:
        return False
    return all(n % d for d in range(2, int(n**0.5) + 1))


class ModularTask(NamedTuple):
    """A train/test split of the ``p^2`` pairs; inputs ``(n, 2)`` int32, labels ``(n,)``."""

    p: int
    op: str
    train_frac: float
    split_seed: int
    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def make_task(p: int, op: str = "add", *, train_frac: float = 0.4, split_seed: int = 0) -> ModularTask:
    """All pairs mod ``p``, split at random into train and test.

    Examples
    --------
    >>> task = make_task(23, "add", train_frac=0.5)
    >>> task.x_train.shape[0] + task.x_test.shape[0]
    529
    """
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; choose one of {', '.join(OPS)}")
    if int(p) != p or p < 2:
        raise ValueError(f"p must be an integer >= 2, got {p}")
    p = int(p)
    if op == "mul" and not is_prime(p):
        raise ValueError(f"op 'mul' needs a prime p, got p={p}")
    if not (0.0 < float(train_frac) < 1.0):
        raise ValueError(f"train fraction must be in (0, 1), got {train_frac}")
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.ravel(), b.ravel()
    label = {"add": a + b, "sub": a - b, "mul": a * b}[op] % p
    x = np.stack([a, b], axis=1).astype(np.int32)
    order = np.random.default_rng(int(split_seed)).permutation(p * p)
    num_train = int(round(float(train_frac) * p * p))
    if not 0 < num_train < p * p:
        raise ValueError(f"train fraction {train_frac} leaves an empty train or test set at p={p}")
    tr, te = order[:num_train], order[num_train:]
    return ModularTask(
        p, op, float(train_frac), int(split_seed),
        jnp.asarray(x[tr]), jnp.asarray(label[tr], jnp.int32),
        jnp.asarray(x[te]), jnp.asarray(label[te], jnp.int32),
    )


# ------------------------------------------------------------------ networks


def _normal(key, shape, scale):
    return scale * jax.random.normal(key, shape, jnp.float32)


def init_mlp(rng_key: jax.Array, p: int, *, embed_dim: int = 64, hidden: int = 256) -> dict:
    """Parameters of the embedding MLP (He-scaled hidden layer, small readout)."""
    k = jax.random.split(rng_key, 4)
    return {
        "embed_a": _normal(k[0], (p, embed_dim), 1.0),
        "embed_b": _normal(k[1], (p, embed_dim), 1.0),
        "w1": _normal(k[2], (2 * embed_dim, hidden), (2.0 / (2 * embed_dim)) ** 0.5),
        "b1": jnp.zeros(hidden),
        "w2": _normal(k[3], (hidden, p), (1.0 / hidden) ** 0.5),
        "b2": jnp.zeros(p),
    }


def _take_rows(table: jax.Array, index: jax.Array) -> jax.Array:
    """``table[index]`` (rows), differentiable in ``table``, the same bits on every run.

    On a CPU the gather's own backward, a scatter-add, is sequential (so
    reproducible) and fast. On GPUs XLA's scatter-add uses atomics, whose
    order varies from run to run, so there the backward is a one-hot matmul.
    """
    if jax.default_backend() == "cpu":
        return jnp.take(table, index, axis=0)
    return _take_rows_onehot(table, index)


@jax.custom_vjp
def _take_rows_onehot(table, index):
    return jnp.take(table, index, axis=0)


def _take_rows_fwd(table, index):
    return jnp.take(table, index, axis=0), (index, table.shape[0])


def _take_rows_bwd(residual, g):
    index, rows = residual
    return jnp.einsum("...r,...d->rd", jax.nn.one_hot(index, rows, dtype=g.dtype), g), None


_take_rows_onehot.defvjp(_take_rows_fwd, _take_rows_bwd)


def mlp_apply(params: dict, x: jax.Array) -> jax.Array:
    """Logits ``(n, p)`` for inputs ``x`` of shape ``(n, 2)``."""
    # concat(E_a[a], E_b[b]) @ W1 == (E_a @ W1_a)[a] + (E_b @ W1_b)[b]: the
    # tables are multiplied first (p rows, not n), then rows are gathered.
    # (Measured on CPU: gathers with their scatter-add backward take 1.6x
    # fewer seconds per training step than one-hot matmuls; see _take_rows.)
    e = params["embed_a"].shape[1]
    table_a = params["embed_a"] @ params["w1"][:e]
    table_b = params["embed_b"] @ params["w1"][e:]
    h = _take_rows(table_a, x[:, 0]) + _take_rows(table_b, x[:, 1])
    h = jax.nn.relu(h + params["b1"])
    return h @ params["w2"] + params["b2"]


def init_transformer(
    rng_key: jax.Array, p: int, *, d_model: int = 128, num_heads: int = 4, d_mlp: int = 512
) -> dict:
    """Parameters of the one-layer transformer; vocabulary ``p + 1`` (token ``p`` is ``=``)."""
    if d_model % num_heads:
        raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
    d_head = d_model // num_heads
    k = jax.random.split(rng_key, 8)
    s = d_model**-0.5
    return {
        "W_E": _normal(k[0], (p + 1, d_model), s),
        "W_pos": _normal(k[1], (3, d_model), s),
        "W_Q": _normal(k[2], (num_heads, d_model, d_head), s),
        "W_K": _normal(k[3], (num_heads, d_model, d_head), s),
        "W_V": _normal(k[4], (num_heads, d_model, d_head), s),
        "W_O": _normal(k[5], (num_heads, d_head, d_model), d_model**-0.5),
        "W_in": _normal(k[6], (d_model, d_mlp), s),
        "b_in": jnp.zeros(d_mlp),
        "W_out": _normal(k[7], (d_mlp, d_model), d_mlp**-0.5),
        "b_out": jnp.zeros(d_model),
        "W_U": _normal(jax.random.fold_in(k[0], 1), (d_model, p), s),
    }


def transformer_apply(params: dict, x: jax.Array) -> jax.Array:
    """Logits ``(n, p)`` at the ``=`` position of the sequences ``a b =``."""
    p = params["W_U"].shape[1]
    tokens = jnp.concatenate([x, jnp.full((x.shape[0], 1), p, x.dtype)], axis=1)  # (n, 3)
    resid = _take_rows(params["W_E"], tokens) + params["W_pos"]  # (n, 3, d)
    q = jnp.einsum("npd,hde->nhpe", resid, params["W_Q"])
    k = jnp.einsum("npd,hde->nhpe", resid, params["W_K"])
    v = jnp.einsum("npd,hde->nhpe", resid, params["W_V"])
    scores = jnp.einsum("nhqe,nhke->nhqk", q, k) / jnp.sqrt(q.shape[-1])
    causal = jnp.tril(jnp.ones((3, 3), bool))
    attn = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
    z = jnp.einsum("nhqk,nhke->nhqe", attn, v)
    resid = resid + jnp.einsum("nhqe,hed->nqd", z, params["W_O"])
    mlp = jax.nn.relu(resid @ params["W_in"] + params["b_in"]) @ params["W_out"] + params["b_out"]
    resid = resid + mlp
    return resid[:, -1] @ params["W_U"]


_NETWORKS: dict[str, tuple[Callable, Callable]] = {
    "mlp": (init_mlp, mlp_apply),
    "transformer": (init_transformer, transformer_apply),
}


# ------------------------------------------------------------------ problem


def _cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def _accuracy(logits, labels):
    return jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))


class ModularProblem(NamedTuple):
    """A network on a task, in flat coordinates.

    ``loss_fn(flat)``: mean cross-entropy on the training set.
    ``record_fn(flat)``: scalar observables (``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc``, ``weight_norm``, ``distance``: Euclidean
    distance from ``reference``, the starting point unless changed with
    :meth:`with_reference`).
    """

    task: ModularTask
    arch: str
    init_position: jax.Array
    unravel: Callable
    apply_fn: Callable
    loss_fn: Callable
    record_fn: Callable
    reference: jax.Array

    def with_reference(self, reference: jax.Array) -> ModularProblem:
        """The same problem measuring ``distance`` from ``reference``."""
        reference = jnp.asarray(reference, jnp.float32)
        return self._replace(
            reference=reference, record_fn=_make_record_fn(self.task, self.apply_fn, self.unravel, reference)
        )


def _make_record_fn(task, apply_fn, unravel, reference):
    def record_fn(flat):
        params = unravel(flat)
        tr = apply_fn(params, task.x_train)
        te = apply_fn(params, task.x_test)
        return {
            "train_loss": _cross_entropy(tr, task.y_train),
            "train_acc": _accuracy(tr, task.y_train),
            "test_loss": _cross_entropy(te, task.y_test),
            "test_acc": _accuracy(te, task.y_test),
            "weight_norm": jnp.linalg.norm(flat),
            "distance": jnp.linalg.norm(flat - reference),
        }

    return record_fn


def build_problem(task: ModularTask, arch: str = "mlp", *, init_key: jax.Array, **sizes: Any) -> ModularProblem:
    """Network ``arch`` on ``task`` with parameters drawn from ``init_key``.

    ``sizes`` go to the network's init (``embed_dim``, ``hidden`` for the MLP;
    ``d_model``, ``num_heads``, ``d_mlp`` for the transformer).

    Examples
    --------
    >>> import jax
    >>> problem = build_problem(make_task(23), "mlp", init_key=jax.random.key(0))
    >>> sorted(problem.record_fn(problem.init_position))[:2]
    ['distance', 'test_acc']
    """
    if arch not in _NETWORKS:
        raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    init, apply_fn = _NETWORKS[arch]
    flat, unravel = ravel_pytree(init(init_key, task.p, **sizes))

    def loss_fn(position):
        return _cross_entropy(apply_fn(unravel(position), task.x_train), task.y_train)

    return ModularProblem(
        task, arch, flat, unravel, apply_fn, loss_fn,
        _make_record_fn(task, apply_fn, unravel, flat), flat,
    )


def problem_from_config(cfg: dict[str, Any], seed: int | None = None) -> ModularProblem:
    """The task and network a ``surf grok`` configuration describes (its checkpoints carry one)."""
    task = make_task(cfg["p"], cfg["op"], train_frac=cfg["train_frac"], split_seed=cfg["split_seed"])
    return build_problem(task, cfg["arch"], init_key=jax.random.key(cfg["seed"] if seed is None else seed))
