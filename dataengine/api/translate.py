"""Datasets into many languages: CultureGuard's segregation, adaptation, translation, filtering.

    de.translate(wh, "SELECT id, text, label FROM prompts", to="prompts_ml", languages="de,fr,ja",
                 backend="http", model="qwen", backend_options={"base_url": "http://127.0.0.1:8000/v1"})
    wh.sql("SELECT language, count(*) FILTER (WHERE translation_keep) FROM prompts_ml GROUP BY 1")

One table keyed by (source_id, language), every step's output, score and provenance as
columns; a re-run resumes from the request cache. See docs/translation.md.
"""

from __future__ import annotations

from typing import Any, Sequence

from dataengine.api.generation import default_cache_path
from dataengine.api.translation_job import TranslateResult, TranslationSource, run_translate
from dataengine.api.warehouse import as_warehouse
from dataengine.core.languages import parse_languages
from dataengine.core.llm import SamplingParams, make_backend
from dataengine.core.registry import stages

__all__ = ["TranslateResult", "close_steps", "translate", "translation_steps"]


def translation_steps(
    wh,
    adapt: bool = True,
    backend: str = "transformers",
    model: str | None = None,
    backend_options: dict | None = None,
    sampling: dict | None = None,
    seed: int = 0,
    source_language: str = "en",
    chat: bool = False,
    label_columns: Sequence[str] = (),
    judge: bool = True,
    label_classifier: str | None = None,
    label_column: str | None = None,
    quality: dict | None = None,
    prompt_version: str = "v1",
    cache: bool = True,
) -> list:
    """The stages of a translate job, in order, sharing ONE loaded backend.

    ``sampling`` overrides each step's defaults (greedy; 128 tokens for the classifier and
    the judge, 1024 for rewriting and translating). ``quality`` holds further
    ``translation_quality`` parameters (thresholds such as ``min_backsim``, ``length_ranges``).
    """
    wh = as_warehouse(wh)
    shared: dict[str, Any] = {"backend": backend, "model": model, "backend_options": dict(backend_options or {}),
                              "seed": seed, "prompt_version": prompt_version}
    if cache:
        shared["cache_path"] = default_cache_path(wh)
    src_text, src_messages = "source_text", ("source_messages" if chat else None)
    plan: list[tuple[str, dict]] = []
    if adapt:
        plan.append(("cultural_segregation", {"text_column": src_text, "messages_column": src_messages,
                                              "source_language": source_language}))
        plan.append(("cultural_adaptation", {"text_column": src_text, "messages_column": src_messages,
                                             "source_language": source_language, "label_columns": list(label_columns)}))
    translated_from = ("adapted_text", "adapted_messages") if adapt else (src_text, src_messages)
    plan.append(("translate", {"text_column": translated_from[0], "messages_column": translated_from[1] if chat else None,
                               "source_language": source_language, "output_column": "text",
                               "messages_output_column": "messages"}))
    plan.append(("translation_quality", {"source_column": translated_from[0], "text_column": "text",
                                         "source_language": source_language, "judge": judge,
                                         "label_classifier": label_classifier, "label_column": label_column,
                                         **(quality or {})}))
    built = []
    for name, params in plan:
        cls = stages.get(name)
        defaults = cls.Params.model_fields["sampling"].get_default(call_default_factory=True)
        step_sampling = SamplingParams(**{**defaults.model_dump(), **(sampling or {})}).model_dump()
        built.append(cls({**shared, **params, "sampling": step_sampling}))
    loaded = make_backend(backend, model, **shared["backend_options"])
    for stage in built:
        stage.use_backend(loaded)
        bind = getattr(stage, "bind_warehouse", None)
        if bind is not None:
            bind(wh)
    return built


def translate(
    wh,
    source: str,
    to: str,
    languages: str | Sequence[str],
    backend: str = "transformers",
    model: str | None = None,
    backend_options: dict | None = None,
    sampling: dict | None = None,
    seed: int = 0,
    adapt: bool = True,
    source_language: str = "en",
    id_column: str = "id",
    text_column: str = "text",
    messages_column: str | None = None,
    label_columns: Sequence[str] = (),
    judge: bool = True,
    label_classifier: str | None = None,
    label_column: str | None = None,
    quality: dict | None = None,
    prompt_version: str = "v1",
    mode: str = "overwrite",
    batch_rows: int = 16,
    cache: bool = True,
    progress: bool = True,
) -> TranslateResult:
    """Translate the rows of ``source`` (SQL or a table name) into ``languages`` and commit them to ``to``.

    Text rows have ``text_column``; chat rows have ``messages_column`` (a list of
    ``{role, content}``), translated turn by turn. ``label_columns`` are shown to the
    adaptation step as what must not change; every source column is copied to the output.
    ``label_classifier`` + ``label_column`` add ``translation_label_ok``.
    """
    wh = as_warehouse(wh)
    codes = parse_languages(languages)
    steps = translation_steps(wh, adapt, backend, model, backend_options, sampling, seed, source_language,
                              messages_column is not None, label_columns, judge, label_classifier, label_column,
                              quality, prompt_version, cache)
    src = TranslationSource(id_column, text_column, messages_column)
    try:
        return run_translate(wh, steps, source, to, codes, src, mode=mode, batch_rows=batch_rows, progress=progress)
    finally:
        close_steps(steps)


def close_steps(steps: list) -> None:
    """Close the request-cache connections and release the shared model."""
    for stage in steps:
        generator = getattr(stage, "generator", None)
        if generator is not None and generator.cache is not None:
            generator.cache.close()
    generator = getattr(steps[0], "generator", None) if steps else None
    if generator is not None:
        generator.close()
