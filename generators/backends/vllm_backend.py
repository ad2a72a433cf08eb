"""vLLM offline engine (``pip install dataengine[vllm]``, CUDA GPU). Imported lazily.

All prompts of a call go to ``LLM.generate`` at once so vLLM's continuous batching sees
the whole workload; each request keeps its own seed (``SamplingParams(seed=...)``).
Not exercised by the CPU test suite (no GPU there); see docs/generators.md.
"""

from __future__ import annotations

import time
from typing import Sequence

from dataengine.core.errors import StageError
from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, ResultHook
from dataengine.generators.backends.models import resolve_model


class VllmBackend(Backend):
    kind = "vllm"
    default_model = "HuggingFaceTB/SmolLM2-135M-Instruct"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        dtype: str = "auto",
    ):
        super().__init__(model)
        self.engine_args = {
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "dtype": dtype,
        }
        if max_model_len:
            self.engine_args["max_model_len"] = max_model_len
        self._llm = None

    def load(self) -> None:
        if self._llm is not None:
            return
        try:
            from vllm import LLM
        except ImportError:
            raise StageError("the vllm backend needs vLLM on a CUDA machine: pip install 'dataengine[vllm]'") from None
        where = resolve_model(self.model) if self.model == "smollm2" or "/" in self.model else None
        if where is not None and where.gguf_file:
            import os

            self._llm = LLM(model=os.path.join(where.folder, where.gguf_file), **self.engine_args)
        else:
            self._llm = LLM(model=where.folder if where else self.model, **self.engine_args)

    @property
    def tokenizer(self):
        self.load()
        return self._llm.get_tokenizer()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def generate(self, requests: Sequence[GenerationRequest], on_result: ResultHook | None = None) -> list[GenerationResult]:
        from vllm import SamplingParams as VllmSampling

        self.load()
        tok = self.tokenizer
        prompts = [tok.apply_chat_template(r.message_dicts(), tokenize=False, add_generation_prompt=True) for r in requests]
        params = [
            VllmSampling(
                n=1,
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                top_k=r.sampling.top_k or -1,
                max_tokens=r.sampling.max_tokens,
                repetition_penalty=r.sampling.repetition_penalty,
                stop=list(r.sampling.stop) or None,
                seed=r.seed,
            )
            for r in requests
        ]
        start = time.perf_counter()
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001 - the whole call failed: record it on every request
            return [GenerationResult.failed(f"{type(exc).__name__}: {exc}") for _ in requests]
        seconds = (time.perf_counter() - start) / max(1, len(requests))
        results = []
        for i, out in enumerate(outputs):
            best = out.outputs[0]
            res = GenerationResult(
                text=best.text,
                finish_reason=best.finish_reason or "stop",
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=len(best.token_ids),
                seconds=seconds,
            )
            results.append(res)
            if on_result:
                on_result(i, res)
        return results

    def close(self) -> None:
        self._llm = None
