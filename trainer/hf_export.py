"""The trained model as a Hugging Face folder (``save_pretrained`` + tokenizer).

transformers' ``AutoModelForCausalLM`` / ``AutoTokenizer`` and vLLM load the folder as is.
"""

from __future__ import annotations

from pathlib import Path

EOS_TOKEN = "<|endoftext|>"


def hf_tokenizer(tokenizer, eos_id: int, max_length: int):
    """Wrap a `tokenizers.Tokenizer` as a transformers fast tokenizer with its EOS token set."""
    from transformers import PreTrainedTokenizerFast

    eos = tokenizer.id_to_token(eos_id)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=eos, bos_token=eos, pad_token=eos,
                                   unk_token=None, model_max_length=max_length)


def save_hf_folder(folder: Path, model_config, state_dict: dict, tokenizer, eos_id: int) -> Path:
    """Write config, safetensors weights, generation config and tokenizer into ``folder``."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Writing model shards" bar per save is noise in our logs

    with torch.device("meta"):
        model = LlamaForCausalLM(model_config)
    model.load_state_dict(state_dict, assign=True)
    model.tie_weights()
    model.generation_config = GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    hf_tokenizer(tokenizer, eos_id, model_config.max_position_embeddings).save_pretrained(folder)
    return folder
