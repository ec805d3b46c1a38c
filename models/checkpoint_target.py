"""A ``surf grok`` checkpoint's training loss as a :class:`~models.target.Target`.

The checkpoint (``checkpoint_STEP.npz/.json``, :mod:`samplers.checkpoint`)
stores the task and architecture in its configuration and the parameters as
a flat vector; the network, the train/test split and the loss are rebuilt
from the configuration (:func:`surf.grok.build_problem_from`).

**The loss is a MEAN.** ``L(w)`` is the mean cross-entropy over the ``n``
training examples, so ``beta`` multiplies that mean:

    log p(w) = -beta_scale * beta * L(w) - (wd / 2) beta_scale * beta ||w||^2 [optional]
               - (gamma / 2) ||w - w0||^2 [optional]

* ``beta = "equipartition"``: ``d / (2 L0)`` with ``d`` the number of
  parameters and ``L0`` the checkpoint's own training loss (``L_ref = 0``):
  a quadratic well at this temperature would have mean loss ``L0``. For a
  *sum* loss the same temperature would be ``beta / n``.
* ``beta = "wbic"``: ``n / log n`` (WBIC's ``beta = 1 / log n`` on the sum).
* ``beta = NUMBER``: used as given (it multiplies the mean); the usual
  Bayesian posterior at unit temperature is ``beta = n``.
* ``beta_scale`` multiplies whichever of these.
* ``prior_wd``: a Gaussian prior matching an L2 penalty ``(wd / 2) ||w||^2``
  added to the mean loss, i.e. ``prior_scale = 1 / sqrt(beta * wd)`` (AdamW's
  *decoupled* weight decay is not exactly this penalty; it is the nearest
  Bayesian reading of it).
* ``localization``: ``gamma`` pulls toward the checkpoint's weights ``w0``.

``record_fn`` reports scalars only (never the weights): ``train_loss``,
``train_acc``, ``test_loss``, ``test_acc``, ``weight_norm`` and ``distance``
(from the checkpoint's weights).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from models.target import Target
from models.tempering import equipartition_beta, resolve_beta, tempered_logdensity
from samplers.checkpoint import CheckpointError, load_checkpoint

__all__ = ["LoadedCheckpoint", "load_grok_position", "checkpoint_target", "checkpoint_llc_problem"]


class LoadedCheckpoint(NamedTuple):
    path: str
    position: jax.Array
    problem: Any  # models.modular.ModularProblem, distance measured from ``position``
    meta: dict
    step: int


def load_grok_position(path: str | Path) -> LoadedCheckpoint:
    """Parameters and rebuilt problem of a ``surf grok`` checkpoint.

    Raises :class:`~samplers.checkpoint.CheckpointError` (a ``ValueError``)
    when the file is missing, corrupt, or not a grok checkpoint.
    """
    from models.modular import problem_from_config as build_problem_from

    leaves, meta = load_checkpoint(path)
    cfg = meta.get("config")
    if meta.get("kind") != "grok" or not isinstance(cfg, dict):
        raise CheckpointError(f"{path} is not a surf grok checkpoint")
    try:
        problem = build_problem_from(cfg)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable surf grok checkpoint ({err})") from None
    if not leaves:
        raise CheckpointError(f"{path}: the checkpoint holds no arrays")
    # the tree is {"opt_state": ..., "position": ...}; dict leaves are in key order
    position = np.asarray(leaves[-1])
    if position.shape != tuple(problem.init_position.shape):
        raise CheckpointError(
            f"{path}: parameters of shape {position.shape}, the configured network needs "
            f"{tuple(problem.init_position.shape)}"
        )
    if not np.all(np.isfinite(position)):
        raise CheckpointError(f"{path}: the checkpoint's parameters are not finite")
    position = jnp.asarray(position, jnp.float32)
    return LoadedCheckpoint(str(path), position, problem.with_reference(position), meta, int(meta.get("step", 0)))


def checkpoint_target(
    path: str | Path | LoadedCheckpoint,
    *,
    beta: float | str = "equipartition",
    beta_scale: float = 1.0,
    prior_wd: float | None = None,
    localization: float = 0.0,
) -> Target:
    """The training loss of a grok checkpoint at inverse temperature ``beta * beta_scale``.

    Chains start at the checkpoint's weights. ``ValueError`` for bad input
    (e.g. equipartition at zero training loss).
    """
    ck = path if isinstance(path, LoadedCheckpoint) else load_grok_position(path)
    problem, w0 = ck.problem, ck.position
    dim = int(w0.shape[0])
    n = int(problem.task.x_train.shape[0])
    if not (math.isfinite(beta_scale) and beta_scale > 0):
        raise ValueError(f"--beta-scale must be a positive number, got {beta_scale}")
    loss0 = float(problem.loss_fn(w0))
    if isinstance(beta, str) and beta.strip().lower() == "equipartition":
        if not loss0 > 0:
            raise ValueError(
                f"equipartition needs a training loss above 0 at the checkpoint, got {loss0:.3g}; pass --beta NUMBER"
            )
        base = equipartition_beta(loss0, dim)
    else:
        base = resolve_beta(beta, dim=dim, num_data=n, loss_reduction="mean")
    value = float(base) * float(beta_scale)
    prior_scale = None
    if prior_wd is not None and prior_wd > 0:
        prior_scale = 1.0 / math.sqrt(value * float(prior_wd))
    elif prior_wd is not None and prior_wd < 0:
        raise ValueError(f"--prior-wd must be >= 0, got {prior_wd}")
    if localization < 0:
        raise ValueError(f"--localization must be >= 0, got {localization}")
    logdensity = tempered_logdensity(problem.loss_fn, value, prior_scale=prior_scale,
                                     localization=float(localization), center=w0)
    record = problem.record_fn

    def init_fn(rng_key, num_chains: int):
        return jnp.tile(w0[None], (int(num_chains), 1))

    cfg = {k: ck.meta["config"].get(k) for k in ("p", "op", "train_frac", "split_seed", "arch", "seed",
                                                  "optimizer", "weight_decay")}
    config = {
        "checkpoint": ck.path, "step": ck.step, "grok_config": cfg, "beta_spec": str(beta),
        "beta_base": float(base), "beta_scale": float(beta_scale), "beta": value, "loss_reduction": "mean",
        "num_data": n, "dim": dim, "initial_train_loss": loss0, "prior_wd": prior_wd,
        "prior_scale": prior_scale, "localization": float(localization),
    }
    return Target(
        name=f"grok:{Path(ck.path).name}", dim=dim, logdensity_fn=logdensity, loss_fn=problem.loss_fn,
        beta=value, init_fn=init_fn, record_fn=record, num_data=n, config=config,
    )


def checkpoint_llc_problem(path: str | Path | LoadedCheckpoint, *, num_data: int | None = None):
    """The checkpoint as an :class:`~diagnostics.llc.LLCProblem` (``L_n`` = mean train cross-entropy, ``w*`` = its weights)."""
    from models.llc_problem import LLCProblem
    from models.modular import _cross_entropy

    ck = path if isinstance(path, LoadedCheckpoint) else load_grok_position(path)
    problem = ck.problem
    task = problem.task
    apply_fn, unravel = problem.apply_fn, problem.unravel

    def batch_loss(flat, batch):
        x, y = batch
        return _cross_entropy(apply_fn(unravel(flat), x), y)

    def record(flat):
        r = problem.record_fn(flat)
        return {"distance": r["distance"]}  # the test set would double the cost per draw

    n = int(task.x_train.shape[0])
    return LLCProblem(
        name=f"grok:{Path(ck.path).name}", dim=int(ck.position.shape[0]), loss_fn=problem.loss_fn,
        center=ck.position, num_data=int(num_data or n), record_fn=record, batch_loss_fn=batch_loss,
        data=(task.x_train, task.y_train),
        config={"checkpoint": ck.path, "step": ck.step, "num_train": n},
    )
