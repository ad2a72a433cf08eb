"""A tiny random Llama chat model built offline: for tests, the demo and benchmarks.

Its outputs are gibberish; it exists so every code path (chat template, batching, token
counting, serving over HTTP) runs on a real transformers model in seconds on a CPU with
no download. The tokenizer is a byte-level BPE trained by
:func:`warehouse.tokenizers.train_tokenizer` with ChatML special tokens.
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

    from warehouse.tokenizers import train_tokenizer

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
