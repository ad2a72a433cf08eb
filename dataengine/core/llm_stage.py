"""Annotating stages that call an LLM: one cached backend, and per-row accounting.

Used by the translation steps (generators) and by ``translation_quality`` (filters), which
add columns to the rows they are given rather than making new rows (the recipes of
``dataengine generate`` make new rows: :mod:`dataengine.generators.recipes.base`).

Every row carries the same accounting columns, which each LLM step adds to: requests
sent, prompt and completion tokens, seconds, whether every answer came from the request
cache, and the first error. A row whose earlier step failed is skipped by later steps (its
outputs stay null) and keeps the error that stopped it; a re-run sends only the failed
requests, because successes are in the request cache.
"""

from __future__ import annotations

import pyarrow as pa

from dataengine.core.llm import Backend, GenerationRequest, GenerationResult, LLMParams, ResultHook, make_backend
from dataengine.core.llm_cache import CachedBackend, RequestCache
from dataengine.core.stage import Stage

ACCOUNTING_COLUMNS: dict[str, pa.DataType] = {
    "llm_requests": pa.int32(),
    "prompt_tokens": pa.int64(),
    "completion_tokens": pa.int64(),
    "generation_seconds": pa.float64(),
    "from_cache": pa.bool_(),
    "error": pa.string(),
}


class RowLedger:
    """Accounting of one batch's rows, continuing what earlier steps wrote."""

    def __init__(self, batch: pa.Table):
        n = batch.num_rows

        def existing(name, default):
            if name in batch.column_names:
                return [default if v is None else v for v in batch.column(name).to_pylist()]
            return [default] * n

        self.requests = existing("llm_requests", 0)
        self.prompt_tokens = existing("prompt_tokens", 0)
        self.completion_tokens = existing("completion_tokens", 0)
        self.seconds = existing("generation_seconds", 0.0)
        self.from_cache = batch.column("from_cache").to_pylist() if "from_cache" in batch.column_names else [None] * n
        self.errors = batch.column("error").to_pylist() if "error" in batch.column_names else [None] * n

    def failed(self, row: int) -> bool:
        return self.errors[row] is not None

    def add(self, row: int, step: str, result: GenerationResult) -> None:
        self.requests[row] += 1
        self.prompt_tokens[row] += result.prompt_tokens
        self.completion_tokens[row] += result.completion_tokens
        self.seconds[row] += result.seconds
        before = self.from_cache[row]
        self.from_cache[row] = (True if before is None else before) and result.from_cache
        if result.error and self.errors[row] is None:
            self.errors[row] = f"{step}: {result.error}"

    def fail(self, row: int, step: str, reason: str) -> None:
        """A content failure (an answer that cannot be used), recorded like a request error."""
        if self.errors[row] is None:
            self.errors[row] = f"{step}: {reason}"

    def apply(self, batch: pa.Table) -> pa.Table:
        values = {
            "llm_requests": self.requests, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "generation_seconds": self.seconds,
            "from_cache": self.from_cache, "error": self.errors,
        }
        for name, dtype in ACCOUNTING_COLUMNS.items():
            batch = set_column(batch, name, pa.array(values[name], type=dtype))
        return batch


def set_column(batch: pa.Table, name: str, column) -> pa.Table:
    """Replace ``name`` if it exists, else append it."""
    if name in batch.column_names:
        return batch.set_column(batch.column_names.index(name), name, column)
    return batch.append_column(name, column)


class LLMStage(Stage):
    """Base class: a stage that sends chat requests through one cached backend."""

    Params = LLMParams

    def setup(self) -> None:
        p = self.params
        self.generator: CachedBackend | None = None
        self.on_result: ResultHook | None = None
        backend = getattr(self, "_injected_backend", None)
        if backend is None and p.backend is not None:
            backend = make_backend(p.backend, p.model, **p.backend_options)
        if backend is not None:
            cache = RequestCache(p.cache_path) if p.cache_path else None
            self.generator = CachedBackend(backend, cache)

    def use_backend(self, backend: Backend) -> None:
        """Run on an already-loaded backend (a driver shares one model between its steps)."""
        self._injected_backend = backend
        self._ready = False

    @property
    def model_id(self) -> str | None:
        return self.generator.model_id if self.generator is not None else None

    def ask(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        """One result per request, in order (cache first; identical requests sent once)."""
        if not requests:
            return []
        return self.generator.generate(requests, on_result=self.on_result)

    def accounting_columns(self) -> dict[str, pa.DataType]:
        return dict(ACCOUNTING_COLUMNS)

    def fingerprint(self):
        fp = super().fingerprint()
        fp["params"].pop("cache_path", None)  # where the cache lives does not change the output
        return fp
