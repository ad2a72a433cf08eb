"""The batched-matmul attention (trainer/attention.py) is SDPA's function: same outputs and
gradients on a real LlamaForCausalLM, with plain causal and document-masked windows."""

import pytest
import torch

from dataengine.trainer.attention import choose_attention, use_attention
from dataengine.trainer.batches import document_position_ids
from dataengine.trainer.model import build_model, model_config


def _loss_and_grads(model, inputs, positions, dtype):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits = model(input_ids=inputs, position_ids=positions, use_cache=False).logits
    loss = torch.nn.functional.cross_entropy(logits.float()[:, :-1].reshape(-1, logits.size(-1)),
                                             inputs[:, 1:].reshape(-1))
    loss.backward()
    return logits.detach().float(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bmm_attention_matches_sdpa(kv_heads, masked, dtype):
    torch.manual_seed(0)
    eos = 3
    config = model_config("tiny", 120, eos, 48, {"num_key_value_heads": kv_heads})
    model = build_model(config, seed=1)
    inputs = torch.randint(4, 120, (3, 48))
    inputs[0, 10] = inputs[1, 30] = inputs[2, 5] = inputs[2, 40] = eos
    positions = document_position_ids(inputs, eos) if masked else None

    use_attention(model, "sdpa")
    ref_logits, ref_grads = _loss_and_grads(model, inputs, positions, dtype)
    use_attention(model, "bmm")
    assert model.config._attn_implementation == "dataengine_bmm"
    logits, grads = _loss_and_grads(model, inputs, positions, dtype)

    tol = 1e-5 if dtype == torch.float32 else 3e-2
    assert (logits - ref_logits).abs().max().item() <= tol * max(1.0, ref_logits.abs().max().item())
    for name, ref in ref_grads.items():
        rel = ((grads[name] - ref).norm() / ref.norm().clamp(min=1e-12)).item()
        assert rel <= (1e-4 if dtype == torch.float32 else 3e-2), (name, rel)


def test_bmm_attention_keeps_documents_apart():
    """With restarted position ids, the second document's logits do not depend on the first's tokens
    (under plain causal attention they would)."""
    eos = 3
    model = build_model(model_config("tiny", 120, eos, 32), seed=2)
    use_attention(model, "bmm")
    a = torch.randint(4, 120, (1, 32))
    a[0, 12] = eos
    b = a.clone()
    b[0, :12] = torch.randint(4, 120, (12,))
    with torch.no_grad():
        la = model(input_ids=a, position_ids=document_position_ids(a, eos), use_cache=False).logits
        lb = model(input_ids=b, position_ids=document_position_ids(b, eos), use_cache=False).logits
        causal_a, causal_b = (model(input_ids=x, use_cache=False).logits for x in (a, b))
    assert torch.allclose(la[0, 13:], lb[0, 13:], atol=1e-5)
    assert not torch.allclose(causal_a[0, 13:], causal_b[0, 13:], atol=1e-3)


def test_choose_attention():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_attention("auto", cpu, 256, bf16=True) == "bmm"
    assert choose_attention("auto", cpu, 256, bf16=False) == "sdpa"  # fp32: the flash kernel is as fast
    assert choose_attention("auto", cpu, 4096, bf16=True) == "sdpa"
    assert choose_attention("auto", cuda, 256, bf16=True) == "sdpa"
    assert choose_attention("sdpa", cpu, 256, bf16=True) == "sdpa"
    assert choose_attention("bmm", cuda, 4096, bf16=False) == "bmm"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_causal_query_blocks_skip_masked_keys_only(monkeypatch, dtype):
    """Causal attention in query blocks (block i reads only the keys up to its last query) gives
    the same logits and gradients as one block over all keys, document-masked or not, and stays SDPA's."""
    import dataengine.trainer.attention as attention

    torch.manual_seed(0)
    eos, seq = 3, 160  # 5 blocks of 32 possible: CAUSAL_BLOCKS of them are used
    model = build_model(model_config("tiny", 120, eos, seq), seed=4)
    inputs = torch.randint(4, 120, (2, seq))
    inputs[0, 50] = inputs[1, 100] = inputs[1, 131] = eos
    for positions in (None, document_position_ids(inputs, eos)):
        use_attention(model, "sdpa")
        ref_logits, ref_grads = _loss_and_grads(model, inputs, positions, dtype)
        use_attention(model, "bmm")
        runs = {}
        for blocks in (1, attention.CAUSAL_BLOCKS):
            monkeypatch.setattr(attention, "CAUSAL_BLOCKS", blocks)
            runs[blocks] = _loss_and_grads(model, inputs, positions, dtype)
        (one, one_grads), (many, many_grads) = runs[1], runs[attention.CAUSAL_BLOCKS]
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        assert (many - one).abs().max().item() <= tol * max(1.0, one.abs().max().item())
        assert (many - ref_logits).abs().max().item() <= 3 * tol * max(1.0, ref_logits.abs().max().item())
        for name, ref in one_grads.items():
            assert ((many_grads[name] - ref).norm() / ref.norm().clamp(min=1e-12)).item() <= tol, name
            rel_sdpa = ((many_grads[name] - ref_grads[name]).norm() / ref_grads[name].norm().clamp(min=1e-12)).item()
            assert rel_sdpa <= (1e-4 if dtype == torch.float32 else 3e-2), name


def test_query_blocks_cover_the_sequence():
    from dataengine.trainer.attention import _query_blocks

    assert _query_blocks(256, 4) == [(0, 64), (64, 128), (128, 192), (192, 256)]
    assert _query_blocks(100, 4) == [(0, 33), (33, 67), (67, 100)]  # at least 32 queries a block
    assert _query_blocks(20, 4) == [(0, 20)]
