"""Local generation with transformers (CPU or GPU), batched, for tests and small jobs.

Prompts are rendered with the tokenizer's chat template and left-padded into batches of
similar length. Sampling uses one torch generator seeded per batch from the requests'
seeds, so a batch of the same requests gives the same text on every run; per-request
seeds (as vLLM has them) would need one forward pass per request, which costs the
batching this backend exists for.
"""

from __future__ import annotations

import time
from typing import Sequence

from dataengine.core.errors import StageError
from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, ResultHook
from dataengine.generators.backends.models import DEFAULT_MODEL, resolve_model


class TransformersBackend(Backend):
    kind = "transformers"
    default_model = DEFAULT_MODEL

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 8, device: str | None = None, threads: int | None = None):
        super().__init__(model)
        self.batch_size = batch_size
        self.device = device
        self.threads = threads
        self._model = None
        self._tok = None

    # -- loading ---------------------------------------------------------------------
    def load(self) -> None:
        if self._model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - torch/transformers are core deps
            raise StageError(f"the transformers backend needs torch and transformers: {exc}") from None
        if self.threads:
            torch.set_num_threads(self.threads)
        where = resolve_model(self.model)
        kwargs = {"gguf_file": where.gguf_file} if where.gguf_file else {}
        self._tok = AutoTokenizer.from_pretrained(where.folder, **kwargs)
        self._tok.padding_side = "left"
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        model = AutoModelForCausalLM.from_pretrained(where.folder, **kwargs)
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model = model.to(device).eval()
        self.device = device

    @property
    def tokenizer(self):
        self.load()
        return self._tok

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(self, request: GenerationRequest) -> str:
        """The prompt string the model sees (chat template, generation prompt appended)."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(request.message_dicts(), tokenize=False, add_generation_prompt=True)
        return "\n\n".join(c for _, c in request.messages) + "\n\n"

    # -- generation ------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: ResultHook | None = None) -> list[GenerationResult]:
        self.load()
        results: list[GenerationResult | None] = [None] * len(requests)
        prompts = [self.render(r) for r in requests]
        lengths = [len(p) for p in prompts]
        # Group by sampling parameters (one generate() call takes one setting), then by length.
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.sampling.as_json(), r.seed), []).append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: lengths[i])
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                try:
                    outs = self._generate_batch([prompts[i] for i in batch], requests[batch[0]])
                except Exception as exc:  # noqa: BLE001 - recorded per request, the job goes on
                    outs = [GenerationResult.failed(f"{type(exc).__name__}: {exc}") for _ in batch]
                for i, res in zip(batch, outs):
                    results[i] = res
                    if on_result:
                        on_result(i, res)
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[str], first: GenerationRequest) -> list[GenerationResult]:
        import torch

        sp = first.sampling
        start = time.perf_counter()
        enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        gen_kwargs = {"max_new_tokens": sp.max_tokens, "pad_token_id": self._tok.pad_token_id}
        if sp.temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k or None)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if sp.repetition_penalty != 1.0:
            gen_kwargs["repetition_penalty"] = sp.repetition_penalty
        if sp.stop:
            gen_kwargs.update(stop_strings=list(sp.stop), tokenizer=self._tok)
        torch.manual_seed(first.seed)
        with torch.inference_mode():
            out = self._model.generate(**enc, **gen_kwargs)
        seconds = (time.perf_counter() - start) / len(prompts)
        prompt_len = enc["input_ids"].shape[1]
        eos_ids = _eos_ids(self._model, self._tok)
        results = []
        for row in range(len(prompts)):
            new = out[row, prompt_len:].tolist()
            n_prompt = int(enc["attention_mask"][row].sum())
            finish = "length"
            for k, t in enumerate(new):
                if t in eos_ids:
                    new, finish = new[:k], "stop"
                    break
            text = self._tok.decode(new, skip_special_tokens=True)
            if finish == "length" and sp.stop and any(s in text for s in sp.stop):
                finish = "stop"
            if sp.stop:
                text = _cut_at_stop(text, sp.stop)
            results.append(GenerationResult(text, finish, n_prompt, len(new), seconds))
        return results

    def close(self) -> None:
        self._model = None
        self._tok = None


def _eos_ids(model, tok) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return ids


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return text if cut < 0 else text[:cut]
