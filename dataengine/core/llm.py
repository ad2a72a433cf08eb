"""The LLM request interface every backend and every LLM-using stage shares.

Requests in, one result per request out. A backend never raises for a single bad request:
the failure comes back as a :class:`GenerationResult` with ``error`` set, so a long job
records it as a row and goes on. Only set-up problems (a missing model, a missing package)
raise, before any work.

It lives in the core (not in ``dataengine.generators``) because stages of other plugins
call LLMs too (``translation_quality`` in filters asks for back-translations and a judge
score); the backends themselves stay plugins, found by name through
:data:`dataengine.core.registry.backends`.
"""


from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataengine.core.errors import PipelineConfigError
from dataengine.core.registry import backends, check_backend
from dataengine.core.stage import StageParams


class SamplingParams(BaseModel):
    """Sampling settings shared by every backend. ``temperature=0`` means greedy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0: no top-k cut")
    max_tokens: int = Field(512, ge=1, description="most tokens generated per request")
    repetition_penalty: float = Field(1.0, gt=0)
    stop: tuple[str, ...] = ()

    def as_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat request. ``messages`` are OpenAI-style ``{"role", "content"}`` dicts."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable and JSON-stable
    sampling: SamplingParams
    seed: int = 0

    @classmethod
    def chat(cls, messages: Sequence[dict], sampling: SamplingParams, seed: int = 0) -> "GenerationRequest":
        return cls(tuple((m["role"], m["content"]) for m in messages), sampling, seed)

    def message_dicts(self) -> list[dict]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_key(self, model: str) -> str:
        """sha256 of (model, prompt, sampling parameters, seed): what the request cache is keyed by."""
        payload = json.dumps(
            {"model": model, "messages": self.messages, "params": self.sampling.model_dump(mode="json"), "seed": self.seed},
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class GenerationResult:
    """What came back for one request; ``error`` set means nothing usable came back."""

    text: str | None
    finish_reason: str | None  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    from_cache: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def failed(cls, error: str, seconds: float = 0.0) -> "GenerationResult":
        return cls(text=None, finish_reason="error", seconds=seconds, error=error)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> str:
        return json.dumps(
            {
                "text": self.text,
                "finish_reason": self.finish_reason,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "seconds": self.seconds,
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> "GenerationResult":
        return cls(**json.loads(raw), from_cache=True)


#: Called as each request finishes with (its index in the call, its result): the cache
#: stores results as they arrive and progress bars count tokens with it.
ResultHook = Callable[[int, GenerationResult], None]


class Backend:
    """Base class. Subclasses implement :meth:`generate` and :meth:`count_tokens`."""

    #: The registry name (entry point in ``dataengine.backends``).
    kind: str = ""
    #: The model used when none is given (None: the user must name one).
    default_model: str | None = None

    def __init__(self, model: str):
        self.model = model

    @property
    def model_id(self) -> str:
        """What provenance and cache keys name the model by (stable across runs)."""
        return f"{self.kind}:{self.model}"

    def generate(self, requests: Sequence[GenerationRequest], on_result: ResultHook | None = None) -> list[GenerationResult]:
        """One result per request, in order. Must not raise for per-request failures."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the model's tokenizer (chunking budgets use it)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the model / connections."""


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


class BackendParams(StageParams):
    """The parameters every LLM stage shares: which installed backend, which model, its options."""

    backend: str = Field("transformers", description="an installed LLM backend: transformers, http, vllm, ...")
    model: str | None = Field(None, description="model spec (default: smollm2 for transformers)")
    backend_options: dict = Field(default_factory=dict, description="backend settings, e.g. base_url, concurrency")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str | None) -> str | None:
        return value if value is None else check_backend(value)


class LLMParams(BackendParams):
    """Backend parameters plus what a prompted stage needs: sampling, seed, prompts, the cache."""

    sampling: SamplingParams = Field(default_factory=SamplingParams)
    seed: int = Field(0, description="sampling seed (sent with every request) and sub-sampling seed")
    prompt_version: str = Field("v1", description="version of the prompt template files")
    cache_path: str | None = Field(None, description="request cache file (the CLI uses WAREHOUSE/cache/generate)")
