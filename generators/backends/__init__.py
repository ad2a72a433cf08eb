"""LLM backends behind one interface; see :mod:`dataengine.generators.backends.base`.

Backends are plugins (entry-point group ``dataengine.backends``): ``transformers`` (CPU/GPU,
tests), ``http`` (any OpenAI-compatible server) and ``vllm`` (offline GPU engine) are the
built-ins; another package can add its own.
"""

from __future__ import annotations

from dataengine.core.errors import PipelineConfigError
from dataengine.core.registry import backends
from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, SamplingParams

__all__ = ["Backend", "GenerationRequest", "GenerationResult", "SamplingParams", "make_backend"]


def make_backend(kind: str, model: str | None = None, **options) -> Backend:
    """Build a backend by name; heavy imports (torch, vllm, aiohttp) happen on first use."""
    cls = backends.get(kind)
    model = model or cls.default_model
    if not model:
        raise PipelineConfigError(f"the {kind} backend needs --model: the name the server serves")
    try:
        return cls(model, **options)
    except TypeError as exc:  # an option the backend does not take
        raise PipelineConfigError(f"backend {kind!r}: {exc}") from None
