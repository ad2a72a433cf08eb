"""CultureGuard's first two steps (NVIDIA, 2025): cultural segregation, then adaptation.

*Segregation* asks the model, per sample and target culture, whether the sample is
culture-specific (local names, places, laws, customs, currencies, units, holidays...) or
culture-agnostic, with its reason. *Adaptation* rewrites the culture-specific samples for
the target culture, still in the source language, keeping intent, category and label (the
row's label columns are shown to the model and copied unchanged); agnostic samples pass
through as they are. Translation (:mod:`dataengine.generators.recipes.translate`) follows.

Code, URLs, placeholders and math are masked before adaptation and restored after it
(:mod:`dataengine.core.protected_spans`); an adaptation that loses one of them, or that
changes the turns of a conversation, is recorded as the row's error rather than used.
"""

from __future__ import annotations

import re

import pyarrow as pa
from pydantic import Field

from dataengine.core.llm import GenerationRequest, SamplingParams
from dataengine.core.llm_stage import RowLedger, set_column
from dataengine.core.protected_spans import protect
from dataengine.core.translation import clean_answer, language_fields
from dataengine.generators.conversations import MESSAGES_TYPE, joined_contents, parse_turns, render_turns
from dataengine.generators.recipes.translation_steps import PROVENANCE_COLUMNS, StepParams, TranslationStep

_LABEL = re.compile(r"label\W{0,6}(?:culture[\s_-]*)?(specific|agnostic)", re.IGNORECASE)
_ANY = re.compile(r"\b(?:culture[\s_-]*)?(specific|agnostic)\b", re.IGNORECASE)
_REASON = re.compile(r"reason\W{0,6}(.+)", re.IGNORECASE | re.DOTALL)


def parse_segregation(answer: str) -> tuple[bool | None, str | None]:
    """(culture_specific, reason) from the model's answer; (None, note) when there is no label."""
    found = _LABEL.search(answer) or _ANY.search(answer)
    reason = _REASON.search(answer)
    reason_text = reason.group(1).strip().split("\n\n")[0].strip()[:500] if reason else None
    if not found:
        return None, "unparsed answer: " + " ".join(answer.split())[:200]
    return found.group(1).lower() == "specific", reason_text


class SegregationParams(StepParams):
    sampling: SamplingParams = Field(SamplingParams(temperature=0, max_tokens=128), description="greedy, a short answer")


class CulturalSegregation(TranslationStep):
    """Tags each (sample, target culture) row as culture-specific or agnostic, with the reason."""

    name = "cultural_segregation"
    version = "1"
    step = "segregation"
    description = "CultureGuard step 1: culture-specific or culture-agnostic per target culture, with the reason"
    Params = SegregationParams

    def output_columns(self):
        return {"culture_specific": pa.bool_(), "culture_reason": pa.string(), "segregation_prompt": pa.string(),
                **PROVENANCE_COLUMNS, **self.accounting_columns()}

    def process(self, batch: pa.Table) -> pa.Table:
        p = self.params
        template = self.prompt("segregation")
        texts, turns = self.samples(batch)
        langs = self.languages(batch)
        ledger = RowLedger(batch)
        rows, requests = [], []
        for i in range(batch.num_rows):
            text = render_turns(turns[i]) if turns is not None and turns[i] is not None else texts[i]
            if ledger.failed(i) or not text or not text.strip() or langs[i] is None:
                continue
            fields = language_fields(p.source_language, langs[i])
            rows.append(i)
            requests.append(GenerationRequest.chat(template.messages(text, **fields), p.sampling, p.seed))
        specific: list[bool | None] = [None] * batch.num_rows
        reasons: list[str | None] = [None] * batch.num_rows
        refs: list[str | None] = [None] * batch.num_rows
        for i, res in zip(rows, self.ask(requests)):
            ledger.add(i, self.step, res)
            refs[i] = template.ref
            if res.ok:
                specific[i], reasons[i] = parse_segregation(res.text or "")
        out = set_column(batch, "culture_specific", pa.array(specific, pa.bool_()))
        out = set_column(out, "culture_reason", pa.array(reasons, pa.string()))
        return ledger.apply(self.with_provenance(out, "segregation_prompt", refs))


class AdaptationParams(StepParams):
    culture_column: str = Field("culture_specific", description="bool column from cultural_segregation")
    label_columns: list[str] = Field(default_factory=list, description="columns shown to the model as the label to keep")
    output_column: str = Field("adapted_text", description="the adapted sample (text rows; joined turns for chat rows)")
    messages_output_column: str = Field("adapted_messages", description="chat rows: the adapted conversation")


class CulturalAdaptation(TranslationStep):
    """Rewrites culture-specific samples for the target culture; agnostic ones pass through."""

    name = "cultural_adaptation"
    version = "1"
    step = "adaptation"
    description = "CultureGuard step 2: culture-specific samples rewritten for the target culture (intent and label kept)"
    Params = AdaptationParams

    def required_columns(self):
        return super().required_columns() + (self.params.culture_column, *self.params.label_columns)

    def output_columns(self):
        p = self.params
        return {"adaptation": pa.string(), p.output_column: pa.string(), p.messages_output_column: MESSAGES_TYPE,
                "adaptation_prompt": pa.string(), **PROVENANCE_COLUMNS, **self.accounting_columns()}

    def label_note(self, batch: pa.Table, row: int) -> str:
        parts = [f"{c}: {batch.column(c)[row].as_py()}" for c in self.params.label_columns
                 if batch.column(c)[row].as_py() is not None]
        return f" ({'; '.join(parts)})" if parts else ""

    def process(self, batch: pa.Table) -> pa.Table:
        p = self.params
        template = self.prompt("adaptation")
        texts, turns = self.samples(batch)
        langs = self.languages(batch)
        culture = batch.column(p.culture_column).to_pylist()
        ledger = RowLedger(batch)
        n = batch.num_rows
        status: list[str | None] = [None] * n
        adapted: list[str | None] = [None] * n
        adapted_turns: list[list[dict] | None] = [None] * n
        refs: list[str | None] = [None] * n
        asked, requests, masks = [], [], []
        for i in range(n):
            sample = render_turns(turns[i]) if turns is not None and turns[i] is not None else texts[i]
            if ledger.failed(i) or sample is None or langs[i] is None:
                continue
            if culture[i] is not True:  # agnostic, or the classifier's answer had no label
                status[i] = "agnostic" if culture[i] is False else "unclassified"
                adapted[i] = texts[i] if turns is None else joined_contents(turns[i])
                adapted_turns[i] = None if turns is None else turns[i]
                continue
            protected = protect(sample)
            fields = language_fields(p.source_language, langs[i]) | {"labels": self.label_note(batch, i)}
            asked.append(i)
            masks.append(protected)
            requests.append(GenerationRequest.chat(template.messages(protected.masked, **fields), p.sampling, p.seed))
        for i, protected, res in zip(asked, masks, self.ask(requests)):
            ledger.add(i, self.step, res)
            refs[i] = template.ref
            if not res.ok:
                continue
            restored = protected.restore(clean_answer(res.text or "", protected.masked))
            if not restored.ok:
                status[i] = "failed"
                ledger.fail(i, self.step, f"protected spans lost or repeated (missing {list(restored.missing)})")
                continue
            if turns is not None:
                try:
                    adapted_turns[i] = parse_turns(restored.text, turns[i])
                except ValueError as exc:
                    status[i] = "failed"
                    ledger.fail(i, self.step, str(exc))
                    continue
                adapted[i] = joined_contents(adapted_turns[i])
            else:
                adapted[i] = restored.text
            status[i] = "adapted"
        out = set_column(batch, "adaptation", pa.array(status, pa.string()))
        out = set_column(out, p.output_column, pa.array(adapted, pa.string()))
        out = set_column(out, p.messages_output_column, pa.array(adapted_turns, MESSAGES_TYPE))
        return ledger.apply(self.with_provenance(out, "adaptation_prompt", refs))
