"""Head-major rotary (trainer/rotary.py) is transformers' rotary: same values and gradients,
same model outputs, and generation with a KV cache still takes transformers' path."""

import pytest
import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from dataengine.trainer.attention import use_attention
from dataengine.trainer.batches import document_position_ids
from dataengine.trainer.model import build_model, model_config
from dataengine.trainer.rotary import RotaryToHeads, half_tables, use_head_major_rotary


def _tables(b, s, d, dtype):
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    freqs = torch.arange(s, dtype=torch.float64)[None, :, None] * inv
    emb = torch.cat((freqs, freqs), dim=-1).expand(b, s, d)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def test_rotary_to_heads_is_transformers_rotary_with_its_gradient():
    torch.manual_seed(0)
    b, s, h, d = 2, 12, 3, 8
    cos, sin = _tables(b, s, d, torch.float64)
    x = torch.randn(b, s, h, d, dtype=torch.float64, requires_grad=True)
    ref, _ = apply_rotary_pos_emb(x.transpose(1, 2), x.transpose(1, 2), cos, sin)
    c, s_ = half_tables((cos, sin), torch.float64)
    out = RotaryToHeads.apply(x, c, s_)
    assert out.is_contiguous() and out.shape == (b, h, s, d)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: RotaryToHeads.apply(t, c, s_), (x,))


def test_rotary_backward_takes_a_transposed_gradient_like_the_attention_gives_for_k():
    """k's gradient reaches the rotary from the attention's batched matmul as a transposed view; the
    backward must give the same gradient as for a contiguous one: transformers' (autograd's)."""
    torch.manual_seed(0)
    b, s, h, d = 2, 12, 3, 8
    cos, sin = _tables(b, s, d, torch.float64)
    c, s_ = half_tables((cos, sin), torch.float64)
    x = torch.randn(b, s, h, d, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(b * h, d, s, dtype=torch.float64).transpose(1, 2).view(b, h, s, d)
    assert not grad.is_contiguous()
    (ours,) = torch.autograd.grad(RotaryToHeads.apply(x, c, s_), x, grad)
    ref, _ = apply_rotary_pos_emb(x.transpose(1, 2), x.transpose(1, 2), cos, sin)
    (expected,) = torch.autograd.grad(ref, x, grad)
    assert ours.shape == x.shape and torch.allclose(ours, expected, atol=1e-12)


def _run(model, inputs, positions, bf16):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(input_ids=inputs, position_ids=positions, use_cache=False).logits
    torch.nn.functional.cross_entropy(logits.float()[:, :-1].reshape(-1, logits.size(-1)),
                                      inputs[:, 1:].reshape(-1)).backward()
    return logits.detach().float(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _assert_close(out, grads, ref, ref_grads, bf16):
    """Logits within rounding of the reference, every parameter's gradient too (relative norm)."""
    tol = 1e-5 if not bf16 else 3e-2
    assert (out - ref).abs().max().item() <= tol * max(1.0, ref.abs().max().item())
    for name, g in ref_grads.items():
        assert ((grads[name] - g).norm() / g.norm().clamp(min=1e-12)).item() <= (1e-4 if not bf16 else 3e-2), name


@pytest.mark.parametrize("attention", ["bmm", "sdpa"])
@pytest.mark.parametrize("bf16", [False, True])
def test_model_with_head_major_rotary_matches_transformers(attention, bf16):
    torch.manual_seed(0)
    eos = 3
    model = build_model(model_config("tiny", 120, eos, 96, {"num_key_value_heads": 2}), seed=5)
    use_attention(model, attention)
    inputs = torch.randint(4, 120, (2, 96))
    inputs[0, 20] = inputs[1, 70] = eos
    positions = document_position_ids(inputs, eos)
    ref, ref_grads = _run(model, inputs, positions, bf16)
    use_head_major_rotary(model)
    out, grads = _run(model, inputs, positions, bf16)
    _assert_close(out, grads, ref, ref_grads, bf16)
    use_head_major_rotary(model, enabled=False)  # and back: transformers' forward again
    again, _ = _run(model, inputs, positions, bf16)
    assert torch.equal(again, ref)


def test_generation_with_a_kv_cache_falls_back_to_transformers():
    model = build_model(model_config("tiny", 120, 3, 64), seed=6).eval()
    prompt = torch.randint(4, 120, (1, 10))
    ref = model.generate(prompt, max_new_tokens=8, do_sample=False)
    use_head_major_rotary(model)
    assert torch.equal(model.generate(prompt, max_new_tokens=8, do_sample=False), ref)


def test_fused_rmsnorm_is_transformers_rmsnorm_with_its_gradient():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from dataengine.trainer.rmsnorm import FusedRMSNorm, use_fused_rmsnorm

    torch.manual_seed(0)
    norm = LlamaRMSNorm(16, eps=1e-6).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    ref = norm(x)
    use_fused_rmsnorm(norm)
    assert torch.allclose(norm(x), ref, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t, w: FusedRMSNorm.apply(t, w, 1e-6, torch.float64), (x, norm.weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under autocast: the autocast dtype, once
        assert norm(x.float()).dtype == torch.bfloat16


@pytest.mark.parametrize("bf16", [False, True])
def test_model_with_fused_rmsnorm_and_rotary_matches_transformers(bf16):
    from dataengine.trainer.rmsnorm import use_fused_rmsnorm

    torch.manual_seed(1)
    eos = 3
    model = build_model(model_config("tiny", 120, eos, 96), seed=7)
    with torch.no_grad():  # norm gains away from 1, so a wrong weight gradient would show
        for n, p in model.named_parameters():
            if "norm" in n:
                p.uniform_(0.5, 1.5)
    use_attention(model, "bmm")
    inputs = torch.randint(4, 120, (2, 96))
    inputs[1, 40] = eos
    positions = document_position_ids(inputs, eos)
    ref, ref_grads = _run(model, inputs, positions, bf16)
    use_fused_rmsnorm(model)
    use_head_major_rotary(model)
    out, grads = _run(model, inputs, positions, bf16)
    _assert_close(out, grads, ref, ref_grads, bf16)


def test_fused_layers_auto_means_cpu_without_compile():
    from dataengine.trainer.loop import use_fused_layers

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_fused_layers("auto", cpu, compiled=False)
    assert not use_fused_layers("auto", cpu, compiled=True)  # compile fuses; out= writes would break its graph
    assert not use_fused_layers("auto", cuda, compiled=False)
    assert use_fused_layers(True, cuda, compiled=True) and not use_fused_layers(False, cpu, compiled=False)
