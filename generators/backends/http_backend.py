"""Any OpenAI-compatible chat-completions server (vLLM serve, TGI, NIM, llama.cpp server...).

Requests run concurrently on one asyncio loop, at most ``concurrency`` in flight. Each
request has a timeout and is retried with exponential backoff (plus jitter) on 429, 5xx,
timeouts and connection errors; other 4xx are not retried (the request itself is wrong).
When the retries run out the request comes back as a result with ``error`` set: a flaky
server costs rows that a re-run fills in from the cache, never a crashed job.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from typing import Sequence

from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, ResultHook

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class HttpBackend(Backend):
    kind = "http"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        tokenizer: str | None = None,
    ):
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.tokenizer_spec = tokenizer
        self._tokenizer = None

    # -- tokens ----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """With ``tokenizer`` (gpt2, a tokenizer.json or an HF folder): exact; else ~1.3 tokens a word."""
        if self.tokenizer_spec is None:
            return math.ceil(len(text.split()) * 1.3)
        if self._tokenizer is None:
            self._tokenizer = _load_counting_tokenizer(self.tokenizer_spec)
        return self._tokenizer(text)

    # -- generation ------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], on_result: ResultHook | None = None) -> list[GenerationResult]:
        if not requests:
            return []
        return asyncio.run(self._generate_all(list(requests), on_result))

    async def _generate_all(self, requests, on_result) -> list[GenerationResult]:
        import aiohttp

        limit = asyncio.Semaphore(self.concurrency)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

            async def one(i: int, req: GenerationRequest) -> GenerationResult:
                async with limit:
                    res = await self._with_retries(session, req)
                if on_result:
                    on_result(i, res)
                return res

            return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))

    def payload(self, req: GenerationRequest) -> dict:
        sp = req.sampling
        body = {
            "model": self.model,
            "messages": req.message_dicts(),
            "max_tokens": sp.max_tokens,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
            "seed": req.seed,
        }
        if sp.top_k:
            body["top_k"] = sp.top_k  # vLLM / TGI extension
        if sp.repetition_penalty != 1.0:
            body["repetition_penalty"] = sp.repetition_penalty
        if sp.stop:
            body["stop"] = list(sp.stop)
        return body

    async def _with_retries(self, session, req: GenerationRequest) -> GenerationResult:
        import aiohttp

        start = time.perf_counter()
        last_error = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            try:
                async with session.post(
                    f"{self.base_url}/chat/completions",
                    json=self.payload(req),
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    if resp.status == 200:
                        body = await resp.json(content_type=None)
                        return _parse_completion(body, time.perf_counter() - start)
                    text = (await resp.text())[:200]
                    last_error = f"HTTP {resp.status}: {text}"
                    if resp.status not in RETRY_STATUS:
                        break
            except asyncio.TimeoutError:
                last_error = f"timeout after {self.timeout:g}s"
            except (aiohttp.ClientError, ConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            except (ValueError, KeyError, IndexError, TypeError) as exc:  # malformed JSON body
                last_error = f"bad response: {type(exc).__name__}: {exc}"
        attempts = attempt + 1
        return GenerationResult.failed(f"{last_error} (after {attempts} attempt(s))", time.perf_counter() - start)


def _parse_completion(body: dict, seconds: float) -> GenerationResult:
    choice = body["choices"][0]
    text = choice["message"]["content"]
    if not isinstance(text, str):
        raise TypeError("message.content is not a string")
    usage = body.get("usage") or {}
    return GenerationResult(
        text=text,
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        seconds=seconds,
    )


def _load_counting_tokenizer(spec: str):
    import os

    if os.path.isdir(spec) and os.path.exists(os.path.join(spec, "tokenizer_config.json")):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec)
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
    from dataengine.core.tokenizer import load_tokenizer_file

    loaded = load_tokenizer_file(spec)
    if loaded is None:
        raise ValueError(f"unknown tokenizer {spec!r}: use gpt2, a tokenizer.json path or a Hugging Face folder")
    return lambda text: len(loaded.encode_batch([text])[0])
