"""A tiny random Llama chat model built offline: for tests, the demo and benchmarks.

Its outputs are gibberish; it exists so every code path (chat template, batching, token
counting, serving over HTTP) runs on a real transformers model in seconds on a CPU with
no download. The tokenizer is a byte-level BPE trained by
:func:`dataengine.warehouse.tokenizers.train_tokenizer` with ChatML special tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>"]


def build_tiny_chat_model(
    folder: str | Path,
    texts: Iterable[str] | None = None,
    vocab_size: int = 512,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Write a tiny Llama + tokenizer to ``folder`` (idempotent) and return the folder."""
    folder = Path(folder)
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from dataengine.core.tokenizer import train_tokenizer

    if texts is None:
        texts = _demo_texts()
    raw = train_tokenizer(texts, vocab_size, min_frequency=1)
    raw.add_special_tokens(SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _demo_texts() -> list[str]:
    import gzip
    import json
    from importlib import resources

    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(str(path), "rt") as fh:
        return [json.loads(line)["text"] for line in fh][:200]


def export_gguf(hf_folder: str | Path, out_file: str | Path) -> Path:
    """Write a Llama model folder as an F32 GGUF file (llama.cpp's layout and tokenizer keys).

    Lets the tests exercise the GGUF loading path that the default SmolLM2 model takes,
    in a second instead of the ~40 s that de-quantising SmolLM2 costs on a CPU.
    """
    import json

    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(hf_folder))
    tok = AutoTokenizer.from_pretrained(str(hf_folder))
    cfg = model.config
    writer = gguf.GGUFWriter(str(out_file), "llama")
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(float((getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)))
    writer.add_vocab_size(cfg.vocab_size)

    spec = json.loads(tok.backend_tokenizer.to_str())
    added = {t["content"]: t["id"] for t in spec["added_tokens"]}
    ids = {**spec["model"]["vocab"], **added}
    tokens = [""] * len(ids)
    for token, idx in ids.items():
        tokens[idx] = token
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in added else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in spec["model"]["merges"]])
    writer.add_eos_token_id(tok.eos_token_id)
    writer.add_pad_token_id(tok.pad_token_id)
    writer.add_bos_token_id(tok.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tok.chat_template)

    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    per_layer = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    for name, tensor in model.state_dict().items():
        data = tensor.float().numpy()
        if name in fixed:
            writer.add_tensor(fixed[name], data)
            continue
        parts = name.split(".")  # model.layers.<i>.<module path>.weight
        kind = per_layer[".".join(parts[3:-1])]
        if kind in ("attn_q", "attn_k"):  # llama.cpp's rotary layout; transformers undoes it on load
            heads = cfg.num_attention_heads if kind == "attn_q" else cfg.num_key_value_heads
            data = data.reshape(heads, 2, data.shape[0] // heads // 2, *data.shape[1:]).swapaxes(1, 2).reshape(data.shape)
        writer.add_tensor(f"blk.{parts[2]}.{kind}.weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(out_file)
