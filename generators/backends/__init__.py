"""LLM backends behind one interface; see :mod:`dataengine.core.llm`.

Backends are plugins (entry-point group ``dataengine.backends``): ``transformers`` (CPU/GPU,
tests), ``http`` (any OpenAI-compatible server) and ``vllm`` (offline GPU engine) are the
built-ins; another package can add its own.
"""

from __future__ import annotations

from dataengine.core.llm import Backend, GenerationRequest, GenerationResult, SamplingParams, make_backend

__all__ = ["Backend", "GenerationRequest", "GenerationResult", "SamplingParams", "make_backend"]
