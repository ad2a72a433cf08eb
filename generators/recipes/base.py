"""What every recipe shares: a Stage that turns source documents into synthetic rows.

A recipe plans *jobs* (one chat request each: a prompt over a document or a chunk),
sends them through the cached backend in one call per batch, and assembles *units*
(the rows of the synthetic table: e.g. all segments of one document under one prompt,
re-joined) with their post-processing. Rows are never lost to a failure: a unit whose
request failed becomes a row with ``error`` set and ``text`` null.

Output rows carry full provenance (see :data:`SYNTHETIC_SCHEMA` and docs/generators.md).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

import pyarrow as pa
import xxhash
from pydantic import Field

from dataengine.generators.backends import make_backend
from dataengine.generators.backends.base import Backend, GenerationRequest, GenerationResult, ResultHook, SamplingParams
from dataengine.generators.cache import CachedBackend, RequestCache
from dataengine.generators.prompts import PromptTemplate, load_prompt
from dataengine.core.llm import LLMParams
from dataengine.core.stage import Stage

SYNTHETIC_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source_id", pa.string()),
        ("recipe", pa.string()),
        ("recipe_version", pa.string()),
        ("prompt", pa.string()),
        ("prompt_version", pa.string()),
        ("segment_ids", pa.list_(pa.int32())),
        ("model", pa.string()),
        ("backend", pa.string()),
        ("sampling", pa.string()),
        ("seed", pa.int64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("generation_seconds", pa.float64()),
        ("finish_reason", pa.string()),
        ("error", pa.string()),
        ("from_cache", pa.bool_()),
        ("keep", pa.bool_()),
        ("drop_reason", pa.string()),
        ("raw_output", pa.string()),
        ("text", pa.string()),
    ]
)


class RecipeParams(LLMParams):
    id_column: str = "id"
    text_column: str = "text"


@dataclass
class Job:
    """One request: ``unit`` names the output row it belongs to."""

    source_id: str
    unit: tuple
    prompt: PromptTemplate
    segment_id: int
    request: GenerationRequest
    context: dict = field(default_factory=dict)


@dataclass
class UnitOutput:
    text: str | None
    drop_reason: str | None = None


class Recipe(Stage):
    """Base of the recipe stages; subclasses implement :meth:`plan` and :meth:`finish`."""

    recipe: str = ""
    inputs = ("id", "text")  # the defaults of id_column / text_column
    drops_rows = True  # the output rows are synthetic rows, not the input rows
    Params = RecipeParams

    def required_columns(self):
        return (self.params.id_column, self.params.text_column)

    def output_schema(self) -> pa.Schema:
        """The rows this recipe writes: the provenance schema (a recipe may add columns)."""
        return SYNTHETIC_SCHEMA

    def output_columns(self):
        return {f.name: f.type for f in self.output_schema()}

    # -- resources -------------------------------------------------------------------
    def setup(self) -> None:
        p = self.params
        backend = getattr(self, "_injected_backend", None) or make_backend(p.backend, p.model, **p.backend_options)
        cache = RequestCache(p.cache_path) if p.cache_path else None
        self.generator = CachedBackend(backend, cache)
        self.on_result: ResultHook | None = None

    def use_backend(self, backend: Backend) -> None:
        """Run on an already-loaded backend (the driver and benchmarks share one)."""
        self._injected_backend = backend
        self._ready = False

    def prompt(self, name: str) -> PromptTemplate:
        return load_prompt(self.recipe, name, self.params.prompt_version)

    def request(self, template: PromptTemplate, text: str, sampling: SamplingParams | None = None) -> GenerationRequest:
        return GenerationRequest.chat(template.messages(text), sampling or self.params.sampling, self.params.seed)

    def rng(self, *parts) -> random.Random:
        """A random stream fixed by (seed, parts): sub-sampling is deterministic per document."""
        return random.Random(xxhash.xxh64_intdigest("|".join(map(str, (self.params.seed, *parts))).encode()))

    # -- to implement ----------------------------------------------------------------
    def plan(self, batch: pa.Table) -> list[Job]:
        raise NotImplementedError

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        """Post-process one unit's successful results (in segment order) into its text."""
        raise NotImplementedError

    # -- the stage ---------------------------------------------------------------------
    def process(self, batch: pa.Table) -> pa.Table:
        jobs = self.plan(batch)
        results = self.generator.generate([j.request for j in jobs], on_result=self.on_result)
        units: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            units.setdefault(job.unit, []).append(i)
        rows = [self._row([jobs[i] for i in idx], [results[i] for i in idx]) for idx in units.values()]
        return pa.Table.from_pylist(rows, schema=self.output_schema())

    def extra_fields(self, jobs: list[Job], out: UnitOutput) -> dict:
        """Values of the columns a recipe adds to the provenance schema, for one unit."""
        return {}

    def _row(self, jobs: list[Job], results: list[GenerationResult]) -> dict:
        order = sorted(range(len(jobs)), key=lambda k: jobs[k].segment_id)
        jobs, results = [jobs[k] for k in order], [results[k] for k in order]
        first = jobs[0]
        errors = [r.error for r in results if r.error]
        if errors:
            out = UnitOutput(None, "error")
        else:
            try:
                out = self.finish(jobs, results)
            except Exception as exc:  # noqa: BLE001 - a post-processing bug costs one row, recorded
                out = UnitOutput(None, f"postprocess_error: {type(exc).__name__}: {exc}")
        model = self.generator.model_id
        sampling = first.request.sampling.as_json()
        finishes = {r.finish_reason for r in results}
        return {
            "id": xxhash.xxh3_128_hexdigest(
                json.dumps([first.source_id, self.recipe, list(first.unit), first.prompt.version, model, sampling, self.params.seed]).encode()
            ),
            "source_id": first.source_id,
            "recipe": self.recipe,
            "recipe_version": self.version,
            "prompt": first.prompt.name,
            "prompt_version": first.prompt.version,
            "segment_ids": [j.segment_id for j in jobs],
            "model": model,
            "backend": self.params.backend,
            "sampling": sampling,
            "seed": self.params.seed,
            "prompt_tokens": sum(r.prompt_tokens for r in results),
            "completion_tokens": sum(r.completion_tokens for r in results),
            "generation_seconds": sum(r.seconds for r in results),
            "finish_reason": "error" if errors else ("length" if "length" in finishes else "stop"),
            "error": "; ".join(dict.fromkeys(errors)) if errors else None,
            "from_cache": all(r.from_cache for r in results),
            "keep": out.text is not None and out.drop_reason is None,
            "drop_reason": out.drop_reason,
            "raw_output": None if errors else "\n\n".join(r.text or "" for r in results),
            "text": out.text,
            **self.extra_fields(jobs, out),
        }

    def fingerprint(self):
        fp = super().fingerprint()
        fp["params"].pop("cache_path", None)  # where the cache lives does not change the output
        return fp
