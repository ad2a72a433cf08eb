"""Math forms of issue 18 on whole pages: raw TeX containers, forum BBCode, TeX in image URLs,
empty equations; every equation in the text exactly as often as the page has it.

The pandoc pages are real output of pandoc 2.17 (--katex: raw TeX in span.math; --mathjax:
\\( \\) in span.math; --webtex: CodeCogs image URLs; --mathml: MathML without annotation)
for tests/data/math/pages/notes.md; the forum thread is phpBB-style markup with BBCode the
way such boards store posts before MathJax runs in the browser.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from dataengine.connectors.math.compare import renders_equal, squash_whitespace
from dataengine.connectors.math.lynx import lynx_path
from dataengine.connectors.math.page import PageRenderer

PAGES = Path(__file__).parent / "data" / "math" / "pages"
_SOURCE_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
RENDERERS = ["python", "trafilatura"] + (["lynx"] if lynx_path() else [])


def source_equations() -> Counter:
    """TeX of every equation in notes.md (whitespace squashed), with how often it occurs."""
    text = (PAGES / "notes.md").read_text()
    return Counter(squash_whitespace(m.group(1) or m.group(2)) for m in _SOURCE_MATH.finditer(text))


def output_equations(text: str) -> Counter:
    """The $..$ / $$..$$ equations of a rendered text, whitespace squashed."""
    return Counter(squash_whitespace(m.group(1) or m.group(2)) for m in _SOURCE_MATH.finditer(text))


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("page", ["pandoc-katex.html", "pandoc-mathjax.html", "pandoc-webtex.html"])
def test_pandoc_pages_keep_every_equation_exactly_once(page, renderer):
    html = (PAGES / page).read_text()
    result = PageRenderer(renderer).render([html])[0]
    expected = source_equations()
    assert result.status == "ok"
    assert output_equations(result.text) == expected  # same TeX, same count ($|x|$ occurs twice)
    assert result.equations == sum(expected.values()) == 15


def test_pandoc_display_equations_stay_display():
    text = PageRenderer("python").render([(PAGES / "pandoc-katex.html").read_text()])[0].text
    assert "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$" in squash_whitespace(text)
    webtex = PageRenderer("python").render([(PAGES / "pandoc-webtex.html").read_text()])[0].text
    assert "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$" in squash_whitespace(webtex)  # \displaystyle in the URL


def test_pandoc_mathml_page_converts_every_equation_once():
    """MathML without annotation: 15 equations converted, most rendering back to the source."""
    result = PageRenderer("python").render([(PAGES / "pandoc-mathml.html").read_text()])[0]
    assert result.equations == 15
    got = list(output_equations(result.text).elements())
    assert len(got) == 15
    same = sum(bool(renders_equal(tex, ref)) for tex, ref in zip(got, source_order()))
    assert same >= 12, f"render-back {same}/15"


def source_order() -> list[str]:
    text = (PAGES / "notes.md").read_text()
    return [squash_whitespace(m.group(1) or m.group(2)) for m in _SOURCE_MATH.finditer(text)]


FORUM_EQUATIONS = Counter({
    r"\sum_{n=1}^\infty \frac{1}{n^2}": 3,  # twice in alice's post, once quoted by bob
    r"\int_1^\infty \frac{dx}{x^2} = 1": 1,  # [tex] broken over <br /> lines
    r"n \ge 2": 1,  # [MATH] in capitals
    r"\frac{1}{n^2} \le \int_{n-1}^{n} \frac{dx}{x^2}": 1,
    r"\sum_{n=2}^N \frac{1}{n^2} \le \int_1^N \frac{dx}{x^2} < 1.": 1,  # \[ \] over <br /> lines
    r"\sum_{n=1}^\infty \frac{1}{n^2} = \frac{\pi^2}{6}": 1,  # CodeCogs URL with &space; escapes
    r"a_n = O(n^{-2})": 1,  # [latex]
})


@pytest.mark.parametrize("renderer", RENDERERS)
def test_forum_bbcode_thread_exactly_once(renderer):
    html = (PAGES / "forum-thread.html").read_text()
    result = PageRenderer(renderer).render([html])[0]
    got = output_equations(result.text)
    if renderer == "trafilatura":
        # main content only: trafilatura drops the text that follows bob's blockquote (its
        # choice, not the math pass's), so only "never more often than the page" holds, and
        # alice's post must be whole
        assert got - FORUM_EQUATIONS == Counter()
        assert got[r"\sum_{n=1}^\infty \frac{1}{n^2}"] >= 2 and got[r"\int_1^\infty \frac{dx}{x^2} = 1"] == 1
        return
    assert got == FORUM_EQUATIONS
    assert result.equations == sum(FORUM_EQUATIONS.values()) == 9  # the empty [tex]   [/tex] is not one
    assert "[tex]" not in result.text.replace("[tex]this is not math", "")  # BBCode consumed...
    assert "[tex]this is not math, it is a code sample[/tex]" in result.text  # ...but never in code


def test_empty_equations_are_dropped():
    html = "<html><body><p>Before $$   $$ middle \\( \\) and \\[ \\, \\] after $$x$$.</p></body></html>"
    result = PageRenderer("python").render([html])[0]
    assert result.equations == 1
    assert squash_whitespace(result.text) == "Before middle and after $$x$$ ."


def test_math_classed_label_is_not_an_equation():
    html = ('<html><body><div class="math">Mathematics</div><p>See <span class="math inline">x^2</span> and '
            '<span class="math">n</span>.</p></body></html>')
    result = PageRenderer("python").render([html])[0]
    assert result.equations == 2
    assert "Mathematics" in result.text and "$x^2$" in result.text and "$n$" in result.text
