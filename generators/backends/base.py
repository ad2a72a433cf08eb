"""One interface for every LLM backend (defined in :mod:`dataengine.core.llm`, re-exported here).

Subclass :class:`Backend` to add one; see docs/generators.md.
"""

from dataengine.core.llm import Backend, BackendParams, GenerationRequest, GenerationResult, ResultHook, SamplingParams

__all__ = ["Backend", "BackendParams", "GenerationRequest", "GenerationResult", "ResultHook", "SamplingParams"]
