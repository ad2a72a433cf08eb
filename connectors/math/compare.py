"""Comparing TeX strings: whitespace-normalised, canonical, and rendered back to MathML.

Used by the tests and benchmarks/math_quality.py to score recovered / converted TeX:

* :func:`squash_whitespace` - runs of whitespace become one space (how the recovered
  TeX of annotated forms must match its source);
* :func:`canonical_tex` - spelling differences that render the same are removed: spaces,
  braces around one token (``x^{2}`` = ``x^2``), spacing commands, ``\\dfrac`` = ``\\frac``,
  ``\\to`` = ``\\rightarrow``, ``\\left``/``\\big`` sizing;
* :func:`canonical_mathml` - MathML reduced to its structure and characters (no
  attributes, no mrow/mstyle wrappers) so two renderings can be compared.
"""

from __future__ import annotations

import re

_WS = re.compile(r"\s+")
_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|[^\s]", re.S)
_ALIASES = {
    r"\to": r"\rightarrow", r"\gets": r"\leftarrow", r"\le": r"\leq", r"\ge": r"\geq", r"\ne": r"\neq",
    r"\lbrace": r"\{", r"\rbrace": r"\}", r"\dfrac": r"\frac", r"\tfrac": r"\frac", r"\dbinom": r"\binom",
    r"\tbinom": r"\binom", r"\lvert": "|", r"\rvert": "|", r"\vert": "|", r"\lVert": r"\|", r"\rVert": r"\|",
    r"\Vert": r"\|", r"\land": r"\wedge", r"\lor": r"\vee", r"\lnot": r"\neg", r"\owns": r"\ni",
    r"\bmod": "mod", r"\colon": ":", r"\lbrack": "[", r"\rbrack": "]", r"\iff": r"\Longleftrightarrow",
    r"\implies": r"\Longrightarrow", r"\impliedby": r"\Longleftarrow", r"\dots": r"\ldots",
    r"\dotsc": r"\ldots", r"\dotsb": r"\cdots", r"\dotsm": r"\cdots", r"\mathop": "", r"\mathord": "",
    r"\mathbin": "", r"\mathrel": "", r"\limits": "", r"\nolimits": "", r"\displaystyle": "",
    r"\textstyle": "", r"\scriptstyle": "", r"\left": "", r"\right": "", r"\middle": "", r"\big": "",
    r"\Big": "", r"\bigg": "", r"\Bigg": "", r"\bigl": "", r"\bigr": "", r"\Bigl": "", r"\Bigr": "",
    r"\biggl": "", r"\biggr": "", r"\Biggl": "", r"\Biggr": "", r"\,": "", r"\;": "", r"\:": "", r"\!": "",
    r"\ ": "", "~": "", r"\quad": "", r"\qquad": "", r"\thinspace": "", r"\medspace": "",
    r"\thickspace": "", r"\enspace": "", r"\vec": r"\overrightarrow", r"\widehat": r"\hat",
    r"\widetilde": r"\tilde", r"\bar": r"\overline", r"\bf": r"\mathbf", r"\rm": r"\mathrm",
    r"\cal": r"\mathcal", r"\it": r"\mathit", r"\bm": r"\boldsymbol", r"\pmb": r"\boldsymbol",
    r"\textrm": r"\text", r"\mbox": r"\text", r"\hbox": r"\text", r"\emptyset": r"\varnothing",
    r"\prime": "'", r"\ldotp": ".", r"\cdotp": r"\cdot", r"\centerdot": r"\cdot", r"\lt": "<", r"\gt": ">",
    r"\neg": r"\neg", r"\ast": "*", r"\over": r"\over", r"\intop": r"\int", r"\smallint": r"\int",
    r"\epsilon": r"\epsilon", r"\operatorname": r"\operatorname", r"\{": r"\{",
}
_NAMED_OPERATOR = re.compile(r"\\operatorname\*?\{\\?([A-Za-z]+)\}|\\mathrm\{(sin|cos|tan|log|ln|exp|lim|max|min|sup|inf|det)\}")


def squash_whitespace(tex: str) -> str:
    return _WS.sub(" ", tex).strip()


def strip_delimiters(tex: str) -> str:
    """TeX without one pair of outer math delimiters ($$, $, \\[ \\], \\( \\))."""
    tex = tex.strip()
    for opening, closing in (("$$", "$$"), ("$", "$"), (r"\[", r"\]"), (r"\(", r"\)")):
        if tex.startswith(opening) and tex.endswith(closing) and len(tex) > len(opening) + len(closing):
            return tex[len(opening):-len(closing)].strip()
    return tex


def tex_tokens(tex: str) -> list[str]:
    return _TOKEN.findall(tex)


def canonical_tex(tex: str) -> str:
    """A form of ``tex`` that two spellings of the same formula share (see module doc)."""
    tex = _NAMED_OPERATOR.sub(lambda m: "\\" + (m.group(1) or m.group(2)), tex)
    tex = tex.replace(r"\right.", "").replace(r"\left.", "")
    tokens = []
    for tok in tex_tokens(tex):
        tok = _ALIASES.get(tok, tok)
        if tok:
            tokens.append(tok)
    return "".join(_strip_single_braces(tokens))


def _strip_single_braces(tokens: list[str]) -> list[str]:
    """Remove ``{`` ``}`` around exactly one token, and empty groups, until nothing changes."""
    changed = True
    while changed:
        changed = False
        out: list[str] = []
        i = 0
        while i < len(tokens):
            if tokens[i] == "{" and i + 2 < len(tokens) and tokens[i + 2] == "}" and tokens[i + 1] not in "{}":
                out.append(tokens[i + 1])
                i += 3
                changed = True
            elif tokens[i] == "{" and i + 1 < len(tokens) and tokens[i + 1] == "}" and not (
                out and out[-1].startswith("\\")
            ):
                i += 2
                changed = True
            else:
                out.append(tokens[i])
                i += 1
        tokens = out
    return tokens


def canonical_mathml(markup: str) -> str:
    """Structure and characters of a MathML string, without attributes and wrappers."""
    from dataengine.connectors.math.mathml_to_latex import local_name, parse_mathml

    root = parse_mathml(markup)
    parts: list[str] = []

    def walk(el):
        name = local_name(el)
        if name in ("annotation", "annotation-xml"):
            return
        wrapper = name in ("mrow", "mstyle", "math", "semantics", "mpadded", "mphantom")
        if not wrapper:
            parts.append(f"<{name}>")
        text = (el.text or "").strip()
        if text and name in ("mi", "mn", "mo", "mtext", "ms"):
            parts.append(_WS.sub("", text))
        for child in el:
            walk(child)
        if not wrapper:
            parts.append(f"</{name}>")

    walk(root)
    return "".join(parts)


def renders_equal(ours: str, reference: str) -> bool | None:
    """Do the two TeX strings render (with latex2mathml) to the same canonical MathML?

    None when latex2mathml cannot render the reference (the pair is not scored).
    """
    from latex2mathml.converter import convert

    try:
        ref = canonical_mathml(convert(reference))
    except Exception:  # noqa: BLE001 - latex2mathml rejects some valid TeX
        return None
    try:
        return canonical_mathml(convert(ours)) == ref
    except Exception:  # noqa: BLE001
        return False
