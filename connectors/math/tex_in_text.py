"""TeX already written in the page text: ``\\(..\\)``, ``\\[..\\]``, ``$$..$$``, math environments,
forum BBCode (``[tex]``, ``[itex]``, ``[math]``, ``[latex]``), ``$..$``.

A crawler stores the HTML before MathJax/KaTeX runs in the browser, so pages that typeset
on the client hold their TeX as plain text between delimiters; forums keep the BBCode the
poster wrote and let MathJax read it. Single dollars are only read as math on pages that
load a TeX typesetter (otherwise ``$5 and $10`` is money). Text inside pre/code/script/style
is left alone. A formula broken over ``<br>`` lines (forum posts) is joined first.
"""

from __future__ import annotations

import re

from dataengine.connectors.math.equations import EquationSink

_ENVIRONMENTS = r"(?:equation|align|alignat|gather|multline|eqnarray|displaymath|math|flalign)\*?"
# One alternation scanned left to right: the outermost delimiter wins, so an environment
# written inside \( ... \) stays part of that formula.
_DELIMITED = re.compile(
    r"\[(?P<bbtag>(?i:tex|itex|math|latex))\](?P<bbcode>.*?)\[/(?P=bbtag)\]"
    r"|\$\$(?P<dd>.+?)\$\$"
    r"|\\\[(?P<bb>.+?)\\\]"
    r"|\\\((?P<pp>.+?)\\\)"
    r"|(?P<env>\\begin\{(?P<name>" + _ENVIRONMENTS + r")\}.+?\\end\{(?P=name)\})",
    re.S,
)
_SINGLE_DOLLAR = re.compile(r"(?<![\\$\w])\$(?![\s$])(?P<sd>(?:\\.|[^$\\])+?)(?<![\s\\])\$(?![\w$])", re.S)
# [tex] is display math on the forums that use it beside [itex]; the other tags are inline.
_BBCODE_DISPLAY = {"tex"}
_OPENING = re.compile(r"\\\[|\\\(|\$\$|\\begin\{" + _ENVIRONMENTS + r"\}|\[(?i:tex|itex|math|latex)\]")
_SKIP_TAGS = {"pre", "code", "script", "style", "textarea", "kbd", "samp", "tt", "noscript"}


def replace_tex_in_text(text: str, sink: EquationSink, single_dollar: bool) -> str:
    """``text`` with every delimited formula replaced by a placeholder from ``sink``."""

    def formula(match: re.Match) -> str:
        if match.group("pp") is not None:
            return sink.add(match.group("pp"), False, "text")
        if match.group("bbtag") is not None:
            display = match.group("bbtag").lower() in _BBCODE_DISPLAY
            placeholder = sink.add(match.group("bbcode"), display, "bbcode")
            return f" {placeholder} " if display else placeholder
        tex = match.group("dd") or match.group("bb") or match.group("env")
        return f" {sink.add(tex, True, 'text')} "

    text = _DELIMITED.sub(formula, text)
    if single_dollar:
        text = _SINGLE_DOLLAR.sub(lambda m: sink.add(m.group("sd"), False, "text"), text)
    return text


def tex_delimiters(root, sink: EquationSink, single_dollar: bool) -> None:
    """Apply :func:`replace_tex_in_text` to every text node outside code-like elements.

    The walk prunes code-like subtrees instead of testing each node's ancestors.
    """
    stack = [root]
    while stack:
        el = stack.pop()
        if isinstance(el.tag, str):
            join_across_breaks(el)
        if el.text and isinstance(el.tag, str):
            el.text = replace_tex_in_text(el.text, sink, single_dollar)
        children = [c for c in el if isinstance(c.tag, str) or c.tail]
        for child in children:
            if child.tail:  # a child's tail is text of this element, outside the child
                child.tail = replace_tex_in_text(child.tail, sink, single_dollar)
        stack.extend(reversed([c for c in children if isinstance(c.tag, str) and c.tag not in _SKIP_TAGS]))


def _is_break(el) -> bool:
    return isinstance(el.tag, str) and el.tag.lower() in ("br", "wbr")


def _opens_formula(text: str) -> bool:
    """Does ``text`` open a formula it does not close (``[tex]a+`` or ``\\[ x =``)?"""
    return bool(_OPENING.search(_DELIMITED.sub("", text)))


def join_across_breaks(el) -> None:
    """Join the text pieces around ``<br>`` children of ``el`` while a formula is open.

    Forum software turns each line break of a post into ``<br>``, so a multi-line
    ``[tex]...[/tex]`` or ``\\[...\\]`` arrives as several text nodes; the breaks inside
    it become newlines of the TeX.
    """
    if not any(_is_break(child) for child in el):
        return
    owner = None  # None: the piece is el.text; else the child whose tail it is
    for child in list(el):
        text = (el.text if owner is None else owner.tail) or ""
        if _is_break(child) and text and _opens_formula(text):
            joined = text.rstrip() + "\n" + (child.tail or "").lstrip()
            if owner is None:
                el.text = joined
            else:
                owner.tail = joined
            el.remove(child)
            continue
        owner = child
