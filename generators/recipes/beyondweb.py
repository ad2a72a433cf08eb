"""BeyondWeb-style rephrasing (arXiv 2508.10975): high-quality seeds into target formats.

The paper's lesson: the gain comes from *information density* and *style diversity*,
not from a bigger generator. The defaults follow it: every document is rephrased into a
format drawn from a mix of six (QA, dialogue, summary, encyclopedic, tutorial, list) so
the corpus gets many styles; the prompts ask for every fact with the filler removed; and
the default generator is the small one of each backend. ``format_mix`` sets the weights,
``formats_per_doc`` how many formats each seed gets.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, field_validator

from dataengine.generators.backends.base import GenerationResult
from dataengine.generators.chunking import join_segments, split_segments
from dataengine.generators.postprocess import clean_output, strip_prefixes, word_count
from dataengine.generators.recipes.base import Job, Recipe, RecipeParams, UnitOutput

FORMATS = ("qa", "dialogue", "summary", "encyclopedic", "tutorial", "list")
DEFAULT_MIX = {"qa": 1.0, "dialogue": 1.0, "summary": 1.0, "encyclopedic": 1.0, "tutorial": 1.0, "list": 1.0}


class BeyondWebParams(RecipeParams):
    format_mix: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_MIX), description="format -> weight")
    formats_per_doc: int = Field(1, ge=1, description="distinct formats drawn per seed document")
    max_input_tokens: int = Field(1024, ge=16)
    min_segment_tokens: int = Field(16, ge=0)
    min_output_words: int = Field(30, ge=0)

    @field_validator("format_mix")
    @classmethod
    def _known_formats(cls, mix: dict[str, float]) -> dict[str, float]:
        unknown = set(mix) - set(FORMATS)
        if unknown:
            raise ValueError(f"unknown format(s) {sorted(unknown)}; known: {', '.join(FORMATS)}")
        if not any(w > 0 for w in mix.values()) or any(w < 0 for w in mix.values()):
            raise ValueError("weights must be >= 0 with at least one > 0")
        return mix


class BeyondWeb(Recipe):
    name = "beyondweb"
    recipe = "beyondweb"
    version = "1"
    description = "BeyondWeb: rephrase seeds into a weighted mix of formats (qa, dialogue, summary, ...)"
    Params = BeyondWebParams

    def formats_for(self, doc_id: str) -> list[str]:
        """Formats for one seed: a weighted draw without replacement, fixed by (seed, doc id)."""
        rng = self.rng(doc_id, "formats")
        pool = {f: w for f, w in self.params.format_mix.items() if w > 0}
        chosen = []
        for _ in range(min(self.params.formats_per_doc, len(pool))):
            names = sorted(pool)
            pick = rng.choices(names, weights=[pool[n] for n in names])[0]
            chosen.append(pick)
            del pool[pick]
        return chosen

    def plan(self, batch: pa.Table) -> list[Job]:
        p = self.params
        jobs = []
        for doc_id, text in zip(batch.column(p.id_column).to_pylist(), batch.column(p.text_column).to_pylist()):
            if not text:
                continue
            segments = split_segments(text, self.generator.count_tokens, p.max_input_tokens, p.min_segment_tokens)
            for fmt in self.formats_for(str(doc_id)):
                template = self.prompt(fmt)
                for seg in segments:
                    jobs.append(Job(str(doc_id), (str(doc_id), fmt), template, seg.segment_id, self.request(template, seg.text)))
        return jobs

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        fmt = jobs[0].prompt.name
        # dialogues keep their speaker lines; other formats lose markdown
        clean = strip_prefixes if fmt == "dialogue" else clean_output
        text = join_segments((j.segment_id, clean(r.text or "")) for j, r in zip(jobs, results))
        if word_count(text) < self.params.min_output_words:
            return UnitOutput(text or None, "too_short")
        return UnitOutput(text)
