"""Stage `math_extract`: page HTML -> text with every equation kept as LaTeX.

The Nemotron-CC-Math recipe: find math in every form the page carries it (MathML,
MathJax 2/3, KaTeX, LaTeXML, StackExchange, formula images, TeX in the text), replace it
by ``$tex$`` / ``$$tex$$``, then render the *whole page* with its layout (lynx, or our
pure-Python renderer where lynx is missing) for the LLM cleanup stage
(``math_cleanup``) to remove boilerplate. ``renderer: trafilatura`` instead keeps only
the main content (no LLM needed, layout lost).

Columns: ``text``, ``title``, ``extract_status`` (as the `extract` stage), and the math
annotations ``math_equations`` (equations in the text), ``math_has_math`` and
``math_score`` (a math classifier's score when ``classifier`` is set, else null).
"""

from __future__ import annotations

import re
from typing import Literal

import pyarrow as pa
from pydantic import Field

from dataengine.core.errors import StageError
from dataengine.core.stage import Stage, StageParams

_HTML_MIME = re.compile(r"html|xml", re.I)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title", re.I | re.S)


class MathExtractParams(StageParams):
    renderer: Literal["auto", "lynx", "python", "trafilatura"] = Field(
        "auto",
        description="auto: lynx when installed, else python (both render the whole page with its layout); "
        "trafilatura: main content only",
    )
    single_dollar: Literal["auto", "always", "never"] = Field(
        "auto", description="read $...$ in the text as math: auto = only on pages that load MathJax/KaTeX"
    )
    keep_html: bool = Field(False, description="keep the html column")
    max_html_bytes: int = Field(5_000_000, ge=1, description="larger pages are not parsed (too_large)")
    timeout_s: float = Field(10.0, ge=0, description="per-page time limit (lynx: per page of a batch); 0 = none")
    lynx_batch_size: int = Field(64, ge=1, description="pages per lynx process")
    classifier: str | None = Field(
        None, description="math classifier: a fastText .bin/.ftz or a Hugging Face sequence-classification folder"
    )
    classifier_kind: Literal["auto", "fasttext", "hf"] = "auto"
    classifier_label: str | None = Field(None, description="positive label (default: the model's first / only output)")
    classifier_max_length: int = Field(512, ge=8, description="HF classifier: tokens per text")


class MathExtract(Stage):
    """HTML -> text keeping every equation as LaTeX (Nemotron-CC-Math), with math annotations."""

    name = "math_extract"
    version = "1"
    description = "math-aware HTML -> text: MathML/MathJax/KaTeX/LaTeXML/images -> $LaTeX$, lynx or Python layout"
    inputs = ("html",)
    Params = MathExtractParams

    def __init__(self, params=None):
        super().__init__(params)
        self.renderer = self._resolve_renderer()
        self._classifier_label = None
        if self.params.classifier:
            from dataengine.core.classifier_models import check_label, inspect_model

            info = inspect_model(self.params.classifier, self.params.classifier_kind)
            self._classifier_kind = info.kind
            self._classifier_label = check_label(info, self.params.classifier_label, "math classifier")

    def _resolve_renderer(self) -> str:
        from dataengine.connectors.math.lynx import lynx_path

        choice = self.params.renderer
        if choice == "auto":
            return "lynx" if lynx_path() else "python"
        if choice == "lynx" and lynx_path() is None:
            raise StageError("math_extract: renderer 'lynx' needs the lynx binary (apt-get install lynx)")
        return choice

    def output_columns(self):
        return {
            "text": pa.string(),
            "title": pa.string(),
            "extract_status": pa.string(),
            "math_equations": pa.int32(),
            "math_has_math": pa.bool_(),
            "math_score": pa.float32(),
        }

    def fingerprint(self):
        fp = super().fingerprint()
        fp["renderer"] = self.renderer  # what "auto" resolved to changes the text
        return fp

    def __getstate__(self):
        return {"params": self.params}

    def __setstate__(self, state):
        self.__init__(state["params"])

    def setup(self) -> None:
        from dataengine.connectors.math.page import PageRenderer

        self._pages = PageRenderer(self.renderer, self.params.single_dollar, self.params.timeout_s,
                                   self.params.lynx_batch_size)
        self._scorer = None
        if self.params.classifier:
            from dataengine.core.classifier_models import FastTextScorer, HFScorer

            if self._classifier_kind == "fasttext":
                self._scorer = FastTextScorer(self.params.classifier, self._classifier_label)
            else:
                self._scorer = HFScorer(self.params.classifier, self._classifier_label, 16,
                                        self.params.classifier_max_length, "auto")

    def process(self, batch: pa.Table) -> pa.Table:
        from dataengine.connectors.math.detect import math_marker_mask

        column = batch.column("html")
        marked = math_marker_mask(column)
        htmls = column.to_pylist()
        n = len(htmls)
        mimes = batch.column("content_type").to_pylist() if "content_type" in batch.column_names else [None] * n
        urls = batch.column("url").to_pylist() if "url" in batch.column_names else [None] * n
        todo, statuses = [], [None] * n
        for i, (html, mime) in enumerate(zip(htmls, mimes)):
            if isinstance(html, bytes):
                html = htmls[i] = html.decode("utf-8", "replace")
            if html is None:
                statuses[i] = "no_html"
            elif mime and not _HTML_MIME.search(mime):
                statuses[i] = "not_html"
            elif len(html) > self.params.max_html_bytes:
                statuses[i] = "too_large"
            else:
                todo.append(i)
        rendered = self._pages.render([htmls[i] for i in todo], [urls[i] for i in todo], [marked[i] for i in todo])
        texts, titles, counts = [None] * n, [None] * n, [None] * n
        for i, page in zip(todo, rendered):
            texts[i], titles[i], statuses[i] = page.text, page.title, page.status
            counts[i] = page.equations if page.status == "ok" else None
        for i in range(n):
            if titles[i] is None and statuses[i] == "too_large":
                titles[i] = _title_from_head(htmls[i])
        scores = self._score(texts)
        columns = {
            "text": pa.array(texts, pa.string()),
            "title": pa.array(titles, pa.string()),
            "extract_status": pa.array(statuses, pa.string()),
            "math_equations": pa.array(counts, pa.int32()),
            "math_has_math": pa.array([None if c is None else c > 0 for c in counts], pa.bool_()),
            "math_score": pa.array(scores, pa.float32()),
        }
        out = batch
        for name, column in columns.items():
            if name in out.column_names:
                out = out.set_column(out.column_names.index(name), name, column)
            else:
                out = out.append_column(name, column)
        if not self.params.keep_html:
            out = out.drop_columns(["html"])
        return out

    def _score(self, texts: list[str | None]) -> list[float | None]:
        if self._scorer is None:
            return [None] * len(texts)
        present = [i for i, t in enumerate(texts) if t]
        if self._classifier_kind == "fasttext":  # fastText predicts one line at a time
            values = self._scorer([texts[i].replace("\n", " ") for i in present])
        else:
            values = self._scorer([texts[i] for i in present])
        scores: list[float | None] = [None] * len(texts)
        for i, value in zip(present, values):
            scores[i] = float(value)
        return scores


def _title_from_head(html: str) -> str | None:
    import html as html_lib

    match = _TITLE.search(html, 0, 200_000)
    if not match:
        return None
    title = " ".join(html_lib.unescape(match.group(1)).split())
    return title or None
