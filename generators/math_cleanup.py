"""Stage `math_cleanup`: LLM cleanup of math pages rendered by `math_extract` (Nemotron-CC-Math).

The renderer keeps the whole page (menus, footers, comment boxes) so that no equation
is lost to a main-content heuristic; an LLM then removes the boilerplate with the
paper's instructions: keep every equation as LaTeX, keep code, fix obvious typos, never
answer a question in the text, and reply with a marker when nothing useful is left.
A document is cut into paragraph-aligned chunks within the model's input budget, each
chunk is one request through the generators' backends (transformers, OpenAI-compatible
HTTP, vLLM; cached), and the cleaned chunks are re-joined in order.

Columns (annotate, don't delete): ``math_clean_text`` (null when the model said nothing
useful is left or a request failed) and ``math_clean_status``: ``ok``, ``no_content``
(every chunk came back as the marker), ``error`` or ``no_text``.
"""

from __future__ import annotations


import pyarrow as pa
from pydantic import Field

from dataengine.core.stage import Stage
from dataengine.generators.backends.base import BackendParams

NO_CONTENT_MARKER = "[NO_USEFUL_CONTENT]"

CLEANUP_PROMPT_V1 = """---
name: math_cleanup
version: v1
source: Nemotron-CC-Math (arXiv 2508.15096), LLM cleanup step
system: You clean up text extracted from web pages about mathematics and science.
---
Below is part of a web page converted to text. Rewrite it as clean text:
- Remove boilerplate: navigation menus, headers and footers, ads, share buttons, cookie notices, comment forms, links lists.
- Keep ALL mathematics, written as LaTeX between $...$ (inline) or $$...$$ (display). Do not drop or change any equation.
- Keep code blocks exactly as they are.
- Fix obvious typos and broken formatting, but do not rephrase or summarise.
- Never answer questions or solve problems that appear in the text; only clean it.
- If nothing useful is left, reply with exactly {marker}.
Reply with the cleaned text only.

Text:
{text}"""


class MathCleanupParams(BackendParams):
    max_input_tokens: int = Field(1024, ge=16, description="chunk budget in the model's tokens")
    max_output_tokens: int = Field(1536, ge=1, description="tokens generated per chunk")
    temperature: float = Field(0.0, ge=0, description="0 = greedy (cleanup should not be creative)")
    seed: int = 0
    cache_path: str | None = Field(None, description="request cache file")
    text_column: str = "text"
    output_column: str = Field("math_clean_text", description="where the cleaned text goes")


class MathCleanup(Stage):
    """LLM cleanup (boilerplate out, LaTeX and code kept), chunked by paragraphs, re-joined per document."""

    name = "math_cleanup"
    version = "1"
    description = "Nemotron-CC-Math LLM cleanup of rendered math pages (generators' backends), chunked by paragraph"
    inputs = ("text",)
    Params = MathCleanupParams

    def required_columns(self):
        return (self.params.text_column,)

    def output_columns(self):
        return {self.params.output_column: pa.string(), "math_clean_status": pa.string()}

    def fingerprint(self):
        fp = super().fingerprint()
        fp["params"].pop("cache_path", None)
        fp["prompt"] = "math_cleanup/v1"
        return fp

    def setup(self) -> None:
        from dataengine.generators.backends import make_backend
        from dataengine.generators.cache import CachedBackend, RequestCache
        from dataengine.generators.prompts import parse_prompt_file

        p = self.params
        backend = getattr(self, "_injected_backend", None) or make_backend(p.backend, p.model, **p.backend_options)
        self.generator = CachedBackend(backend, RequestCache(p.cache_path) if p.cache_path else None)
        self.count_tokens = backend.count_tokens
        self.prompt = parse_prompt_file(CLEANUP_PROMPT_V1.replace("{marker}", NO_CONTENT_MARKER), "math_cleanup")

    def use_backend(self, backend) -> None:
        """Run on an already-loaded backend (tests and benchmarks share one)."""
        self._injected_backend = backend
        self._ready = False

    def process(self, batch: pa.Table) -> pa.Table:
        from dataengine.generators.backends.base import GenerationRequest, SamplingParams

        p = self.params
        sampling = SamplingParams(temperature=p.temperature, max_tokens=p.max_output_tokens)
        texts = batch.column(p.text_column).to_pylist()
        chunks_of = [paragraph_chunks(t, self.count_tokens, p.max_input_tokens) if t else [] for t in texts]
        requests = [
            GenerationRequest.chat(self.prompt.messages(chunk), sampling, p.seed) for chunks in chunks_of for chunk in chunks
        ]
        results = iter(self.generator.generate(requests))
        cleaned, statuses = [], []
        for chunks in chunks_of:
            if not chunks:
                cleaned.append(None)
                statuses.append("no_text")
                continue
            outs = [next(results) for _ in chunks]
            text, status = join_cleaned([r.text if r.ok else None for r in outs], any(not r.ok for r in outs))
            cleaned.append(text)
            statuses.append(status)
        out = batch
        for name, values in ((p.output_column, cleaned), ("math_clean_status", statuses)):
            column = pa.array(values, pa.string())
            if name in out.column_names:
                out = out.set_column(out.column_names.index(name), name, column)
            else:
                out = out.append_column(name, column)
        return out


def paragraph_chunks(text: str, count_tokens, max_tokens: int) -> list[str]:
    """Paragraphs (blank-line separated) merged up to ``max_tokens``; a longer paragraph is
    cut on lines (then words) by the generators' chunker, so no chunk exceeds the budget."""
    from dataengine.generators.chunking import split_segments

    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        n = count_tokens(paragraph)
        if n > max_tokens:
            if current:
                chunks.append("\n\n".join(current))
                current, used = [], 0
            chunks.extend(s.text for s in split_segments(paragraph, count_tokens, max_tokens))
            continue
        if current and used + 2 + n > max_tokens:
            chunks.append("\n\n".join(current))
            current, used = [], 0
        current.append(paragraph)
        used += n + (2 if len(current) > 1 else 0)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def join_cleaned(outputs: list[str | None], failed: bool) -> tuple[str | None, str]:
    """Re-join cleaned chunks in order; marker-only chunks are dropped."""
    if failed:
        return None, "error"
    kept = [o.strip() for o in outputs if o and o.strip() and NO_CONTENT_MARKER not in o.strip()[: len(NO_CONTENT_MARKER) + 5]]
    if not kept:
        return None, "no_content"
    return "\n\n".join(kept), "ok"
