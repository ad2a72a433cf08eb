"""Rotary embedding applied straight into the head-major layout attention reads, for CPU training.

transformers' Llama attention projects q/k/v as (batch, seq, heads, dim), transposes them to
(batch, heads, seq, dim) views and applies rotary as ``q * cos + rotate_half(q) * sin``, where
``cos``/``sin`` stay fp32 under bf16 autocast: every product is promoted to fp32, ``rotate_half``
copies through ``torch.cat``, and the attention then copies and casts q and k back to bf16 in
the layout its batched matmuls need. On one CPU thread that is ~10% of a `small` training step
(benchmarks/RESULTS.md). :class:`RotaryToHeads` does the same rotation in the projections'
dtype with half-width tables, writes the result directly into a contiguous (batch, heads,
seq, dim) tensor, and has a hand-written backward of the same shape (rotary is orthogonal: the
gradient is the inverse rotation).

Under autocast the rotation runs in bf16 (tables rounded to bf16), as transformers' own path
does for a model held in bf16; in fp32 it is the same arithmetic as transformers'. Parameters,
state dict and the HF export are untouched: only ``LlamaAttention.forward`` of the training
model is replaced (``use_head_major_rotary``).
"""

from __future__ import annotations

import torch


class RotaryToHeads(torch.autograd.Function):
    """x (b, s, h, d), cos/sin (b, s, 1, d/2) in x's dtype -> rotated x as contiguous (b, h, s, d)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, h, d = x.shape
        half = d // 2
        out = x.new_empty(b, h, s, d)
        view = out.transpose(1, 2)
        x1, x2, o1, o2 = x[..., :half], x[..., half:], view[..., :half], view[..., half:]
        torch.mul(x1, cos, out=o1)
        o1.addcmul_(x2, sin, value=-1)  # first half: x1 cos - x2 sin
        torch.mul(x2, cos, out=o2)
        o2.addcmul_(x1, sin)  # second half: x2 cos + x1 sin
        ctx.save_for_backward(cos, sin)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        cos, sin = ctx.saved_tensors
        half = grad.size(-1) // 2
        # Rotate in the head-major layout the gradient arrives in, then copy out once. Reading a
        # head-major gradient through a transposed view and writing (b, s, h, d) took 1.4x as long,
        # and 3.6x for k's gradient, which the attention's batched matmul hands over transposed
        # (strides (.., 1, s)) (`bench_trainer_parts.py rotary`).
        g = grad.contiguous()
        cos, sin = cos.transpose(1, 2), sin.transpose(1, 2)  # (b, 1, s, d/2)
        rotated = torch.empty_like(g)
        g1, g2, o1, o2 = g[..., :half], g[..., half:], rotated[..., :half], rotated[..., half:]
        torch.mul(g1, cos, out=o1)
        o1.addcmul_(g2, sin)  # the transpose of the rotation: the rotation by -angle
        torch.mul(g2, cos, out=o2)
        o2.addcmul_(g1, sin, value=-1)
        return rotated.transpose(1, 2).contiguous(), None, None


def half_tables(position_embeddings: tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype):
    """transformers' (cos, sin) of shape (b, s, d), whose two halves are equal, as (b, s, 1, d/2) in ``dtype``."""
    cos, sin = position_embeddings
    half = cos.size(-1) // 2
    return cos[..., :half].unsqueeze(2).to(dtype), sin[..., :half].unsqueeze(2).to(dtype)


def head_major_attention_forward(self, hidden_states: torch.Tensor, position_embeddings=None, attention_mask=None,
                                 cache=None, **kwargs):
    """``LlamaAttention.forward`` for training (no KV cache): projections, :class:`RotaryToHeads`, the
    configured attention function, output projection."""
    if cache is not None or kwargs.get("past_key_values") is not None:
        return type(self).forward(self, hidden_states, position_embeddings=position_embeddings,
                                  attention_mask=attention_mask, cache=cache, **kwargs)
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    b, s, _ = hidden_states.shape
    shape = (b, s, -1, self.head_dim)
    q, k, v = (proj(hidden_states).view(shape) for proj in (self.q_proj, self.k_proj, self.v_proj))
    cos, sin = half_tables(position_embeddings, q.dtype)
    q, k = RotaryToHeads.apply(q, cos, sin), RotaryToHeads.apply(k, cos, sin)
    v = v.transpose(1, 2).contiguous()
    attend = ALL_ATTENTION_FUNCTIONS[self.config._attn_implementation]
    out, weights = attend(self, q, k, v, attention_mask, dropout=self.attention_dropout if self.training else 0.0,
                          scaling=self.scaling, **kwargs)
    return self.o_proj(out.reshape(b, s, -1)), weights


def use_head_major_rotary(model, enabled: bool = True) -> None:
    """Switch every Llama attention module of ``model`` to (or back from) :func:`head_major_attention_forward`."""
    from transformers.models.llama.modeling_llama import LlamaAttention

    from dataengine.trainer.forward_swap import swap_forward

    swap_forward(model, LlamaAttention, head_major_attention_forward, enabled)
