"""Stage ``translation_quality``: every signal of a translation's quality as a column.

Runs on any table with a source text column, a translation column and a target-language
column (``source_column``, ``text_column``, ``language_column``), so translations made
elsewhere can be checked too. Annotate, don't delete: each signal is a column and
``translation_keep`` says whether all configured thresholds pass; SQL decides.

| column | signal |
|---|---|
| ``translation_lang``, ``translation_lang_ok`` | language of the output by the project's ``langid`` stage (lid.176 + py3langid), protected spans left out; ok = the target |
| ``translation_length_ratio``, ``translation_length_ok`` | output/source characters, inside the target language's expected range (:mod:`dataengine.core.languages`) |
| ``translation_untranslated_frac`` | share of the source's word 4-grams copied verbatim (protected spans left out) |
| ``translation_spans_ok`` | every code block, URL, placeholder and formula of the source is in the output byte for byte |
| ``translation_backtranslation`` | the output translated back into the source language (LLM, or ``back_translation_column``) |
| ``translation_backsim``, ``translation_backsim_chrf`` | MiniLM cosine and sacrebleu chrF of the back-translation against the source |
| ``translation_judge``, ``translation_judge_reason`` | an LLM judge's 1-5 score and reason (``judge=true``) |
| ``translation_label``, ``translation_label_ok`` | a classifier's label for the output equals the row's label (``label_classifier``) |
| ``translation_keep`` | no error and every configured threshold passes |

The LLM calls (back-translation, judge) go through the request cache like the recipes,
and add to the row's accounting columns (``llm_requests``, tokens, ``error``).
"""

from __future__ import annotations

import os
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from dataengine.core.errors import StageError
from dataengine.core.label_models import label_predictor
from dataengine.core.languages import base_code, expected_length_range, language as language_entry
from dataengine.core.llm import GenerationRequest, LLMParams, SamplingParams
from dataengine.core.llm_stage import LLMStage, RowLedger, set_column
from dataengine.core.models import is_model_reference
from dataengine.core.protected_spans import strip_spans
from dataengine.core.translation import finish_text, language_fields, plan_text, translation_prompt
from dataengine.filters.langid import LangId
from dataengine.filters.translation_signals import (
    MINILM, Embedder, chrf, length_ratio, parse_judge, spans_kept, untranslated_fraction,
)

SIGNAL_COLUMNS: dict[str, pa.DataType] = {
    "translation_lang": pa.string(),
    "translation_lang_ok": pa.bool_(),
    "translation_length_ratio": pa.float32(),
    "translation_length_ok": pa.bool_(),
    "translation_untranslated_frac": pa.float32(),
    "translation_spans_ok": pa.bool_(),
    "translation_backtranslation": pa.string(),
    "translation_backsim": pa.float32(),
    "translation_backsim_chrf": pa.float32(),
    "translation_judge": pa.int8(),
    "translation_judge_reason": pa.string(),
    "translation_label": pa.string(),
    "translation_label_ok": pa.bool_(),
    "translation_keep": pa.bool_(),
    "backtranslation_prompt": pa.string(),
    "judge_prompt": pa.string(),
    "quality_model": pa.string(),
}


class TranslationQualityParams(LLMParams):
    backend: str | None = Field(None, description="LLM for back-translations and the judge (none: no LLM signals)")
    sampling: SamplingParams = Field(SamplingParams(temperature=0, max_tokens=1024), description="greedy by default")
    source_column: str = Field("source_text", description="the text that was translated")
    text_column: str = Field("text", description="the translation")
    language_column: str = Field("language", description="the target language of each row (ISO 639-1)")
    source_language: str = Field("en", description="the language of the source texts")
    back_translation_column: str | None = Field(None, description="use this column's back-translations instead of the LLM")
    back_translate: bool = Field(True, description="with a backend: ask it for back-translations (translation_backsim)")
    judge: bool = Field(False, description="ask the LLM for a 1-5 score with its reason (needs backend)")
    judge_max_tokens: int = Field(128, ge=8, description="tokens for the judge's answer")
    check_language: bool = Field(True, description="translation_keep requires translation_lang_ok")
    length_tolerance: float = Field(1.6, gt=1, description="accepted ratio: expected / tolerance .. expected * tolerance")
    length_ranges: dict[str, tuple[float, float]] = Field(default_factory=dict,
                                                         description="per-language (low, high) ratio, e.g. {ja: [0.3, 0.8]}")
    min_length_chars: int = Field(20, ge=0, description="sources shorter than this pass the length check")
    max_untranslated: float | None = Field(0.2, ge=0, le=1, description="most copied source 4-grams (None: not checked)")
    min_backsim: float | None = Field(0.7, ge=-1, le=1, description="least MiniLM cosine of the back-translation")
    min_chrf: float | None = Field(None, ge=0, le=100, description="least chrF of the back-translation (None: not checked)")
    min_judge: int = Field(3, ge=1, le=5, description="least judge score")
    label_classifier: str | None = Field(None, description="fastText/HF classifier (path or warehouse NAME[@N])")
    label_column: str | None = Field(None, description="the row's label, compared with the classifier's")
    label_kind: Literal["auto", "fasttext", "hf"] = "auto"
    embedding_model: str = Field(MINILM, description="all-minilm-l6-v2 (shipped package) or a sentence-transformers folder")
    embed_batch_size: int = Field(64, ge=1)
    langid_model: str | None = Field(None, description="fastText language-id model (default: the langid stage's)")
    max_chunk_chars: int = Field(4000, ge=200, description="back-translation chunk size")

    @field_validator("source_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        language_entry(value)
        return value

    @model_validator(mode="after")
    def _consistent(self):
        if self.judge and self.backend is None:
            raise ValueError("judge=true needs a backend (and model) for the LLM judge")
        if self.label_classifier and not self.label_column:
            raise ValueError("label_classifier needs label_column: the row's label to compare with")
        return self


class TranslationQuality(LLMStage):
    """Language, length, copied n-grams, kept spans, back-translation similarity, judge, label."""

    name = "translation_quality"
    version = "1"
    description = "translation checks: language, length ratio, untranslated n-grams, back-translation similarity, judge"
    inputs = ("source_text", "text", "language")
    Params = TranslationQualityParams

    def __init__(self, params=None):
        super().__init__(params)
        self._label_model: tuple[str, str, str] | None = None  # (path, kind, identity)
        ref = self.params.label_classifier
        if ref and not is_model_reference(ref):
            if not os.path.exists(ref):
                raise StageError(f"translation_quality: label classifier {ref} does not exist")
            self._label_model = (ref, self.params.label_kind, os.path.abspath(ref))

    def bind_warehouse(self, warehouse) -> None:
        """Resolve a warehouse classifier ``NAME[@N]`` (called when a run is planned)."""
        ref = self.params.label_classifier
        if ref and self._label_model is None:
            record = warehouse.resolve_model(ref)
            kind = self.params.label_kind if self.params.label_kind != "auto" else record.kind
            self._label_model = (record.path, kind, record.ref)

    def required_columns(self):
        p = self.params
        cols = [p.source_column, p.text_column, p.language_column]
        cols += [c for c in (p.back_translation_column, p.label_column) if c]
        return tuple(cols)

    def output_columns(self):
        return {**SIGNAL_COLUMNS, **self.accounting_columns()}

    def fingerprint(self):
        fp = super().fingerprint()
        if self._label_model:
            fp["label_model"] = self._label_model[2]
        return fp

    def __getstate__(self):
        return {"params": self.params, "label_model": self._label_model}

    def __setstate__(self, state):
        self.params = state["params"]
        self._label_model = state["label_model"]
        self._ready = False

    # -- resources -------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        p = self.params
        self.langid = LangId({"model_path": p.langid_model} if p.langid_model else {})
        self.langid.ensure_setup()
        self.embedder = Embedder(p.embedding_model, batch_size=p.embed_batch_size) if self.has_back_translations else None
        self._predict_labels = None
        if p.label_classifier:
            if self._label_model is None:
                raise StageError(f"translation_quality: label classifier {p.label_classifier!r} names a warehouse "
                                 "model, but the stage has no warehouse: run it through a pipeline")
            self._predict_labels = label_predictor(self._label_model[0], self._label_model[1])

    @property
    def has_back_translations(self) -> bool:
        p = self.params
        return p.back_translation_column is not None or (p.back_translate and p.backend is not None)

    # -- the stage ---------------------------------------------------------------------
    def process(self, batch: pa.Table) -> pa.Table:
        p = self.params
        n = batch.num_rows
        sources = batch.column(p.source_column).to_pylist()
        texts = batch.column(p.text_column).to_pylist()
        langs = batch.column(p.language_column).to_pylist()
        ledger = RowLedger(batch)
        cols: dict[str, list] = {name: [None] * n for name in SIGNAL_COLUMNS}
        present = [i for i in range(n) if texts[i] is not None and sources[i] is not None and langs[i] is not None]

        self._language_signals(present, texts, langs, cols)
        for i in present:
            ratio = length_ratio(sources[i], texts[i])
            cols["translation_length_ratio"][i] = ratio
            low, high = expected_length_range(p.source_language, base_code(langs[i]), p.length_tolerance, p.length_ranges)
            short = len(sources[i].strip()) < p.min_length_chars
            cols["translation_length_ok"][i] = short or (ratio is not None and low <= ratio <= high)
            cols["translation_untranslated_frac"][i] = untranslated_fraction(sources[i], texts[i])
            cols["translation_spans_ok"][i] = spans_kept(sources[i], texts[i])

        self._llm_signals(batch, present, sources, texts, langs, ledger, cols)
        self._backsim(present, sources, cols)
        if self._predict_labels is not None:
            labels = batch.column(p.label_column).to_pylist()
            predicted = self._predict_labels([texts[i] for i in present])
            for i, label in zip(present, predicted):
                cols["translation_label"][i] = label
                cols["translation_label_ok"][i] = labels[i] is not None and _same_label(label, labels[i])
        for i in range(n):
            cols["translation_keep"][i] = self._keep(i, cols, ledger, texts[i] is not None)
        out = batch
        for name, dtype in SIGNAL_COLUMNS.items():
            out = set_column(out, name, pa.array(cols[name], dtype))
        return ledger.apply(out)

    def _language_signals(self, present, texts, langs, cols) -> None:
        detected, _ = self.langid.identify([strip_spans(texts[i]) for i in present])
        for i, lang in zip(present, detected):
            cols["translation_lang"][i] = lang
            cols["translation_lang_ok"][i] = lang is not None and base_code(lang) == base_code(langs[i])

    def _llm_signals(self, batch, present, sources, texts, langs, ledger, cols) -> None:
        """Back-translations (from a column, or asked for) and judge scores, in one call."""
        p = self.params
        if p.back_translation_column:
            given = batch.column(p.back_translation_column).to_pylist()
            for i in present:
                cols["translation_backtranslation"][i] = given[i]
        if self.generator is None:
            return
        model = self.model_id
        todo = [i for i in present if not ledger.failed(i)]
        back_plans = {}
        if not p.back_translation_column and p.back_translate:
            template = translation_prompt("translate", p.prompt_version)
            for i in todo:
                back_plans[i] = plan_text(texts[i], template, base_code(langs[i]), p.source_language, p.sampling,
                                          p.seed, p.max_chunk_chars)
                cols["backtranslation_prompt"][i] = template.ref
        judge_requests = {}
        if p.judge:
            judge = translation_prompt("judge", p.prompt_version)
            sampling = p.sampling.model_copy(update={"max_tokens": min(p.judge_max_tokens, p.sampling.max_tokens)})
            for i in todo:
                fields = language_fields(p.source_language, base_code(langs[i])) | {"source": sources[i]}
                judge_requests[i] = GenerationRequest.chat(judge.messages(texts[i], **fields), sampling, p.seed)
                cols["judge_prompt"][i] = judge.ref
        requests = [r for plan in back_plans.values() for r in plan.requests] + list(judge_requests.values())
        results = iter(self.ask(requests))
        for i, plan in back_plans.items():
            answers = [next(results) for _ in plan.requests]
            for res in answers:
                ledger.add(i, "backtranslation", res)
            cols["translation_backtranslation"][i] = finish_text(plan, answers).text
        for i in judge_requests:
            res = next(results)
            ledger.add(i, "judge", res)
            if res.ok:
                cols["translation_judge"][i], cols["translation_judge_reason"][i] = parse_judge(res.text)
        for i in todo:
            cols["quality_model"][i] = model

    def _backsim(self, present, sources, cols) -> None:
        rows = [i for i in present if (cols["translation_backtranslation"][i] or "").strip()]
        if not rows or self.embedder is None:
            return
        backs = [cols["translation_backtranslation"][i] for i in rows]
        srcs = [sources[i] for i in rows]
        for i, cos, score in zip(rows, self.embedder.cosine(srcs, backs), chrf(backs, srcs)):
            cols["translation_backsim"][i] = float(cos)
            cols["translation_backsim_chrf"][i] = float(score)

    def _keep(self, i: int, cols: dict, ledger: RowLedger, has_text: bool) -> bool:
        p = self.params
        if not has_text or ledger.failed(i):
            return False
        checks = [cols["translation_length_ok"][i], cols["translation_spans_ok"][i]]
        if p.check_language:
            checks.append(cols["translation_lang_ok"][i])
        frac = cols["translation_untranslated_frac"][i]
        if p.max_untranslated is not None and frac is not None:
            checks.append(frac <= p.max_untranslated)
        wants_back = self.has_back_translations
        if wants_back and p.min_backsim is not None:
            sim = cols["translation_backsim"][i]
            checks.append(sim is not None and sim >= p.min_backsim)
        if wants_back and p.min_chrf is not None:
            score = cols["translation_backsim_chrf"][i]
            checks.append(score is not None and score >= p.min_chrf)
        if p.judge:
            judged = cols["translation_judge"][i]
            checks.append(judged is not None and judged >= p.min_judge)
        if self._predict_labels is not None:
            checks.append(cols["translation_label_ok"][i])
        return all(c is True for c in checks)


def _same_label(predicted: str, expected) -> bool:
    return str(predicted).strip().casefold() == str(expected).removeprefix("__label__").strip().casefold()
