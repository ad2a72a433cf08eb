"""Rollouts for GRPO: sample completions of prompts from the current policy.

- :class:`TransformersRollout` (CPU, or a GPU without vLLM): ``model.generate`` on the policy
  itself in batches of left-padded prompts, so it always samples from the current weights.
- :class:`VllmRollout` (GPU): TRL's ``VLLMGeneration`` in colocate mode (vLLM in the training
  process, weights pushed into it before each rollout). Imported lazily. Written against TRL
  1.16's API; **not run here: no GPU in this project's CI or development machines.**

Both return each completion's token ids, cut after the first end-of-sequence token (which is
kept: the policy must learn to stop).
"""

from __future__ import annotations

import torch


def _cut_at_eos(ids: list[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    for k, t in enumerate(ids):
        if t in eos_ids:
            return ids[: k + 1]
    if pad_id is not None and pad_id not in eos_ids:
        while ids and ids[-1] == pad_id:
            ids = ids[:-1]
    return ids


def eos_ids(model, tokenizer) -> set[int]:
    ids = model.generation_config.eos_token_id
    out = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        out.add(tokenizer.eos_token_id)
    return out


class TransformersRollout:
    engine = "transformers"

    def __init__(self, model, tokenizer, device, batch_size: int):
        self.model, self.tokenizer, self.device, self.batch_size = model, tokenizer, device, batch_size
        self.eos = eos_ids(model, tokenizer)

    @torch.no_grad()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                 greedy: bool = False) -> list[list[int]]:
        was_training = self.model.training
        self.model.eval()
        pad = self.tokenizer.pad_token_id
        out: list[list[int]] = []
        try:
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                attn = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, p in enumerate(chunk):  # left padding: every prompt ends where generation starts
                    ids[i, width - len(p):] = torch.tensor(p)
                    attn[i, width - len(p):] = 1
                kwargs = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None} if greedy else {
                    "do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": None}
                gen = self.model.generate(input_ids=ids.to(self.device), attention_mask=attn.to(self.device),
                                          max_new_tokens=max_new_tokens, pad_token_id=pad,
                                          eos_token_id=sorted(self.eos), use_cache=True, **kwargs)
                for row in gen[:, width:].tolist():
                    out.append(_cut_at_eos(row, self.eos, pad))
        finally:
            self.model.train(was_training)
        return out


class VllmRollout:
    """vLLM in the training process (TRL's colocate mode); GPU only, unverified here."""

    engine = "vllm"

    def __init__(self, model, tokenizer, model_folder: str, max_new_tokens: int, temperature: float, top_p: float,
                 max_model_len: int):
        from accelerate import Accelerator
        from trl.generation.vllm_generation import VLLMGeneration

        model.name_or_path = model_folder  # vLLM loads the architecture from a folder, then takes our weights
        self.generator = VLLMGeneration(
            model, Accelerator(), tokenizer, mode="colocate", temperature=temperature, top_p=top_p,
            max_completion_length=max_new_tokens, max_model_length=max_model_len, gpu_memory_utilization=0.3)
        self.tokenizer = tokenizer
        self.eos = eos_ids(model, tokenizer)

    def generate(self, prompts: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                 greedy: bool = False) -> list[list[int]]:
        self.generator.sync_weights()  # the policy changed since the last rollout
        self.generator.temperature = 1e-6 if greedy else temperature  # vLLM's greedy is temperature -> 0
        self.generator.max_completion_length = max_new_tokens
        _, completions, _, _ = self.generator.generate(prompts, None, num_generations=1)
        return [_cut_at_eos(list(c), self.eos, self.tokenizer.pad_token_id) for c in completions]


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None
