"""Nemotron-CC synthetic rephrasing (arXiv 2412.02595), routed by the quality bucket.

Low-quality documents get Wikipedia-style rephrasing (noise removed, knowledge kept);
high-quality documents get the four "diverse" prompts: diverse QA pairs, distill,
extract knowledge, knowledge list. Documents are chunked as in the paper (whole lines
merged up to the input budget, short segments dropped), each segment is one request,
and the outputs are re-joined in segment order into one synthetic document per
(document, prompt). Post-processing per prompt: strip the requested prefix and chatty
preambles and markdown; for QA, parse the pairs, sub-sample them in proportion to the
document's length and append them to the original text; drop outputs under a minimum
length (kept as rows with ``keep = false``: annotate, don't delete).
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataengine.generators.backends.base import GenerationResult
from dataengine.generators.chunking import join_segments, split_segments
from dataengine.generators.postprocess import append_qa, clean_output, parse_qa_pairs, sample_qa_pairs, word_count
from dataengine.generators.recipes.base import Job, Recipe, RecipeParams, UnitOutput

LOW_QUALITY_PROMPTS = ("wikipedia",)
HIGH_QUALITY_PROMPTS = ("diverse_qa", "distill", "extract_knowledge", "knowledge_list")


class NemotronCCParams(RecipeParams):
    quality_column: str | None = Field(
        "quality_bucket", description="numeric quality column to route by; None: every document gets `prompts`"
    )
    threshold: float = Field(12, description="quality >= threshold: high-quality prompts; below: low-quality prompts")
    low_quality_prompts: tuple[str, ...] = LOW_QUALITY_PROMPTS
    high_quality_prompts: tuple[str, ...] = HIGH_QUALITY_PROMPTS
    prompts: tuple[str, ...] | None = Field(None, description="use these prompts for every document (no routing)")
    max_input_tokens: int = Field(512, ge=16, description="segment budget (tokens of the model's tokenizer)")
    min_segment_tokens: int = Field(16, ge=0, description="segments shorter than this are not rephrased")
    min_output_words: int = Field(30, ge=0, description="synthetic documents under this are dropped (keep = false)")
    qa_words_per_pair: int = Field(100, ge=1, description="QA pairs kept: one per this many document words")
    max_qa_pairs: int = Field(8, ge=1)


class NemotronCC(Recipe):
    name = "nemotron_cc"
    recipe = "nemotron_cc"
    version = "1"
    description = "Nemotron-CC rephrasing: wikipedia (low quality), diverse_qa/distill/extract_knowledge/knowledge_list (high)"
    Params = NemotronCCParams

    def required_columns(self):
        cols = super().required_columns()
        if self.params.prompts is None and self.params.quality_column:
            cols += (self.params.quality_column,)
        return cols

    def prompts_for(self, quality) -> tuple[str, ...]:
        """Which prompts a document gets; () for a document without a quality value."""
        p = self.params
        if p.prompts is not None or not p.quality_column:
            return tuple(p.prompts or HIGH_QUALITY_PROMPTS)
        if quality is None:
            return ()
        try:
            value = float(quality)
        except (TypeError, ValueError):
            return ()
        return p.high_quality_prompts if value >= p.threshold else p.low_quality_prompts

    def plan(self, batch: pa.Table) -> list[Job]:
        p = self.params
        ids = batch.column(p.id_column).to_pylist()
        texts = batch.column(p.text_column).to_pylist()
        routed = p.prompts is None and p.quality_column
        qualities = batch.column(p.quality_column).to_pylist() if routed else [None] * len(ids)
        jobs = []
        for doc_id, text, quality in zip(ids, texts, qualities):
            names = self.prompts_for(quality)
            if not text or not names:
                continue
            segments = split_segments(text, self.generator.count_tokens, p.max_input_tokens, p.min_segment_tokens)
            for name in names:
                template = self.prompt(name)
                for seg in segments:
                    jobs.append(
                        Job(str(doc_id), (str(doc_id), name), template, seg.segment_id, self.request(template, seg.text),
                            {"document": text})
                    )
        return jobs

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        p = self.params
        name = jobs[0].prompt.name
        document = jobs[0].context["document"]
        if name == "diverse_qa":
            pairs = [pair for r in results for pair in parse_qa_pairs(r.text or "")]
            rng = self.rng(jobs[0].source_id, name)
            chosen = sample_qa_pairs(pairs, word_count(document), p.qa_words_per_pair, p.max_qa_pairs, rng)
            if not chosen:
                return UnitOutput(None, "no_qa_pairs")
            return UnitOutput(append_qa(document, chosen))
        text = join_segments((j.segment_id, clean_output(r.text or "")) for j, r in zip(jobs, results))
        if word_count(text) < p.min_output_words:
            return UnitOutput(text or None, "too_short")
        return UnitOutput(text)
