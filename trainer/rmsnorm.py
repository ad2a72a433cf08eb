"""RMSNorm with a hand-written backward that emits the autocast dtype once, for CPU training.

transformers' ``LlamaRMSNorm`` is six elementwise ops whose autograd backward is a dozen more,
and under bf16 autocast its fp32 output is cast to bf16 again by every linear that reads it
(q, k and v: three casts of the same tensor; gate and up: two). On one CPU thread, where each
op is a pass over memory, :class:`FusedRMSNorm` computes the same normalisation in fp32 in
three passes, writes its output once in the autocast dtype, and computes the input and weight
gradients in a few passes (benchmarks/RESULTS.md). Where the fused C kernels build
(kernels/cpu_fused.py; one torch thread, fp32 in, bf16 out) forward and backward are one
pass each. Parameters are untouched: only the ``forward`` of the training model's norm
modules is replaced (``use_fused_rmsnorm``).
"""

from __future__ import annotations

import torch

from dataengine.kernels import cpu_fused


class FusedRMSNorm(torch.autograd.Function):
    """y = w * x / sqrt(mean(x^2) + eps), computed in fp32 (or x's dtype if wider), returned in ``out_dtype``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float, out_dtype: torch.dtype) -> torch.Tensor:
        ctx.x_dtype = x.dtype
        if (out_dtype == torch.bfloat16 and x.dtype == torch.float32 and weight.dtype == torch.float32
                and cpu_fused.usable(x, weight)):
            out, rstd = cpu_fused.rmsnorm_forward(x.contiguous(), weight.contiguous(), eps)
            ctx.save_for_backward(x, rstd, weight)
            ctx.kernel = True
            return out
        ctx.kernel = False
        x32 = x if x.dtype in (torch.float32, torch.float64) else x.float()  # at least fp32
        rstd = torch.rsqrt(x32.square().mean(-1, keepdim=True).add_(eps))
        normed = x32 * rstd
        out = torch.empty(x.shape, dtype=out_dtype, device=x.device)
        torch.mul(normed, weight.to(normed.dtype), out=out)
        ctx.save_for_backward(normed, rstd, weight)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.kernel:
            x, rstd, weight = ctx.saved_tensors
            if grad.dtype == torch.bfloat16:
                grad_x, grad_weight = cpu_fused.rmsnorm_backward(grad.contiguous(), x.contiguous(), weight.contiguous(),
                                                                 rstd)
                return grad_x, grad_weight, None, None
            normed, rstd = x * rstd.view(*x.shape[:-1], 1), rstd.view(*x.shape[:-1], 1)
        else:
            normed, rstd, weight = ctx.saved_tensors
        g = grad.to(normed.dtype)
        grad_weight = (g * normed).sum(dim=tuple(range(g.dim() - 1))).to(weight.dtype)
        gw = g * weight.to(normed.dtype)
        dot = (gw * normed).mean(-1, keepdim=True)
        grad_x = gw.addcmul_(normed, dot, value=-1).mul_(rstd)  # rstd (gw - normed mean(gw normed))
        return grad_x.to(ctx.x_dtype), grad_weight, None, None


def fused_rmsnorm_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    """``LlamaRMSNorm.forward``: the autocast dtype out when autocast is on, else the input's."""
    device = hidden_states.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden_states.dtype
    return FusedRMSNorm.apply(hidden_states, self.weight, self.variance_epsilon, dtype)


def use_fused_rmsnorm(model, enabled: bool = True) -> None:
    """Switch every ``LlamaRMSNorm`` of ``model`` to (or back from) :func:`fused_rmsnorm_forward`."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from dataengine.trainer.forward_swap import swap_forward

    swap_forward(model, LlamaRMSNorm, fused_rmsnorm_forward, enabled)
