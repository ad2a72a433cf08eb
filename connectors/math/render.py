"""Layout-aware HTML -> text in pure Python: paragraphs, lists, tables and code blocks kept.

The renderer plays lynx's part (``lynx -dump``) where lynx is not installed: the whole
page as text with its structure, not a main-content extract. Paragraphs and headings are
separated by blank lines, list items get ``*`` or ``1.`` and are indented by nesting
depth, blockquotes are indented, table rows become ``cell | cell`` lines, and <pre>
blocks keep their lines and indentation exactly.
"""

from __future__ import annotations

import re

from lxml import etree

_WS = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLOCKS = {
    "p", "div", "section", "article", "header", "footer", "nav", "aside", "main", "h1", "h2", "h3", "h4", "h5",
    "h6", "blockquote", "figure", "figcaption", "form", "fieldset", "address", "dl", "dt", "dd", "hr", "center",
    "details", "summary", "table", "ul", "ol", "li", "pre", "tr", "body", "html", "caption", "legend", "menu",
}
_PARAGRAPH_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "blockquote", "ul", "ol", "dl",
                     "figure", "hr", "section", "article", "header", "footer", "aside", "nav"}
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed", "canvas",
         "button", "input", "select", "textarea", "option", "img", "video", "audio", "map", "title", "meta",
         "link"}
_INDENT = "  "


def render_text(root) -> str:
    """The tree (an lxml.html document or element) as layout-preserving plain text."""
    renderer = _Renderer()
    renderer.walk(root)
    renderer.flush()
    return renderer.result()


class _Renderer:
    def __init__(self):
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.depth = 0  # list / blockquote nesting
        self.bullet: str | None = None  # marker of the list item whose first line is pending

    # -- output ------------------------------------------------------------------------
    def flush(self) -> None:
        text = _WS.sub(" ", "".join(self.inline)).strip()
        self.inline = []
        if not text:
            return
        prefix = _INDENT * self.depth
        if self.bullet is not None:
            prefix = _INDENT * max(self.depth - 1, 0) + self.bullet + " "
            self.bullet = None
        self.lines.append(prefix + text)

    def blank(self) -> None:
        self.flush()
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def result(self) -> str:
        return "\n".join(self.lines).strip("\n")

    # -- traversal -----------------------------------------------------------------------
    def walk(self, el) -> None:
        if not isinstance(el.tag, str):  # comments, processing instructions
            self.text(el.tail)
            return
        tag = el.tag.lower()
        if tag in _SKIP:
            self.text(el.tail)
            return
        if tag == "br":
            self.flush()
        elif tag == "pre":
            self.pre(el)
        elif tag == "table":
            self.table(el)
        elif tag in ("ul", "ol", "menu"):
            self.list(el, ordered=tag == "ol")
        elif tag == "blockquote":
            self.blank()
            self.depth += 1
            self.children(el)
            self.depth -= 1
            self.blank()
        elif tag in _BLOCKS:
            if tag in _PARAGRAPH_BLOCKS:
                self.blank()
            else:
                self.flush()
            self.children(el)
            if tag in _PARAGRAPH_BLOCKS:
                self.blank()
            else:
                self.flush()
        else:
            self.children(el)
        self.text(el.tail)

    def children(self, el) -> None:
        self.text(el.text)
        for child in el:
            self.walk(child)

    def text(self, text: str | None) -> None:
        if text:
            self.inline.append(text)

    # -- structures ----------------------------------------------------------------------
    def list(self, el, ordered: bool) -> None:
        self.blank() if self.depth == 0 else self.flush()
        self.depth += 1
        number = int(el.get("start", "1")) if (el.get("start") or "1").isdigit() else 1
        for child in el:
            if isinstance(child.tag, str) and child.tag.lower() == "li":
                self.flush()
                self.bullet = f"{number}." if ordered else "*"
                number += 1
                self.children(child)
                self.flush()
                self.bullet = None
                self.text(child.tail)
            else:
                self.walk(child)
        self.flush()
        self.depth -= 1
        if self.depth == 0:
            self.blank()

    def pre(self, el) -> None:
        self.blank()
        prefix = _INDENT * self.depth
        body = "".join(_text_without_skipped(el)).strip("\n")
        for line in body.split("\n"):
            self.lines.append((prefix + line.expandtabs(4)).rstrip())
        self.blank()

    def table(self, el) -> None:
        self.blank()
        prefix = _INDENT * self.depth
        for row in el.iter("tr"):
            if _nearest_table(row) is not el:
                continue
            cells = []
            for cell in row:
                if isinstance(cell.tag, str) and cell.tag.lower() in ("td", "th"):
                    text = _WS.sub(" ", "".join(_text_without_skipped(cell, block_space=True))).strip()
                    if text:
                        cells.append(text)
            if cells:
                self.lines.append(prefix + " | ".join(cells))
        caption = el.find("caption")
        if caption is not None:
            text = _WS.sub(" ", "".join(_text_without_skipped(caption))).strip()
            if text:
                self.lines.append(prefix + text)
        self.blank()


def _nearest_table(row):
    for ancestor in row.iterancestors():
        if isinstance(ancestor.tag, str) and ancestor.tag.lower() == "table":
            return ancestor
    return None


def _text_without_skipped(el, block_space: bool = False):
    """Text of ``el`` and its descendants, minus skipped elements (keeping their tails)."""
    if el.text:
        yield el.text
    for child in el:
        tag = child.tag.lower() if isinstance(child.tag, str) else ""
        if tag and tag not in _SKIP:
            if block_space and tag in _BLOCKS:
                yield " "
            yield from _text_without_skipped(child, block_space)
            if block_space and tag in _BLOCKS:
                yield " "
        elif tag == "br":
            yield "\n"
        if child.tail:
            yield child.tail


def serialise_body(root) -> str:
    """The page body as well-formed HTML (every tag closed), for an external renderer."""
    body = root.find("body") if root.tag == "html" else root
    if body is None:
        body = root
    return etree.tostring(body, encoding="unicode", method="html")
