"""Math as pages carry it in markup -> TeX, one function per source form.

Each function finds its form in an lxml.html tree, turns every occurrence into TeX, and
replaces the whole occurrence (source *and* its rendering) with a placeholder from the
sink, so nothing is left for a later form or for the renderer to emit a second time.
They run in :data:`FORM_ORDER`: containers that hold other forms go first (a MathJax 3
container holds a <math>, a Wikipedia math element holds a <math> and an <img>).
"""

from __future__ import annotations

import re

from dataengine.connectors.math.dom import classes, remove_keep_tail, replace_with_text
from dataengine.connectors.math.equations import PLACEHOLDER, EquationSink
from dataengine.connectors.math.mathjax_svg import svg_to_mathml
from dataengine.connectors.math.mathml_to_latex import local_name, mathml_to_latex, tex_annotation

_MATHJAX_RENDER_CLASS = re.compile(r"MathJax|MJX|mjx-chtml", re.I)
_DISPLAYSTYLE_WRAP = re.compile(r"^\{\\(?:displaystyle|textstyle)\s*(.*)\}$", re.S)
_TEX_DELIMS = ((r"$$", r"$$", True), (r"\[", r"\]", True), (r"\(", r"\)", False), ("$", "$", False))


def unwrap_style(tex: str) -> str:
    """Wikipedia writes ``{\\displaystyle x}``: the $$ delimiters already say the style."""
    match = _DISPLAYSTYLE_WRAP.match(tex.strip())
    return match.group(1).strip() if match else tex.strip()


def _math_tex(math_el) -> str:
    """TeX for a <math>: its alttext (LaTeXML, arXiv, Wikipedia), its TeX annotation, or converted."""
    alt = (math_el.get("alttext") or "").strip()
    if alt:
        return unwrap_style(alt)
    annotated = tex_annotation(math_el)
    if annotated:
        return unwrap_style(annotated)
    return mathml_to_latex(math_el)


def _math_display(math_el) -> bool:
    return (math_el.get("display") or "").lower() == "block" or (math_el.get("mode") or "").lower() == "display"


def mathjax2_scripts(root, sink: EquationSink) -> None:
    """MathJax v2: <script type="math/tex[; mode=display]"> (or math/mml, math/asciimath).

    MathJax puts its rendering (MathJax_Preview, the MathJax / MathJax_Display frame)
    right before the script: those siblings go with it.
    """
    for script in list(root.iter("script")):
        kind = (script.get("type") or "").lower().replace(" ", "")
        if not kind.startswith("math/"):
            continue
        display = "mode=display" in kind
        body = script.text or ""
        previous = script.getprevious()
        while previous is not None and not (previous.tail or "").strip() and _is_mathjax_rendering(previous):
            before = previous.getprevious()
            remove_keep_tail(previous)
            previous = before
        if kind.startswith("math/tex"):
            placeholder = sink.add(body, display, "mathjax2")
        elif kind.startswith("math/mml"):
            from dataengine.connectors.math.mathml_to_latex import parse_mathml

            math_el = parse_mathml(body)
            placeholder = sink.add(_math_tex(math_el), display or _math_display(math_el), "mathjax2")
        elif "asciimath" in kind:
            placeholder = sink.add("", display, "asciimath", marked=body.strip())
        else:
            continue
        replace_with_text(script, placeholder, display)
    for el in list(root.iter()):
        if el.get("id") in ("MathJax_Message", "MathJax_Hidden", "MathJax_Font_Test") or "MathJax_Preview" in classes(el):
            remove_keep_tail(el)


def _is_mathjax_rendering(el) -> bool:
    if not isinstance(el.tag, str):
        return False
    element_id = el.get("id") or ""
    return bool(_MATHJAX_RENDER_CLASS.search(el.get("class") or "")) or element_id.endswith("-Frame")


def mathjax3_containers(root, sink: EquationSink) -> None:
    """MathJax v3: <mjx-container>, TeX from the assistive MathML it carries for screen readers."""
    for container in list(root.iter("mjx-container")):
        math_el = next((el for el in container.iter("math")), None)
        display = (container.get("display") or "").lower() == "true"
        if math_el is None:
            svg = next((el for el in container.iter("svg")), None)
            rebuilt = svg_to_mathml(svg) if svg is not None else None
            if rebuilt is None:
                continue  # CHTML output without assistive MathML: nothing left to recover
            replace_with_text(container, sink.add(mathml_to_latex(rebuilt), display, "mathjax3_svg"), display)
            continue
        placeholder = sink.add(_math_tex(math_el), display or _math_display(math_el), "mathjax3")
        replace_with_text(container, placeholder, display or _math_display(math_el))


def katex_spans(root, sink: EquationSink) -> None:
    """KaTeX: .katex (inside .katex-display for display math); the duplicate .katex-html goes too."""
    for el in list(root.iter("span", "div")):
        if "katex" not in classes(el) or el.getparent() is None:
            continue
        math_el = next((m for m in el.iter("math")), None)
        if math_el is None:
            continue  # output="html" only: no TeX to recover
        tex = tex_annotation(math_el) or mathml_to_latex(math_el)
        parent = el.getparent()
        display = "katex-display" in classes(parent) or _math_display(math_el)
        target = parent if "katex-display" in classes(parent) else el
        replace_with_text(target, sink.add(tex, display, "katex"), display)


def wikipedia_math(root, sink: EquationSink) -> None:
    """Wikipedia's .mwe-math-element: hidden MathML plus a fallback image of the same formula."""
    for el in list(root.iter("span", "div")):
        if "mwe-math-element" not in classes(el) or el.getparent() is None:
            continue
        math_el = next((m for m in el.iter("math")), None)
        img = next((i for i in el.iter("img")), None)
        if math_el is not None:
            tex, display = _math_tex(math_el), _math_display(math_el)
        elif img is not None and img.get("alt"):
            tex, display = unwrap_style(img.get("alt")), "display" in (img.get("class") or "")
        else:
            continue
        replace_with_text(el, sink.add(tex, display, "wikipedia"), display)


def mathml_elements(root, sink: EquationSink) -> None:
    """Any remaining <math>: LaTeXML/arXiv alttext, a TeX annotation, or converted presentation MathML."""
    for math_el in list(root.iter("math")):
        if math_el.getparent() is None or any(local_name(a) == "math" for a in math_el.iterancestors()):
            continue
        form = "latexml" if "ltx_Math" in classes(math_el) or math_el.get("alttext") else "mathml"
        display = _math_display(math_el)
        replace_with_text(math_el, sink.add(_math_tex(math_el), display, form), display)


def stackexchange_containers(root, sink: EquationSink) -> None:
    """StackExchange span.math-container holding raw ``$...$`` / ``$$...$$`` TeX."""
    for el in list(root.iter("span", "div")):
        if "math-container" not in classes(el) or el.getparent() is None:
            continue
        if len(el):  # already rendered by MathJax: its script was handled by mathjax2_scripts
            continue
        raw = (el.text or "").strip()
        for opening, closing, display in _TEX_DELIMS:
            if raw.startswith(opening) and raw.endswith(closing) and len(raw) > len(opening) + len(closing):
                tex = raw[len(opening):-len(closing)]
                replace_with_text(el, sink.add(tex, display, "stackexchange"), display)
                break


# Classes of elements that hold one formula's raw TeX for a client-side typesetter: pandoc
# (``math inline`` / ``math display``, with --katex without delimiters, with --mathjax in
# \\( \\)), Sphinx (``math notranslate``), jsMath, pymdown-extensions' arithmatex,
# MathJax's tex2jax_process opt-in class on a single formula.
RAW_TEX_CLASSES = {"math", "arithmatex", "tex", "latex", "math-tex", "mathtex"}


def raw_tex_containers(root, sink: EquationSink) -> None:
    """``<span class="math">`` / ``<div class="math">`` holding a formula's TeX as plain text.

    The page was crawled before KaTeX/MathJax ran, so the element's text is the TeX itself,
    with or without ``\\( \\)`` / ``\\[ \\]`` / ``$`` delimiters. An element with child
    elements is already rendered (handled by the forms before this one) or is prose.
    """
    for el in list(root.iter("span", "div")):
        css = classes(el)
        if not RAW_TEX_CLASSES.intersection(css) or el.getparent() is None or len(el):
            continue
        raw = (el.text or "").strip()
        if not raw or PLACEHOLDER.search(raw):
            continue
        display = el.tag == "div" or any("display" in c for c in css)
        for opening, closing, delimited_display in _TEX_DELIMS:
            if raw.startswith(opening) and raw.endswith(closing) and len(raw) >= len(opening) + len(closing):
                raw, display = raw[len(opening):len(raw) - len(closing)], delimited_display or display
                break
        else:
            if not looks_like_formula(raw):
                continue  # <div class="math">Mathematics</div>: a label styled as math, not TeX
        replace_with_text(el, sink.add(raw, display, "raw_tex"), display)


_FORMULA_SIGNS = re.compile(r"[\\^_{}=+<>|()\[\]\d*/~-]")


def looks_like_formula(text: str) -> bool:
    """Undelimited text of a math-classed element: TeX signs, or a short symbol such as ``x``."""
    return bool(_FORMULA_SIGNS.search(text)) or len(text.split()) == 1 and len(text) <= 3


FORM_ORDER = (
    mathjax2_scripts,
    mathjax3_containers,
    katex_spans,
    wikipedia_math,
    mathml_elements,
    stackexchange_containers,
    raw_tex_containers,
)
