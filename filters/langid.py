"""Stage `langid`: language and language_score columns, offline.

Default: fastText ``lid.176.ftz`` (shipped in filters/data, CC-BY-SA-3.0), with
py3langid as a second opinion for the texts lid.176 is unsure about. lid.176 alone is
fast (C++, batched) but weak on short text and on close pairs (Bosnian/Croatian/Serbian,
Malay/Indonesian, Afrikaans/Dutch, Somali, Yoruba); py3langid is stronger there but
several times slower (a per-byte Python loop). Asking py3langid only when lid.176's
probability is below ``confirm_below`` (~30% of Leipzig sentences at 0.7) gets most of
py3langid's accuracy at most of lid.176's speed: see benchmarks/RESULTS.md.

``model_path`` points at any fastText language-id model instead (e.g. GlotLID
``model.bin``); its labels are used as they are (``__label__`` removed).
"""

from __future__ import annotations

import os
from importlib import resources

import pyarrow as pa
from pydantic import Field

from dataengine.core.errors import StageError
from dataengine.core.stage import Stage, StageParams

LID176 = "lid.176.ftz"


def shipped_model_path() -> str:
    return str(resources.files("dataengine.filters") / "data" / LID176)


def load_fasttext(path: str):
    """Load a fastText model quietly (fasttext-numpy2); StageError if it is missing."""
    if not os.path.exists(path):
        raise StageError(f"langid: fastText model {path!r} does not exist")
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silence the load_model warning
    return fasttext.load_model(path)


class LangidParams(StageParams):
    model_path: str | None = Field(None, description="fastText LID model; default: the shipped lid.176.ftz")
    confirm_below: float = Field(
        0.7, ge=0, le=1, description="ask py3langid when lid.176's probability is below this; 0 = never"
    )
    max_chars: int = Field(2000, ge=16, description="characters of text looked at (the head of a document)")
    confirm_chars: int = Field(500, ge=16, description="characters py3langid looks at (it is ~20x slower per byte)")


class LangId(Stage):
    """fastText language id (lid.176 + py3langid second opinion, or a model you give)."""

    name = "langid"
    version = "1"
    description = "language + language_score (lid.176, py3langid for unsure texts; or your fastText model)"
    inputs = ("text",)
    Params = LangidParams

    def output_columns(self):
        return {"language": pa.string(), "language_score": pa.float32()}

    def setup(self) -> None:
        p = self.params
        self._model = load_fasttext(p.model_path or shipped_model_path())
        self._second = None
        if p.model_path is None and p.confirm_below > 0:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            self._second = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def process(self, batch: pa.Table) -> pa.Table:
        languages, scores = self.identify(batch.column("text").to_pylist())
        out = batch
        for name, values, dtype in (("language", languages, pa.string()), ("language_score", scores, pa.float32())):
            column = pa.array(values, type=dtype)
            if name in out.column_names:
                out = out.set_column(out.column_names.index(name), name, column)
            else:
                out = out.append_column(name, column)
        return out

    def identify(self, texts: list[str | None]) -> tuple[list[str | None], list[float | None]]:
        """(languages, scores) for a list of texts; None for empty or missing text."""
        self.ensure_setup()
        p = self.params
        languages: list[str | None] = [None] * len(texts)
        scores: list[float | None] = [None] * len(texts)
        todo, lines = [], []
        for i, text in enumerate(texts):
            if text and not text.isspace():
                todo.append(i)
                # fastText reads one line: newlines would end the input early.
                lines.append(" ".join(text[: p.max_chars].split()))
        if not todo:
            return languages, scores
        labels, probs = self._model.predict(lines, k=1)
        for i, line, label, prob in zip(todo, lines, labels, probs):
            lang = label[0][9:] if label else None  # strip "__label__"
            score = min(float(prob[0]), 1.0) if len(prob) else 0.0
            if self._second is not None and score < p.confirm_below:
                lang, score = self._second.classify(line[: p.confirm_chars])
            languages[i], scores[i] = lang, float(score)
        return languages, scores
