"""What the three CultureGuard steps share: columns, languages, chat rows, provenance.

The steps (``cultural_segregation``, ``cultural_adaptation``, ``translate``) are annotating
stages over rows that each name a target language (``language_column``): the
``dataengine translate`` driver makes those rows, one per (source row, language), and
runs the steps in order on them; ``dataengine run --stage translate:...`` runs a step on
any table that has such rows. Every step writes its output columns, the model and
backend, the ``name@version`` of its prompt, and adds its requests to the row's
accounting (:mod:`dataengine.core.llm_stage`).
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, field_validator

from dataengine.core.languages import language as language_entry
from dataengine.core.llm import SamplingParams, LLMParams
from dataengine.core.llm_stage import LLMStage, set_column
from dataengine.core.prompts import PromptTemplate
from dataengine.generators.conversations import as_turns
from dataengine.generators.prompts import load_prompt

PROVENANCE_COLUMNS = {"model": pa.string(), "backend": pa.string()}


class StepParams(LLMParams):
    sampling: SamplingParams = Field(SamplingParams(temperature=0, max_tokens=1024), description="greedy by default")
    text_column: str = Field("text", description="the sample's text (text rows)")
    messages_column: str | None = Field(None, description="chat rows: a list<struct<role, content>> column instead of text")
    language_column: str = Field("language", description="the target language of each row (ISO 639-1: de, zh, ...)")
    source_language: str = Field("en", description="the language the samples are written in")

    @field_validator("source_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        language_entry(value)
        return value


class TranslationStep(LLMStage):
    """Base of the steps: reading samples and languages, writing provenance."""

    Params = StepParams
    recipe = "cultureguard"
    step = ""  # the name errors are prefixed with

    def required_columns(self):
        p = self.params
        return (p.messages_column or p.text_column, p.language_column)

    def prompt(self, name: str) -> PromptTemplate:
        return load_prompt(self.recipe, name, self.params.prompt_version)

    def samples(self, batch: pa.Table) -> tuple[list[str | None], list[list[dict] | None] | None]:
        """(texts, turns): texts are the text column, or None in chat mode where turns are given."""
        p = self.params
        if p.messages_column:
            turns = [as_turns(v) for v in batch.column(p.messages_column).to_pylist()]
            return [None] * batch.num_rows, turns
        return batch.column(p.text_column).to_pylist(), None

    def languages(self, batch: pa.Table) -> list[str | None]:
        values = batch.column(self.params.language_column).to_pylist()
        for code in set(values) - {None}:
            language_entry(code)  # an unknown language fails the batch with a clear message
        return values

    def with_provenance(self, batch: pa.Table, prompt_column: str, prompt_refs: list[str | None]) -> pa.Table:
        n = batch.num_rows
        batch = set_column(batch, "model", pa.array([self.model_id] * n, pa.string()))
        batch = set_column(batch, "backend", pa.array([self.params.backend] * n, pa.string()))
        return set_column(batch, prompt_column, pa.array(prompt_refs, pa.string()))
