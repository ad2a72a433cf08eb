"""Math detection and normalisation: every source form -> TeX, once, nothing of its rendering left."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from dataengine.connectors.math.compare import squash_whitespace
from dataengine.connectors.math.detect import has_math_markers, normalise_math
from dataengine.connectors.math.dom import body_of, parse_page, strip_non_content
from dataengine.connectors.math.equations import is_empty_tex
from dataengine.connectors.math.images import tex_from_image
from dataengine.connectors.math.mathml_to_latex import mathml_to_latex
from dataengine.connectors.math.page import PageRenderer
from dataengine.connectors.math.render import render_text

DATA = Path(__file__).parent / "data" / "math"


def run(body: str, single_dollar: bool = False) -> tuple[list, str]:
    """(equations, rendered text with $tex$ put back) for a page body."""
    doc = parse_page(f"<html><head><title>t</title></head><body>{body}</body></html>")
    sink = normalise_math(doc, single_dollar=single_dollar)
    strip_non_content(doc)
    text, kept = sink.substitute(render_text(body_of(doc)))
    assert sorted(kept) == list(range(len(sink.equations))), "every equation must reach the text exactly once"
    return sink.equations, text


@pytest.fixture(scope="module")
def rendered():
    with gzip.open(DATA / "rendered" / "katex_mathjax3_rendered.jsonl.gz", "rt") as fh:
        return [json.loads(line) for line in fh]


@pytest.mark.parametrize("form", ["katex_html", "katex_mathml"])
def test_annotated_forms_recover_the_source_tex(rendered, form):
    """KaTeX HTML / MathML: >= 98% recover the source TeX (whitespace-normalised), each once,
    with nothing of KaTeX's HTML rendering or MathML text left in the page text."""
    n = recovered = clean = 0
    for record in rendered:
        if record.get("katex_error"):
            continue
        n += 1
        equations, text = run(f"<p>Before {record[form]} after.</p>")
        if is_empty_tex(record["tex"]):  # e.g. a lone "\\,": typesets to nothing, dropped
            assert equations == [] and squash_whitespace(text) == "Before after."
            recovered += 1
            clean += 1
            continue
        assert len(equations) == 1
        tex = equations[0].tex
        recovered += squash_whitespace(tex) == squash_whitespace(record["tex"])
        delimited = f"$${tex}$$" if equations[0].display else f"${tex}$"
        clean += squash_whitespace(text.replace(delimited, "EQ")) == "Before EQ after."
    assert n == 411
    assert recovered / n >= 0.98
    assert clean == n


@pytest.mark.parametrize("form", ["mathjax3_chtml", "mathjax3_mathml"])
def test_mathjax3_forms_give_one_converted_equation_each(rendered, form):
    """MathJax 3 keeps no TeX: the assistive MathML is converted, once, and the CHTML glyphs go."""
    n = 0
    for record in rendered[:120]:
        if record.get("mathjax_error"):
            continue
        markup = record[form]
        if form == "mathjax3_mathml":
            markup = f"<mjx-container><mjx-assistive-mml>{markup}</mjx-assistive-mml></mjx-container>"
        equations, text = run(f"<p>Before {markup} after.</p>")
        if not equations:  # only spacing converted (a lone "\\,", \\rule boxes): an empty equation, dropped
            assert is_empty_tex(mathml_to_latex(record["mathjax3_mathml"]))
            continue
        assert len(equations) == 1 and equations[0].form == "mathjax3"
        assert "Before" in text and "after." in text
        n += 1
    assert n > 100


def test_mathjax2_scripts_drop_preview_and_rendering():
    body = (
        '<p>Let <span class="MathJax_Preview">a^2</span><span class="MathJax" id="MathJax-Element-1-Frame">'
        '<nobr><span class="math">a2</span></nobr></span><script type="math/tex" id="MathJax-Element-1">a^2</script>'
        ' be given.</p><div class="MathJax_Display"><span class="MathJax" id="MathJax-Element-2-Frame">x</span></div>'
        '<script type="math/tex; mode=display" id="MathJax-Element-2">\\sum_i x_i < 1</script>'
        '<p>Then <script type="math/asciimath">sum_(i=1)^n i</script> holds.</p>'
        '<script type="math/mml"><math><mfrac><mi>p</mi><mi>q</mi></mfrac></math></script>'
    )
    equations, text = run(body)
    assert [(e.tex, e.display, e.form) for e in equations[:2]] == [("a^2", False, "mathjax2"), (r"\sum_i x_i < 1", True, "mathjax2")]
    assert text.count("a^2") == 1 and "a2" not in text
    assert "$$\\sum_i x_i < 1$$" in text
    assert "`sum_(i=1)^n i`" in text  # AsciiMath is kept, marked with its own delimiters
    assert "$\\frac{p}{q}$" in text


def test_mathml_alttext_annotation_and_presentation():
    body = (
        '<p>A <math alttext="x^{2}" display="inline"><msup><mi>x</mi><mn>2</mn></msup></math> and '
        '<math><semantics><mi>y</mi><annotation encoding="application/x-tex">\\hat y</annotation></semantics></math> and '
        '<math display="block"><mroot><mi>z</mi><mn>3</mn></mroot></math></p>'
    )
    equations, text = run(body)
    assert [(e.tex, e.display) for e in equations] == [("x^{2}", False), (r"\hat y", False), (r"\sqrt[3]{z}", True)]
    assert "A $x^{2}$ and $\\hat y$ and" in text and "$$\\sqrt[3]{z}$$" in text


def test_wikipedia_math_element_is_one_equation_not_two():
    body = (
        '<p>Euler: <span class="mwe-math-element"><span class="mwe-math-mathml-inline" style="display: none;">'
        '<math alttext="{\\displaystyle e^{i\\pi }+1=0}"><semantics><mrow><msup><mi>e</mi><mrow><mi>i</mi><mi>π</mi></mrow></msup>'
        '<mo>+</mo><mn>1</mn><mo>=</mo><mn>0</mn></mrow><annotation encoding="application/x-tex">{\\displaystyle e^{i\\pi }+1=0}'
        '</annotation></semantics></math></span><img src="https://wikimedia.org/api/rest_v1/media/math/render/svg/abc" '
        'class="mwe-math-fallback-image-inline" alt="{\\displaystyle e^{i\\pi }+1=0}"></span>.</p>'
    )
    equations, text = run(body)
    assert [e.tex for e in equations] == [r"e^{i\pi }+1=0"]
    assert text == r"Euler: $e^{i\pi }+1=0$."


def test_stackexchange_and_tex_delimiters_in_text():
    body = (
        '<p>SE: <span class="math-container">$\\alpha_1$</span> and <span class="math-container">$$\\beta$$</span></p>'
        "<p>Raw \\(a&lt;b\\) and \\[c+d\\] and $$e$$ and \\begin{align*} f &= g \\end{align*}.</p>"
        "<p>Costs $5 and $10.</p><pre>$not math$ \\(nor this\\)</pre>"
    )
    equations, text = run(body)
    assert [e.tex for e in equations] == [r"\alpha_1", r"\beta", "a<b", "c+d", "e", r"\begin{align*} f &= g \end{align*}"]
    assert "Costs $5 and $10." in text  # money is not math
    assert "$not math$ \\(nor this\\)" in text  # code is left alone
    equations, _ = run("<p>With a typesetter: $x_1$ but not $5 and $10.</p>", single_dollar=True)
    assert [e.tex for e in equations] == ["x_1"]


@pytest.mark.parametrize(
    "src,alt,css,expected",
    [
        ("https://latex.codecogs.com/svg.image?\\dpi{110}\\frac{a}{b}", "", [], r"\frac{a}{b}"),
        ("https://latex.codecogs.com/gif.latex?x%5E2%20+%20y", "x^2", [], "x^2 + y"),
        ("https://s0.wp.com/latex.php?latex=%5Calpha+%2B+1&bg=ffffff", "", [], r"\alpha + 1"),
        ("https://chart.googleapis.com/chart?cht=tx&chl=x_1", "", [], "x_1"),
        ("/img/eq1.png", "\\sqrt{2}", ["tex"], r"\sqrt{2}"),
        ("/img/photo.png", "a cat", ["tex"], None),
        ("/img/photo.png", "\\sqrt{2}", ["photo"], None),
    ],
)
def test_formula_images(src, alt, css, expected):
    assert tex_from_image(src, alt, css) == expected


def test_latexml_every_alttext_exactly_once():
    renderer = PageRenderer("python")
    for path in sorted((DATA / "latexml").glob("*.xml")):
        raw = path.read_text(encoding="utf-8")
        alts = Counter(el.get("alttext") for el in etree.fromstring(raw.encode()).iter("{*}math") if el.get("alttext"))
        page = renderer.render([raw])[0]
        assert page.status == "ok", path.name
        assert page.equations == sum(alts.values())
        for alt, n in alts.items():
            # "$$x$$" contains "$x$" once, so this counts inline and display occurrences alike
            assert page.text.count(f"${alt}$") == n, (path.name, alt)


def test_fast_skip_markers():
    assert not has_math_markers("<html><body><p>Prices from $5. Call (555) 123.</p><script>$('a')</script></body></html>")
    for marker in ("<math>", 'type="math/tex"', "<mjx-container>", 'class="katex"', "\\(x\\)", "$$x$$",
                   "latex.codecogs.com", 'alttext="x"'):
        assert has_math_markers(f"<p>{marker}</p>"), marker


def test_mathjax3_svg_without_mathml_is_rebuilt_from_the_glyph_tree():
    """MathJax SVG output keeps the MathML tree in data-mml-node groups and glyphs in data-c."""
    with gzip.open(DATA / "pairs" / "mathpix_mathjax_svg.jsonl.gz", "rt") as fh:
        records = [json.loads(line) for line in fh]
    for record in records:
        equations, text = run(record["mathjax_svg_html"])
        assert len(equations) == record["mathjax_svg_html"].count("<mjx-container")
        assert all(e.form == "mathjax3_svg" for e in equations)
    first = run(records[0]["mathjax_svg_html"])[0]
    assert [e.tex for e in first] == [r"\underline{w}-"]
