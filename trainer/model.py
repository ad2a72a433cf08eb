"""Llama-style decoder built from a transformers config, so checkpoints load in transformers and vLLM.

We use ``LlamaForCausalLM`` as it is (no model code of our own): presets only pick sizes.
FLOPs per token follow the PaLM paper's appendix B (6 N + 12 L H T), the usual basis of MFU.
"""

from __future__ import annotations

from dataengine.core.errors import DataEngineError

# Sizes only; every other LlamaConfig field keeps the transformers default.
PRESETS: dict[str, dict] = {
    # tests and the demo: trains in seconds on one CPU core
    "tiny": dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, tie_word_embeddings=True),
    # CPU benchmarks
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=4, tie_word_embeddings=True),
    # GPT-2-small scale (~124M parameters with a 50k vocabulary): the GPU MFU benchmark
    "124m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=12, tie_word_embeddings=True),
    # Llama-3.2-1B shape
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, tie_word_embeddings=True),
}

# Dense bf16 peak FLOP/s by GPU name substring, for MFU.
GPU_PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def padded_vocab(vocab_size: int, multiple: int = 64) -> int:
    """Embedding rows rounded up: matmuls on GPUs are faster on multiples of 64; unused rows are never targets."""
    return -(-vocab_size // multiple) * multiple


def model_config(preset: str, vocab_size: int, eos_id: int, seq_len: int, overrides: dict | None = None):
    from transformers import LlamaConfig

    if preset not in PRESETS:
        raise DataEngineError(f"unknown model preset {preset!r}: choose one of {', '.join(PRESETS)}")
    fields = {**PRESETS[preset], **(overrides or {})}
    return LlamaConfig(
        vocab_size=padded_vocab(vocab_size),
        max_position_embeddings=seq_len,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
        attn_implementation="sdpa",
        **fields,
    )


def build_model(config, seed: int = 0):
    """A freshly initialised model; the same seed gives the same weights on every rank."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def matmul_params(model) -> int:
    """Parameters that take part in a matmul per token (the input embedding lookup does not; a tied head does)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    return total - embed + (embed if model.config.tie_word_embeddings else 0)


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6 N (forward + backward of the matmuls) + 12 L H T (attention scores)."""
    cfg = model.config
    return 6 * matmul_params(model) + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def gpu_peak_flops(device) -> float | None:
    """Dense bf16 peak of the CUDA device, or None when unknown (then MFU is not reported)."""
    import torch

    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in GPU_PEAK_BF16.items() if k in name), None)
