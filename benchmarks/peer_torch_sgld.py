"""The PyTorch peer of ``bench_llc_torch.py``: a plain SGLD loop estimating an LLC.

Runs in its own interpreter (it needs only ``torch`` and ``numpy``, see
``make bench-peers``), reads a problem written by ``bench_llc_torch.py``
(plain arrays in an ``.npz``: the MLP's weights at the checkpoint and the
training set; settings as JSON on the command line) and prints one JSON
line: wall seconds, the LLC per chain, and the loss at the checkpoint.

The loop is what a PyTorch user writes (the devinterp recipe, in
BlackJAX's step convention so both sides take the same steps): per chain,
an ``nn.Module`` at the checkpoint's weights; per step a full-batch forward
pass, ``nbeta * L_n(w) + gamma / 2 * ||w - w*||^2``, ``backward()``, and
``w <- w - h * grad + sqrt(2 h) * N(0, I)``; the loss of each step's forward
pass after warmup is kept. LLC = nbeta * (mean kept loss - L_n(w*)).

    .venv-torch/bin/python benchmarks/peer_torch_sgld.py PROBLEM.npz '{"nbeta": ..., ...}'
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    """``surf grok``'s MLP: two embeddings, concatenated, one ReLU layer, a readout."""

    def __init__(self, arrays):
        super().__init__()
        self.embed_a = nn.Parameter(torch.from_numpy(arrays["embed_a"]).clone())
        self.embed_b = nn.Parameter(torch.from_numpy(arrays["embed_b"]).clone())
        self.w1 = nn.Parameter(torch.from_numpy(arrays["w1"]).clone())
        self.b1 = nn.Parameter(torch.from_numpy(arrays["b1"]).clone())
        self.w2 = nn.Parameter(torch.from_numpy(arrays["w2"]).clone())
        self.b2 = nn.Parameter(torch.from_numpy(arrays["b2"]).clone())

    def forward(self, x):
        h = torch.cat([self.embed_a[x[:, 0]], self.embed_b[x[:, 1]]], dim=1)
        h = torch.relu(h @ self.w1 + self.b1)
        return h @ self.w2 + self.b2


def estimate(arrays, settings):
    torch.manual_seed(settings["seed"])
    x = torch.from_numpy(arrays["x_train"].astype(np.int64))
    y = torch.from_numpy(arrays["y_train"].astype(np.int64))
    nbeta, gamma, h = settings["nbeta"], settings["gamma"], settings["step_size"]
    loss_fn = nn.CrossEntropyLoss()
    with torch.no_grad():
        loss0 = float(loss_fn(MLP(arrays)(x), y))
    noise_scale = math.sqrt(2.0 * h)
    per_chain = []
    for _ in range(settings["chains"]):
        model = MLP(arrays)
        center = [p.detach().clone() for p in model.parameters()]
        kept = []
        for step in range(settings["warmup"] + settings["draws"]):
            model.zero_grad()
            loss = loss_fn(model(x), y)
            objective = nbeta * loss
            if gamma > 0:
                objective = objective + 0.5 * gamma * sum(((p - c) ** 2).sum() for p, c in zip(model.parameters(), center, strict=True))
            objective.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-h)
                    p.add_(torch.randn_like(p), alpha=noise_scale)
            if step >= settings["warmup"]:
                kept.append(loss.item())
        per_chain.append(nbeta * (float(np.mean(kept)) - loss0))
    return per_chain, loss0


def main() -> None:
    arrays = dict(np.load(sys.argv[1], allow_pickle=False))
    settings = json.loads(sys.argv[2])
    if settings.get("threads"):
        torch.set_num_threads(int(settings["threads"]))
    estimate(arrays, dict(settings, chains=1, warmup=2, draws=2))  # first-call overheads, untimed
    start = time.perf_counter()
    per_chain, loss0 = estimate(arrays, settings)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "llc_per_chain": per_chain, "loss0": loss0,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
