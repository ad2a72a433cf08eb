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


def test_bmm_attention_compiles_as_one_graph():
    """`runtime.compile` relies on the bmm attention tracing without graph breaks (a per-head bias
    cache once put 13 of them into a compiled model)."""
    eos = 3
    model = build_model(model_config("tiny", 120, eos, 32), seed=0)
    use_attention(model, "bmm")
    inputs = torch.randint(4, 120, (2, 32))
    inputs[0, 10] = eos

    def logits(x, positions):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(input_ids=x, position_ids=positions, use_cache=False).logits

    torch._dynamo.reset()
    explained = torch._dynamo.explain(logits)(inputs, document_position_ids(inputs, eos))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons[:3]
