"""CultureGuard's third step: machine translation into each row's target language.

Any backend (transformers, http, vllm) through the request cache. Code, URLs, placeholders
and math are masked with markers and restored byte for byte wherever the model put the
markers (:mod:`dataengine.core.translation`); a long text is translated in paragraph
chunks. Chat rows are translated turn by turn, each turn its own request, roles kept.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from dataengine.core.llm_stage import RowLedger, set_column
from dataengine.core.translation import PlannedText, finish_text, plan_text, translation_prompt
from dataengine.generators.conversations import MESSAGES_TYPE, joined_contents
from dataengine.generators.recipes.translation_steps import PROVENANCE_COLUMNS, StepParams, TranslationStep


class TranslateParams(StepParams):
    output_column: str = Field("translation", description="the translated text (chat rows: the turns joined)")
    messages_output_column: str = Field("translated_messages", description="chat rows: the translated conversation")
    max_chunk_chars: int = Field(4000, ge=200, description="longer texts are translated in paragraph chunks of this size")


class Translate(TranslationStep):
    """Translates each row's text (or each turn of its conversation) into the row's language."""

    name = "translate"
    version = "1"
    step = "translation"
    description = "CultureGuard step 3: LLM translation per row language; code/URLs/math/placeholders kept verbatim"
    Params = TranslateParams

    def output_columns(self):
        p = self.params
        return {p.output_column: pa.string(), p.messages_output_column: MESSAGES_TYPE, "translation_prompt": pa.string(),
                **PROVENANCE_COLUMNS, **self.accounting_columns()}

    def process(self, batch: pa.Table) -> pa.Table:
        p = self.params
        template = translation_prompt("translate", p.prompt_version)
        texts, turns = self.samples(batch)
        langs = self.languages(batch)
        ledger = RowLedger(batch)
        n = batch.num_rows
        # plans[i]: one PlannedText per text (a text row) or per turn (a chat row)
        plans: dict[int, list[PlannedText]] = {}
        requests = []
        for i in range(n):
            pieces = [texts[i]] if turns is None else ([t["content"] for t in turns[i]] if turns[i] is not None else None)
            if ledger.failed(i) or langs[i] is None or pieces is None or any(x is None for x in pieces):
                continue
            plans[i] = [plan_text(x, template, p.source_language, langs[i], p.sampling, p.seed, p.max_chunk_chars)
                        for x in pieces]
            requests.extend(r for plan in plans[i] for r in plan.requests)
        results = iter(self.ask(requests))
        translated: list[str | None] = [None] * n
        translated_turns: list[list[dict] | None] = [None] * n
        refs: list[str | None] = [None] * n
        for i, row_plans in plans.items():
            outs = []
            for plan in row_plans:
                answers = [next(results) for _ in plan.requests]
                for res in answers:
                    ledger.add(i, self.step, res)
                outs.append(finish_text(plan, answers))
            if any(r.requests for r in row_plans):
                refs[i] = template.ref
            if any(o.text is None for o in outs):
                continue  # the request error is in the ledger
            if turns is None:
                translated[i] = outs[0].text
            else:
                translated_turns[i] = [{"role": t["role"], "content": o.text} for t, o in zip(turns[i], outs)]
                translated[i] = joined_contents(translated_turns[i])
        out = set_column(batch, p.output_column, pa.array(translated, pa.string()))
        out = set_column(out, p.messages_output_column, pa.array(translated_turns, MESSAGES_TYPE))
        return ledger.apply(self.with_provenance(out, "translation_prompt", refs))
