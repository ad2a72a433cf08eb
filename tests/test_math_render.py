"""Layout renderers: the pure-Python one always, lynx where the binary is installed."""

from __future__ import annotations

import pytest

from dataengine.connectors.math.dom import body_of, parse_page, strip_non_content
from dataengine.connectors.math.lynx import LynxRenderer, lynx_path
from dataengine.connectors.math.render import render_text, serialise_body

PAGE = """<html><head><title>T</title><style>p{}</style></head><body>
<h1>Heading</h1>
<p>First   paragraph with <a href="/x">a link</a>
and a line break<br>here.</p>
<ul><li>one</li><li>two<ol><li>inner a</li><li>inner b</li></ol></li></ul>
<pre>def f(x):
    return x  # indented</pre>
<table><tr><th>n</th><th>n^2</th></tr><tr><td>2</td><td>4</td></tr></table>
<blockquote><p>quoted</p></blockquote>
<script>var hidden = 1;</script><img src="a.png" alt="photo">
</body></html>"""


def _python(html: str) -> str:
    doc = parse_page(html)
    strip_non_content(doc)
    return render_text(body_of(doc))


def test_python_renderer_keeps_layout():
    text = _python(PAGE)
    assert text.split("\n") == [
        "Heading",
        "",
        "First paragraph with a link and a line break",
        "here.",
        "",
        "* one",
        "* two",
        "  1. inner a",
        "  2. inner b",
        "",
        "def f(x):",
        "    return x  # indented",
        "",
        "n | n^2",
        "2 | 4",
        "",
        "  quoted",
    ]


needs_lynx = pytest.mark.skipif(lynx_path() is None, reason="lynx is not installed (make system-deps installs it)")


def _bodies(pages: list[str]) -> list[str]:
    out = []
    for html in pages:
        doc = parse_page(html)
        strip_non_content(doc)
        out.append(serialise_body(doc))
    return out


@needs_lynx
def test_lynx_renders_a_batch_in_order_and_keeps_layout():
    pages = [PAGE] + [f"<html><body><p>page {i}</p><pre>  code {i}</pre></body></html>" for i in range(5)]
    # an unclosed comment / tag in one page must not leak into the next: bodies are re-serialised
    pages.insert(1, "<html><body><p>broken <b>bold <!-- never closed")
    texts = LynxRenderer().render_many(_bodies(pages))
    assert len(texts) == len(pages)
    first = texts[0]
    assert "Heading" in first and "First paragraph with a link and a line break" in first
    assert "def f(x):\n    return x  # indented" in first  # <pre> keeps its indentation
    assert "inner a" in first and "var hidden" not in first and "[" not in first  # no link numbers
    assert texts[1] == "broken bold"
    for i in range(5):
        assert texts[2 + i].startswith(f"page {i}") and f"  code {i}" in texts[2 + i]


@needs_lynx
def test_lynx_batch_that_runs_out_of_time_is_split_down_to_the_page():
    renderer = LynxRenderer(timeout_s=0.000001, startup_s=0)  # nothing finishes: every page ends as None, one by one
    assert renderer.render_many(_bodies(["<p>a</p>", "<p>b</p>", "<p>c</p>"])) == [None, None, None]
