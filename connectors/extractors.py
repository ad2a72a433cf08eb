"""The two HTML -> (main text, title) back-ends of the `extract` stage.

Each parses a page once and takes the title from the same tree it extracts from.
"""

from __future__ import annotations


class TrafilaturaExtractor:
    """trafilatura, run the way that scored best on news pages for its cost.

    ``fast=True`` skips trafilatura's readability/jusText fallback comparison: on the
    181 article-extraction-benchmark pages it costs ~40% of the time and gives no F1
    (see benchmarks/RESULTS.md). Comments are left out (they are not main text);
    deduplication is off because trafilatura's LRU makes a page's text depend on the
    pages before it, which breaks "same input, same rows".
    """

    def __init__(self, favour: str = "balanced", fallback: bool = False, include_tables: bool = True):
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
    """resiliparse (lexbor DOM + C heuristics): an order of magnitude faster than trafilatura."""

    def __init__(self, include_tables: bool = True, max_depth: int = 1000):
        from resiliparse.extract.html2text import extract_plain_text

        self._extract = extract_plain_text
        self._max_depth = max_depth
        self._too_deep = " > ".join(["*"] * max_depth)  # child chain: matches only at depth >= max_depth
        self._skip = None if include_tables else ["table"]

    def __call__(self, html: bytes | str, url: str | None = None) -> tuple[str | None, str | None]:
        from resiliparse.parse.html import HTMLTree

        from connectors.extract import TooDeep

        if isinstance(html, str):
            html = html.encode("utf-8")
        tree = HTMLTree.parse_from_bytes(html, "utf-8")
        if tree.document.query_selector(self._too_deep) is not None:
            raise TooDeep()
        text = self._extract(
            tree,
            main_content=True,
            preserve_formatting=True,
            alt_texts=False,
            skip_elements=self._skip,
        )
        return text, tree.title
