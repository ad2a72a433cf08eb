"""One page through the math pass and a renderer: (text, title, status, equation count).

Pages without math markers skip the math pass entirely (the fast path); pages with
markers are parsed once, their equations replaced by placeholders, rendered, and the
placeholders swapped back for ``$tex$``. lynx pages are collected and rendered in
batches; a page lynx cannot render in time is rendered by the Python renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataengine.connectors.math.detect import has_math_markers, loads_typesetter, normalise_math
from dataengine.connectors.math.dom import body_of, inline_display_blocks, parse_page, strip_non_content
from dataengine.connectors.math.equations import EquationSink
from dataengine.connectors.math.render import render_text, serialise_body


@dataclass
class RenderedPage:
    text: str | None
    title: str | None
    status: str  # ok | empty | timeout | error
    equations: int = 0


class PageRenderer:
    def __init__(self, renderer: str, single_dollar: str = "auto", timeout_s: float = 10.0, lynx_batch_size: int = 64):
        self.renderer = renderer
        self.single_dollar = single_dollar
        self.timeout_s = timeout_s
        self.lynx_batch_size = lynx_batch_size
        if renderer == "lynx":
            from dataengine.connectors.math.lynx import LynxRenderer

            self.lynx = LynxRenderer(timeout_s or 60.0)
        if renderer == "trafilatura":
            from dataengine.connectors.extractors import TrafilaturaExtractor

            self.trafilatura = TrafilaturaExtractor()

    def render(self, htmls: list[str], urls: list[str | None] | None = None,
               marked: list[bool] | None = None) -> list[RenderedPage]:
        """Render pages; ``marked`` (from :func:`math_marker_mask`) saves the per-page marker scan."""
        from dataengine.connectors.extract import ExtractionTimeout, alarm_clock

        urls = urls or [None] * len(htmls)
        marked = marked if marked is not None else [has_math_markers(h) for h in htmls]
        pages: list[RenderedPage | None] = [None] * len(htmls)
        pending: list[tuple[int, object, EquationSink, str | None]] = []  # waiting for lynx
        with alarm_clock() as arm:
            for i, (html, url, has_math) in enumerate(zip(htmls, urls, marked)):
                try:
                    arm(self.timeout_s)
                    try:
                        result = self._one(html, url, has_math)
                    finally:
                        arm(0)
                except ExtractionTimeout:
                    pages[i] = RenderedPage(None, None, "timeout")
                    continue
                except Exception:  # noqa: BLE001 - a page the parser chokes on is a counted outcome
                    pages[i] = RenderedPage(None, None, "error")
                    continue
                if isinstance(result, RenderedPage):
                    pages[i] = result
                else:
                    pending.append((i, *result))
        for start in range(0, len(pending), self.lynx_batch_size):
            chunk = pending[start:start + self.lynx_batch_size]
            dumps = self.lynx.render_many([serialise_body(doc) for _, doc, _, _ in chunk])
            for (i, doc, sink, title), dump in zip(chunk, dumps):
                text = dump if dump is not None else render_text(body_of(doc))
                pages[i] = _finish(text, sink, title)
        return pages

    def _one(self, html: str, url: str | None, has_math: bool):
        """A finished page, or (tree, equations, title) when lynx still has to render it."""
        sink = EquationSink()
        doc = None
        if has_math:
            doc = parse_page(html)
            single = self.single_dollar == "always" or (self.single_dollar == "auto" and loads_typesetter(html))
            sink = normalise_math(doc, single_dollar=single, html=html)
        if self.renderer == "trafilatura":
            if doc is not None:
                inline_display_blocks(doc)
            text, title = self.trafilatura(doc if doc is not None else html, url)
            return _finish(text, sink, title)
        if doc is None:
            doc = parse_page(html)
        title = doc.findtext(".//title")
        strip_non_content(doc)
        if self.renderer == "lynx":
            return doc, sink, title
        return _finish(render_text(body_of(doc)), sink, title)


def _finish(text: str | None, sink: EquationSink, title: str | None) -> RenderedPage:
    title = " ".join(title.split()) if title else None
    if not text or not text.strip():
        return RenderedPage(None, title or None, "empty")
    text, kept = sink.substitute(text.strip())
    return RenderedPage(text, title or None, "ok", len(kept))
