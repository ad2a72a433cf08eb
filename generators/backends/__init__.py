"""LLM backends behind one interface; see :mod:`dataengine.generators.backends.base`."""

from __future__ import annotations

from dataengine.errors import PipelineConfigError
from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams

BACKENDS = ("transformers", "http", "vllm")

__all__ = ["Backend", "GenerationRequest", "GenerationResult", "SamplingParams", "make_backend", "BACKENDS"]


def make_backend(kind: str, model: str | None = None, **options) -> Backend:
    """Build a backend by name; heavy imports (torch, vllm, aiohttp) happen on first use."""
    try:
        return _make(kind, model, **options)
    except TypeError as exc:  # an option the backend does not take
        raise PipelineConfigError(f"backend {kind!r}: {exc}") from None


def _make(kind: str, model: str | None, **options) -> Backend:
    if kind == "transformers":
        from dataengine.generators.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model or "smollm2", **options)
    if kind == "http":
        from dataengine.generators.backends.http_backend import HttpBackend

        if not model:
            raise PipelineConfigError("the http backend needs --model: the name the server serves")
        return HttpBackend(model, **options)
    if kind == "vllm":
        from dataengine.generators.backends.vllm_backend import VllmBackend

        return VllmBackend(model or "HuggingFaceTB/SmolLM2-135M-Instruct", **options)
    raise PipelineConfigError(f"unknown backend {kind!r}: use {', '.join(BACKENDS)}")
