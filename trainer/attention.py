"""Attention for short training windows on CPU: two batched matmuls instead of SDPA's kernel.

On CPU, PyTorch's SDPA runs a flash-attention kernel that tiles the sequence for long inputs.
At the window lengths a CPU trains (a few hundred tokens) the whole score matrix fits in
cache, and the plain form (scores = Q K^T / sqrt(d) + mask, softmax, then times V) as two
``baddbmm``/``bmm`` calls runs in oneDNN's batched bf16 GEMMs at matmul speed: forward and
backward in bf16 0.2-0.5x the time of the flash kernel up to 512 tokens, about even from 1024
(where the score matrix also grows with the square of the length); in fp32 no faster
(benchmarks/RESULTS.md, "attention"). The mask is transformers' additive ("eager") mask,
built once per forward and shared by the layers, so document masking (a block-causal mask
from restarted position ids) costs the same as plain causal attention here.

Where the fused C kernels build (kernels/cpu_fused.py, one torch thread), the scale, the mask
and the softmax are one pass over the bf16 scores, read straight from the shared fp32 mask
(no per-layer bias copy, no fp32 probabilities to cast back), and the backward of the
softmax is one more: :class:`FusedSoftmaxAttention` (its matmuls are the autograd ones).

It is the same function as SDPA with a mask (tests/test_trainer_attention.py compares
outputs and gradients): the CPU softmax kernel accumulates in fp32 for bf16 inputs.
``use_bmm_attention`` switches a model to it; HF export is unaffected (the saved config keeps
``sdpa``, see trainer/hf_export.py).
"""

from __future__ import annotations

import torch

from dataengine.kernels import cpu_fused

NAME = "dataengine_bmm"
MAX_AUTO_SEQ_LEN = 512  # above this the gain is gone or small on CPU (0.85-1.14x at 1024 tokens)


class FusedSoftmaxAttention(torch.autograd.Function):
    """softmax(scale q k^T + mask) v for bf16 (batch * heads, s, d) q, k, v with the C softmax."""

    @staticmethod
    def forward(ctx, q, k, v, mask, heads: int, scale: float):
        probs = cpu_fused.attention_softmax_(torch.bmm(q, k.transpose(1, 2)), mask, heads, scale)
        ctx.save_for_backward(q, k, v, probs)
        ctx.scale = scale
        return torch.bmm(probs, v)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, probs = ctx.saved_tensors
        grad_v = torch.bmm(probs.transpose(1, 2), grad_out)
        grad_scores = cpu_fused.attention_softmax_backward_(torch.bmm(grad_out, v.transpose(1, 2)), probs, ctx.scale)
        return torch.bmm(grad_scores, k), torch.bmm(grad_scores.transpose(1, 2), q), grad_v, None, None, None


def _fused_softmax_ok(q, k, v, mask, dropout: float, training: bool) -> bool:
    return (q.dtype == k.dtype == v.dtype == torch.bfloat16 and not (dropout and training)
            and (mask is None or (mask.dtype == torch.float32 and mask.stride(-1) == 1))
            and k.size(1) <= cpu_fused.MAX_SOFTMAX_ROW and cpu_fused.usable(q))


def bmm_attention_forward(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, scaling: float | None = None,
                          dropout: float = 0.0, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function contract: q (b, h, s, d), k/v (b, kv_heads, t, d),
    additive mask (b, 1, s, t) or None; returns (b, s, h, d)."""
    b, h, s, d = query.shape
    groups = h // key.size(1)
    if groups > 1:  # grouped-query attention: each kv head serves ``groups`` query heads
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    t = key.size(2)
    scale = d ** -0.5 if scaling is None else scaling
    q, k, v = (x.reshape(b * h, -1, d) for x in (query, key, value))
    mask = None if attention_mask is None else attention_mask[..., :t]
    if _fused_softmax_ok(q, k, v, mask, dropout, module.training) and (mask is None or mask.shape == (b, 1, s, t)):
        out = FusedSoftmaxAttention.apply(q, k, v, mask, h, scale).view(b, h, s, d)
        return out.transpose(1, 2).contiguous(), None
    if attention_mask is None:  # no mask was needed (a single query row, or full attention)
        scores = torch.bmm(q, k.transpose(1, 2)) * scale
    else:
        bias = attention_mask[..., :t].to(q.dtype).expand(b, h, s, t).reshape(b * h, s, t)
        scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=scale)
    probs = torch.softmax(scores, dim=-1)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.bmm(probs, v).view(b, h, s, d)
    return out.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(NAME, bmm_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, eager_mask)


def choose_attention(setting: str, device: torch.device, seq_len: int, bf16: bool) -> str:
    """``runtime.attention``: sdpa | bmm, or auto = bmm under bf16 autocast on CPU up to
    MAX_AUTO_SEQ_LEN tokens. In fp32 the flash kernel is as fast (bmm 1.00-1.15x its time
    at 256-512 tokens), so auto keeps SDPA there."""
    if setting == "auto":
        return "bmm" if device.type == "cpu" and bf16 and seq_len <= MAX_AUTO_SEQ_LEN else "sdpa"
    return setting


def use_attention(model, kind: str) -> None:
    """Switch ``model`` (a transformers causal LM) to ``kind`` attention (sdpa | bmm), in place."""
    if kind == "bmm":
        _register()
        model.set_attn_implementation(NAME)
    else:
        model.set_attn_implementation("sdpa")
