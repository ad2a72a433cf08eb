"""MathJax 3 SVG output without assistive MathML -> MathML, from the SVG itself.

MathJax's SVG output keeps the MathML tree as nested ``<g data-mml-node="...">`` groups
and each glyph's code point in ``data-c`` (hex). Rebuilding the MathML from that recovers
the formula (then converted by mathml_to_latex) where no TeX and no MathML is left.
Stretchy delimiters are drawn from pieces (⎛⎜⎝ ...) or private-use glyphs: pieces are
mapped back to their delimiter, private-use glyphs are dropped.
"""

from __future__ import annotations

from lxml import etree

_PIECES = {
    "⎛": "(", "⎜": "(", "⎝": "(", "⎞": ")", "⎟": ")", "⎠": ")", "⎡": "[", "⎢": "[", "⎣": "[", "⎤": "]",
    "⎥": "]", "⎦": "]", "⎧": "{", "⎨": "{", "⎩": "{", "⎫": "}", "⎬": "}", "⎭": "}", "⎪": "", "⎮": "∫",
    "⌠": "∫", "⌡": "∫", "⎸": "|", "⎹": "|",
}
_TOKENS = {"mi", "mn", "mo", "mtext", "ms"}


def svg_to_mathml(svg):
    """A <math> element rebuilt from a MathJax SVG (an lxml element), or None without one."""
    start = next((g for g in svg.iter() if _mml_name(g) == "math"), None)
    if start is None:
        return None
    math = etree.Element("math")
    for child in start:
        _rebuild(child, math)
    return math


def _mml_name(el) -> str | None:
    return el.get("data-mml-node") if isinstance(el.tag, str) else None


def _rebuild(el, parent) -> None:
    name = _mml_name(el)
    if name is None:  # transform wrappers and nested <svg> of stretchy parts: look through them
        for child in el:
            _rebuild(child, parent)
        return
    node = etree.SubElement(parent, name)
    if name in _TOKENS:
        node.text = _glyphs(el, stretchy=name == "mo")
        if name == "mo" and not node.text and _only_private_glyphs(el) and len(parent) == 2:
            # a stretchy accent drawn from private-use pieces: MathJax does that for braces
            node.text = {"mover": "⏞", "munder": "⏟"}.get(parent.tag, "")
        return
    for child in el:
        _rebuild(child, node)
    if name == "msubsup" and len(node) == 3:
        node.insert(1, node[2])  # SVG draws base, superscript, subscript; MathML wants base, sub, sup


def _only_private_glyphs(el) -> bool:
    codes = [sub.get("data-c") for sub in el.iter() if isinstance(sub.tag, str) and sub.get("data-c")]
    return bool(codes) and all(0xE000 <= int(c, 16) <= 0xF8FF for c in codes if all(h in "0123456789ABCDEFabcdef" for h in c))


def _glyphs(el, stretchy: bool) -> str:
    chars = []
    for sub in el.iter():
        if not isinstance(sub.tag, str):
            continue
        code = sub.get("data-c")
        if code:
            try:
                ch = chr(int(code, 16))
            except ValueError:
                continue
            if 0xE000 <= ord(ch) <= 0xF8FF:
                continue  # MathJax's private-use glyph pieces
            chars.append(ch)
        elif etree.QName(sub).localname == "text" and sub.text:
            chars.append(sub.text)
    if stretchy and chars and all(c in _PIECES for c in chars):
        pieces = {_PIECES[c] for c in chars} - {""}
        return pieces.pop() if len(pieces) == 1 else ""
    if stretchy and len(chars) > 1 and len(set(chars)) == 1:
        return chars[0]  # an extender repeated to stretch
    return "".join(chars)
