"""Next-token cross-entropy straight from bf16 logits, without an fp32 copy of them.

The reference path casts the logits to fp32 (a copy the size of the vocabulary per token),
runs ``log_softmax`` (another), and backward writes a zero-filled gradient, scatters into it
and casts it back to bf16. Where the fused C kernels build (kernels/cpu_fused.py, one torch
thread), :class:`FusedCrossEntropy` does the same fp32 math in one pass forward (keeping each
row's log-sum-exp) and one backward, writing the bf16 gradient directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dataengine.kernels import cpu_fused

IGNORE_INDEX = -100


class FusedCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of bf16 logits (rows, vocab) over targets that are not IGNORE_INDEX."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        total, lse = cpu_fused.cross_entropy_forward(logits, targets, IGNORE_INDEX)
        count = int((targets != IGNORE_INDEX).sum())
        ctx.save_for_backward(logits, targets, lse)
        ctx.count = count
        return torch.tensor(total / count if count else float("nan"), dtype=torch.float32)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        coef = float(grad) / ctx.count if ctx.count else 0.0
        return cpu_fused.cross_entropy_backward(logits, targets, lse, coef, IGNORE_INDEX), None


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (..., vocab) against ``targets`` (...), in fp32 math."""
    flat, flat_targets = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
    if (flat.dtype == torch.bfloat16 and flat_targets.dtype == torch.int64
            and cpu_fused.usable(flat, flat_targets)):
        return FusedCrossEntropy.apply(flat.contiguous(), flat_targets.contiguous())
    return F.cross_entropy(flat.float(), flat_targets, ignore_index=IGNORE_INDEX)
