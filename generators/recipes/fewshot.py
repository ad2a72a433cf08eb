"""Few-shot generation: a new sample of the same kind as a handful of seed samples.

The generation step of Prismatic Synthesis (Jung et al., 2025): the seeds are samples from
one sparse region of gradient space, and the model is asked for a new sample like them but
on something else. Each input row holds its seeds in a list column (``examples``); each
output row is one new sample. Usable on its own too:

    dataengine generate fewshot --from "SELECT id, [a.text, b.text, c.text] AS examples FROM ..." --to new
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataengine.generators.backends.base import GenerationResult
from dataengine.generators.postprocess import strip_prefixes, word_count
from dataengine.generators.recipes.base import Job, Recipe, RecipeParams, UnitOutput

_EXAMPLE_LABEL = ("new example:", "example:")


class FewShotParams(RecipeParams):
    examples_column: str = Field("examples", description="list column with the seed samples of each request")
    prompt_name: str = Field("new_example", description="prompt template in generators/prompts/fewshot")
    max_example_chars: int = Field(2000, ge=50, description="each seed is cut to this many characters")
    min_output_words: int = Field(5, ge=0, description="shorter outputs are kept with keep = false")


class FewShot(Recipe):
    name = "fewshot"
    recipe = "fewshot"
    version = "1"
    description = "few-shot: one new sample like the seed samples of each row (Prismatic Synthesis' generator)"
    inputs = ("id", "examples")
    Params = FewShotParams

    def required_columns(self):
        return (self.params.id_column, self.params.examples_column)

    def render_examples(self, examples: list[str]) -> str:
        cut = self.params.max_example_chars
        return "\n\n".join(f"Example {i}:\n{e.strip()[:cut]}" for i, e in enumerate(examples, 1))

    def plan(self, batch: pa.Table) -> list[Job]:
        p = self.params
        template = self.prompt(p.prompt_name)
        jobs = []
        for row_id, examples in zip(batch.column(p.id_column).to_pylist(), batch.column(p.examples_column).to_pylist()):
            examples = [e for e in (examples or []) if e]
            if not examples:
                continue
            jobs.append(Job(str(row_id), (str(row_id),), template, 0, self.request(template, self.render_examples(examples))))
        return jobs

    def finish(self, jobs: list[Job], results: list[GenerationResult]) -> UnitOutput:
        text = strip_prefixes(results[0].text or "")
        if text.lower().startswith(_EXAMPLE_LABEL):
            text = text.split(":", 1)[1].strip()
        if word_count(text) < self.params.min_output_words:
            return UnitOutput(text or None, "too_short")
        return UnitOutput(text)
