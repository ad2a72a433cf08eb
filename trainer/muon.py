"""``torch.optim.Muon`` with its Newton-Schulz step batched over matrices of one shape, and
whole-matrix orthogonalisation of FSDP2-sharded parameters.

torch's Muon orthogonalises one matrix at a time (``foreach`` is "not supported for Muon
yet"): 15 small matmuls per matrix, 420 calls a step for the `small` preset. A transformer's
hidden matrices come in a few shapes (q/k/v/o, gate/up, down, repeated per layer), so
stacking each shape and running the same iteration as batched matmuls gives the same numbers
in a fraction of the calls (bitwise equal on CPU with ``gram=False``; tests/test_trainer_units.py). The state
(``momentum_buffer`` per parameter) and the param-group keys are torch's, so checkpoints move
between the two classes.

For wide matrices (the MLP's, 3-4x wider than tall) the same iteration is run in its Gram
form (``gram=True``, the default): with R = X X^T, each step X <- p(R) X (p(R) = a + bR + cR^2)
is carried as a small matrix Q with X_k = Q_k X_0 and R <- p(R) R p(R), so the products along
the long side happen only at the start, at one restart and at the end (Gram Newton-Schulz,
Amsel, Chen, Dao et al. 2026, tridao.me/blog/2026/gram-newton-schulz). The same polynomial in
exact arithmetic; 0.65-0.73x the time at aspect 3-4 on CPU (benchmarks/RESULTS.md). In half
precision, rounding in R grows with every step (spurious negative eigenvalues are amplified),
so X is formed and R recomputed from it once: that paper restarts after two steps in fp16; in
bf16 we measured after three to be the closer to a float64 iteration (as close as the standard
form on spectra spanning 1e-6..1, while two steps gave 3x its error on one spanning 1e-2..1;
tests/test_trainer_units.py).

Under FSDP2 a parameter is a DTensor holding a slice of rows; orthogonalising slices would
not be Muon. Each rank gathers the whole update (``full_tensor``), orthogonalises it (the same
numbers on every rank) and keeps its own slice, as "Muon is Scalable for LLM Training"
(Liu et al. 2025) describes for sharded optimizers.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch

GRAM_MIN_ASPECT = 2  # the Gram form from this long side / short side on (0.83x at 2, even at 1.5)
GRAM_RESTART = 3  # steps after which the Gram form recomputes R from X


def batched_newton_schulz(updates: torch.Tensor, coefficients: tuple[float, float, float], steps: int,
                          eps: float, dtype: torch.dtype = torch.bfloat16, gram: bool = False) -> torch.Tensor:
    """Orthogonalise a stack (n, rows, cols) of updates: torch Muon's quintic iteration, in bf16
    (``dtype``: another precision, e.g. float64 for a reference). ``gram``: in its Gram form
    where the matrices are at least GRAM_MIN_ASPECT times wider than tall (either way round)."""
    a, b, c = coefficients
    x = updates.to(dtype)
    tall = updates.size(-2) > updates.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)  # spectral norm at most 1
    if gram and x.size(-1) >= GRAM_MIN_ASPECT * x.size(-2):
        x = _gram_iterations(x, a, b, c, steps)
    else:
        for _ in range(steps):
            gram_matrix = x @ x.mT
            poly = torch.baddbmm(gram_matrix, gram_matrix, gram_matrix, beta=b, alpha=c)
            x = torch.baddbmm(x, poly, x, beta=a)
    return x.mT if tall else x


def _gram_iterations(x: torch.Tensor, a: float, b: float, c: float, steps: int) -> torch.Tensor:
    """``steps`` of X <- p(X X^T) X on a wide stack, carried as X = Q X0 with R = X X^T."""
    r, q = torch.bmm(x, x.mT), None
    for k in range(steps):
        if k == GRAM_RESTART:  # fold Q into X and recompute R: bf16 rounding in R would keep growing
            x = torch.bmm(q, x)
            r, q = torch.bmm(x, x.mT), None
        p = torch.baddbmm(r, r, r, beta=b, alpha=c)
        p.diagonal(dim1=-2, dim2=-1).add_(a)  # p(R) = a I + b R + c R^2
        q = p if q is None else torch.bmm(p, q)
        if k + 1 < steps and k + 1 != GRAM_RESTART:
            r = torch.bmm(torch.bmm(p, r), p)  # R of the next X: p(R) R p(R)
    return torch.bmm(q, x)


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: torch.Size) -> float:
    """torch Muon's shape adjustment: ``original`` sqrt(max(1, rows/cols)) (Jordan); ``match_rms_adamw``
    0.2 sqrt(max(rows, cols)) (Liu et al.)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


def _is_dtensor(t: torch.Tensor) -> bool:
    return type(t).__name__ == "DTensor"


def _whole(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if _is_dtensor(t) else t


def _like(update: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """``update`` (a whole matrix) laid out like ``param``: its own rows on this rank under FSDP2."""
    if not _is_dtensor(param):
        return update
    from torch.distributed.tensor import distribute_tensor

    # every rank holds the same whole update: each keeps its slice, no communication
    return distribute_tensor(update, param.device_mesh, param.placements, src_data_rank=None)


class GroupedMuon(torch.optim.Muon):
    """Drop-in ``torch.optim.Muon``: same arguments and state; batched Newton-Schulz (``gram``:
    in its Gram form for wide matrices; with ``gram=False`` the results are torch's, bitwise)."""

    def __init__(self, params, *args, gram: bool = True, **kwargs):
        super().__init__(params, *args, **kwargs)
        self.gram = gram

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work: list[tuple[torch.Tensor, dict, torch.Tensor]] = []
        for group in self.param_groups:
            params, grads, bufs = [], [], []
            self._init_group(group, params, grads, bufs)
            momentum = group["momentum"]
            for param, grad, buf in zip(params, grads, bufs):
                buf.lerp_(grad, 1 - momentum)
                update = grad.lerp(buf, momentum) if group["nesterov"] else buf
                work.append((param, group, _whole(update)))
        batches: dict[tuple, list[int]] = defaultdict(list)
        for i, (_, group, update) in enumerate(work):
            key = (tuple(update.shape), update.device, tuple(group["ns_coefficients"]), group["ns_steps"], group["eps"])
            batches[key].append(i)
        orthogonal: list[torch.Tensor | None] = [None] * len(work)
        for (_, _, coefficients, steps, eps), members in batches.items():
            stacked = batched_newton_schulz(torch.stack([work[i][2] for i in members]), coefficients, steps, eps,
                                            gram=self.gram)
            for j, i in enumerate(members):
                orthogonal[i] = stacked[j]
        for (param, group, _), update in zip(work, orthogonal):
            lr = float(group["lr"])
            param.mul_(1 - lr * group["weight_decay"])
            param.add_(_like(update, param), alpha=-adjusted_lr(lr, group["adjust_lr_fn"], param.shape))
        return loss
