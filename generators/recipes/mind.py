"""MIND math dialogues (arXiv 2410.12881): seven conversation styles over ~500-token chunks.

Each math document is cut into chunks of about ``chunk_tokens`` (whole lines, as in
:mod:`dataengine.generators.chunking`); each chunk is rewritten as a conversation in one or more of
the seven styles. Generations that are too short or are not dialogues are kept as rows
with ``keep = false`` (:func:`dataengine.generators.postprocess.mind_filter`). ``mix_raw`` puts the
raw chunk before the conversation, which the paper found better than either alone.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import Field

from dataengine.generators.backends.base import GenerationResult
from dataengine.generators.chunking import split_segments
from dataengine.generators.postprocess import mind_filter, strip_prefixes
from dataengine.generators.recipes.base import Job, Recipe, RecipeParams, UnitOutput

STYLES = (
    "two_professors",
    "teacher_student",
    "two_students",
    "interview",
    "problem_solving",
    "layman_knowall",
    "debate",
)


class MindParams(RecipeParams):
    styles: tuple[str, ...] = Field(STYLES, description="conversation styles to generate")
    styles_per_chunk: int = Field(1, ge=1, description="styles per chunk, picked by a seeded draw (all: len(styles))")
    chunk_tokens: int = Field(500, ge=16, description="chunk budget in tokens (the paper: ~500)")
    min_chunk_tokens: int = Field(32, ge=0)
    min_words: int = Field(50, ge=0, description="dialogues shorter than this are dropped")
    min_turns: int = Field(4, ge=1, description="dialogues with fewer speaker turns are dropped")
    mix_raw: Literal["none", "prepend"] = Field("none", description="prepend: raw chunk + dialogue in one row")


class Mind(Recipe):
    name = "mind"
    recipe = "mind"
    version = "1"
    description = "MIND: math documents as seven styles of multi-turn conversation"
    Params = MindParams

    def styles_for(self, doc_id: str, segment_id: int) -> list[str]:
        styles = list(self.params.styles)
        k = min(self.params.styles_per_chunk, len(styles))
        if k == len(styles):
            return styles
        return sorted(self.rng(doc_id, segment_id).sample(styles, k), key=styles.index)

    def plan(self, batch: pa.Table) -> list[Job]:
        p = self.params
        jobs = []
        for doc_id, text in zip(batch.column(p.id_column).to_pylist(), batch.column(p.text_column).to_pylist()):
            if not text:
                continue
            for seg in split_segments(text, self.generator.count_tokens, p.chunk_tokens, p.min_chunk_tokens):
                for style in self.styles_for(str(doc_id), seg.segment_id):
                    template = self.prompt(style)
                    jobs.append(
                        Job(str(doc_id), (str(doc_id), style, seg.segment_id), template, seg.segment_id,
                            self.request(template, seg.text), {"chunk": seg.text})
                    )
        return jobs

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        p = self.params
        dialogue = strip_prefixes(results[0].text or "")
        reason = mind_filter(dialogue, p.min_words, p.min_turns)
        text = dialogue
        if p.mix_raw == "prepend":
            text = jobs[0].context["chunk"].strip() + "\n\n" + dialogue
        return UnitOutput(text or None, reason)
