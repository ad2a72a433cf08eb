"""The Llama MLP's gate, ``silu(gate) * up``, as one pass forward and one backward on CPU.

Eager PyTorch runs it as ``silu`` then ``mul`` (two passes, a bf16 temporary) and backward as
two ``mul`` and a ``silu_backward`` (three passes, two temporaries). Where the fused C kernels
build (kernels/cpu_fused.py: one torch thread, bf16 under autocast) :class:`FusedSwiGLU` reads
gate and up once and writes each result once, in fp32 math. Elsewhere :func:`swiglu` is the
eager expression. Only the ``forward`` of the training model's MLP modules is replaced
(``use_fused_mlp``), as for the norms (trainer/forward_swap.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dataengine.kernels import cpu_fused


class FusedSwiGLU(torch.autograd.Function):
    """silu(gate) * up for bf16 CPU tensors, with the C kernels."""

    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        gate, up = gate.contiguous(), up.contiguous()
        ctx.save_for_backward(gate, up)
        return cpu_fused.swiglu_forward(gate, up)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gate, up = ctx.saved_tensors
        return cpu_fused.swiglu_backward(grad.contiguous(), gate, up)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up``: fused where the kernels apply, else the eager expression."""
    if gate.dtype == up.dtype == torch.bfloat16 and gate.shape == up.shape and cpu_fused.usable(gate, up):
        return FusedSwiGLU.apply(gate, up)
    return F.silu(gate) * up


def fused_mlp_forward(self, x: torch.Tensor) -> torch.Tensor:
    """``LlamaMLP.forward`` with the gate through :func:`swiglu`."""
    return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))


def use_fused_mlp(model, enabled: bool = True) -> None:
    """Switch every silu-gated ``LlamaMLP`` of ``model`` to (or back from) :func:`fused_mlp_forward`."""
    from transformers.models.llama.modeling_llama import LlamaMLP

    from dataengine.trainer.forward_swap import swap_forward

    silu = getattr(model.config, "hidden_act", None) == "silu"
    swap_forward(model, LlamaMLP, fused_mlp_forward, enabled and silu)
