"""Translating one text with an LLM: markers for protected spans, chunks, a clean answer.

Shared by the ``translate`` step (generators), which translates samples into each target
language, and by ``translation_quality`` (filters), which translates them back to score
the round trip. Both send the same prompt (``dataengine/data/prompts/translation``), so a
back-translation is exactly a translation in the other direction.

A text becomes one or more requests: its protected spans are masked
(:mod:`dataengine.core.protected_spans`), and a text longer than ``max_chunk_chars`` is
cut between paragraphs into chunks translated separately and joined with the original
separators. The answers are cleaned of what chat models add ("Here is the
translation:", wrapping quotes or code fences the source did not have) and the spans
are restored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from dataengine.core.languages import language
from dataengine.core.llm import GenerationRequest, GenerationResult, SamplingParams
from dataengine.core.prompts import PromptTemplate, load_prompt_file
from dataengine.core.protected_spans import Protected, protect

_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course)[,!.]?\s*)?(?:here(?:'s| is) (?:the|a|my|your) [^\n:]{0,60}"
    r"(?:translation|translated|rewritten|adapted|version|sample|text)[^\n:]{0,40}:|"
    r"(?:the )?translation(?: into [A-Za-z ]+| \([^)]*\))?\s*:)[ \t]*\n?",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^```[^\n]*\n(.*)\n```\s*$", re.DOTALL)
_QUOTES = {'"': '"', "“": "”", "«": "»", "„": "“", "「": "」"}


@lru_cache(maxsize=None)
def translation_prompt(name: str = "translate", version: str = "v1") -> PromptTemplate:
    """The shared translation prompts: ``translate`` and ``judge``."""
    return load_prompt_file(resources.files("dataengine") / "data" / "prompts", "translation", name, version)


def language_fields(source: str, target: str) -> dict[str, str]:
    """The prompt fields for a (source, target) language pair."""
    tgt = language(target)
    return {"source_language": language(source).name, "language": tgt.name, "culture": tgt.culture}


@dataclass
class PlannedText:
    """One text to translate: its masked chunks (each one request) and how to rebuild it."""

    protected: Protected
    chunks: list[str]  # masked text of each chunk ("" chunks are not sent)
    separators: list[str]  # separator after each chunk but the last
    requests: list[GenerationRequest]  # one per non-empty chunk, in order


def split_chunks(masked: str, max_chars: int) -> tuple[list[str], list[str]]:
    """Paragraph groups of at most ``max_chars`` (a longer paragraph stays whole), and separators."""
    parts = _PARAGRAPH_BREAK.split(masked)
    paragraphs, breaks = parts[0::2], parts[1::2]
    chunks, separators, current = [], [], paragraphs[0]
    for sep, para in zip(breaks, paragraphs[1:]):
        if len(current) + len(sep) + len(para) <= max_chars:
            current += sep + para
        else:
            chunks.append(current)
            separators.append(sep)
            current = para
    chunks.append(current)
    return chunks, separators


def plan_text(text: str, template: PromptTemplate, source: str, target: str, sampling: SamplingParams,
              seed: int, max_chunk_chars: int = 4000) -> PlannedText:
    protected = protect(text)
    chunks, separators = split_chunks(protected.masked, max_chunk_chars)
    fields = language_fields(source, target)
    requests = [GenerationRequest.chat(template.messages(chunk.strip(), **fields), sampling, seed)
                for chunk in chunks if chunk.strip()]
    return PlannedText(protected, chunks, separators, requests)


@dataclass
class Translated:
    text: str | None  # None when a request failed
    markers_ok: bool | None  # every protected span came back exactly once
    error: str | None


def finish_text(plan: PlannedText, results: list[GenerationResult]) -> Translated:
    """Join the chunk answers (one per request, in order) and restore the protected spans."""
    errors = [r.error for r in results if r.error]
    if errors:
        return Translated(None, None, errors[0])
    answers = iter(results)
    pieces = []
    for i, chunk in enumerate(plan.chunks):
        if chunk.strip():
            lead = chunk[: len(chunk) - len(chunk.lstrip())]
            trail = chunk[len(chunk.rstrip()):]
            pieces.append(lead + clean_answer(next(answers).text or "", chunk.strip()) + trail)
        else:
            pieces.append(chunk)
        if i < len(plan.separators):
            pieces.append(plan.separators[i])
    restored = plan.protected.restore("".join(pieces))
    return Translated(restored.text, restored.ok, None)


def clean_answer(answer: str, source: str) -> str:
    """The translation without what chat models wrap around it."""
    text = answer.strip()
    if not _PREAMBLE.match(source):
        text = _PREAMBLE.sub("", text, count=1).strip()
    fenced = _FENCE.match(text)
    if fenced and not source.lstrip().startswith("```"):
        text = fenced.group(1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]] and source[:1] not in _QUOTES:
        text = text[1:-1].strip()
    return text
