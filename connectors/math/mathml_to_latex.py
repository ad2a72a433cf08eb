"""Presentation MathML -> LaTeX, for pages whose MathML carries no TeX annotation.

MathJax 3 (its assistive MathML), KaTeX without annotation, MathML written by hand or by
converters: the structure (fractions, roots, scripts, under/over, tables, fences) maps to
TeX commands and the characters to TeX symbols (connectors/math/symbols.py). The output
aims at TeX that renders back to the same MathML, not at reproducing the author's exact
spelling, which MathML no longer has.
"""

from __future__ import annotations

import re

from lxml import etree

from dataengine.connectors.math import symbols as sym

_ALIGN_MARK = "\x00"
_UNKNOWN_MACRO = re.compile(r"^\\[A-Za-z]+$")
_CONTROL_WORD_END = re.compile(r"\\[A-Za-z]+$")
_SPACED_OPERATORS = {"liminf", "limsup", "injlim", "projlim"}  # written "lim inf" with a thin space
_SIDE_SCRIPT_OPERATORS = set("∫∬∭∮⨌∯∰")
_LARGE_OPERATORS = set("∑∏∐⋂⋃⨁⨂⨀⋁⋀⨄⨆∫∬∭∮⨌")
_SCRIPT_TAGS = {"msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts"}
_TEX_ENCODINGS = {"application/x-tex", "tex", "latex", "text/x-tex", "application/x-latex", "text/latex"}
_BRACES_ACCENTS = {r"\overbrace", r"\underbrace"}
_MATRIX_FENCES = {("(", ")"): "pmatrix", ("[", "]"): "bmatrix", (r"\{", r"\}"): "Bmatrix",
                  ("|", "|"): "vmatrix", (r"\|", r"\|"): "Vmatrix"}
_LETTER_VARIANTS = {"double-struck", "fraktur", "bold-fraktur", "script", "bold-script"}
_DOUBLE_BARS = {"∥", "‖", "||"}
_WHITESPACE_RUN = re.compile(r"[ \t\r\n\u00a0]+")
# precomposed accented letters (á, ö, ...) in <mi>: MathML has no accent structure for them
_COMBINING_ACCENTS = {"\u0301": r"\acute", "\u0300": r"\grave", "\u0302": r"\hat", "\u0303": r"\tilde",
                      "\u0304": r"\bar", "\u0306": r"\breve", "\u0307": r"\dot", "\u0308": r"\ddot",
                      "\u030c": r"\check", "\u030a": r"\mathring"}
_SPACES_EM = ((-0.17, r"\!"), (0.17, r"\,"), (0.23, r"\:"), (0.28, r"\;"), (0.34, r"\ "), (1.0, r"\quad"),
              (2.0, r"\qquad"))


def local_name(el) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def parse_mathml(markup: str):
    """Parse a MathML string (namespaced or not, HTML entities tolerated) to an element."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, huge_tree=True)
    root = etree.fromstring(markup.encode("utf-8"), parser)
    if root is None:
        raise ValueError("not MathML")
    if local_name(root) != "math":
        found = next((el for el in root.iter() if local_name(el) == "math"), None)
        root = found if found is not None else root
    return root


def tex_annotation(math_el) -> str | None:
    """The TeX a <math> carries in <annotation encoding="application/x-tex"> (KaTeX, MathJax, arXiv)."""
    for el in math_el.iter():
        if local_name(el) == "annotation" and (el.get("encoding") or "").strip().lower() in _TEX_ENCODINGS:
            text = (el.text or "").strip()
            if text:
                return text
    return None


def mathml_to_latex(mathml) -> str:
    """LaTeX (without $ delimiters) for a <math> element or MathML string."""
    el = parse_mathml(mathml) if isinstance(mathml, str) else mathml
    return _Converter().node(el).replace(_ALIGN_MARK, "").strip()


def _text(el) -> str:
    return "".join(el.itertext()).strip()


def _join(parts: list[str]) -> str:
    """Concatenate TeX pieces, with a space only where a control word would swallow a letter."""
    out = ""
    for part in parts:
        if not part:
            continue
        if out and _CONTROL_WORD_END.search(out) and (part[0].isalpha()):
            out += " "
        out += part
    return out


def _group(tex: str) -> str:
    return "{" + tex + "}"


def _script_arg(tex: str) -> str:
    """Argument of ^ or _: bare for one character, braced otherwise."""
    if len(tex) == 1 and tex.isalnum():
        return tex
    return _group(tex)


def _em(width: str | None) -> float | None:
    if not width:
        return None
    match = re.fullmatch(r"\s*(-?[\d.]+)\s*(em|ex|pt|px|mu)?\s*", width)
    if not match:
        named = {"thinmathspace": 0.167, "mediummathspace": 0.222, "thickmathspace": 0.278,
                 "veryverythinmathspace": 0.056, "verythinmathspace": 0.111, "verythickmathspace": 0.333,
                 "veryverythickmathspace": 0.389, "negativethinmathspace": -0.167}
        return named.get(width.strip())
    value = float(match.group(1))
    unit = match.group(2) or "em"
    return value * {"em": 1, "ex": 0.43, "pt": 0.1, "px": 0.0625, "mu": 1 / 18}[unit]


class _Converter:
    """Recursive descent over the MathML tree; one method per element family."""

    def node(self, el) -> str:
        name = local_name(el)
        handler = getattr(self, "_" + name.replace("-", "_"), None)
        if handler is None:
            return self.row(_kids(el))
        return handler(el)

    # -- containers --------------------------------------------------------------------
    def row(self, children: list) -> str:
        children = [c for c in children if local_name(c) not in ("annotation", "annotation-xml")]
        table = self._fenced_table(children)
        if table is not None:
            return table
        parts: list[str] = []
        i = 0
        while i < len(children):
            child = children[i]
            # (  mfrac[linethickness=0]  )  ->  \binom
            if i + 2 < len(children) and _fence_char(children[i]) == "(" and _fence_char(children[i + 2]) == ")":
                middle = _unwrap(children[i + 1])
                if local_name(middle) == "mfrac" and _zero_thickness(middle):
                    num, den = _kids(middle)[:2]
                    parts.append(rf"\binom{{{self.node(num)}}}{{{self.node(den)}}}")
                    i += 3
                    continue
            parts.append(self.node(child))
            i += 1
        fenced = self._fenced_row(children)
        if fenced is not None:
            return fenced
        return _join(parts)

    def _fenced_row(self, children: list) -> str | None:
        """\\left ... \\right (or a matrix / cases environment) for a row wrapped in stretchy fences."""
        if len(children) < 2:
            return None
        first, last = children[0], children[-1]
        if not (_is_stretchy_fence(first, "OPEN") and _is_stretchy_fence(last, "CLOSE")):
            return None
        open_tex, close_tex = self._fence_tex(first), self._fence_tex(last)
        inner = children[1:-1]
        if len(inner) == 1 and local_name(_unwrap(inner[0])) == "mtable":
            table = _unwrap(inner[0])
            env = _MATRIX_FENCES.get((open_tex, close_tex))
            if env is not None:
                return self._table(table, env)
        body = self.row(inner)
        return _join([rf"\left{open_tex}", body, rf"\right{close_tex}"])

    def _fenced_table(self, children: list) -> str | None:
        """``{`` + table (+ empty fence) -> cases; ``(`` table ``)`` -> pmatrix, ...

        Fences are stretchy by MathML's operator dictionary, so Wikipedia and MathJax often
        write them without ``stretchy``/``fence`` attributes; only ``stretchy="false"`` opts out.
        """
        if len(children) not in (2, 3) or local_name(_unwrap(children[1])) != "mtable":
            return None
        fences = [children[0]] + children[2:]
        if any(_fence_char(f) is None or (_unwrap(f).get("stretchy") or "").lower() == "false" for f in fences):
            return None
        open_tex = self._fence_tex(children[0])
        close_tex = self._fence_tex(children[2]) if len(children) == 3 else "."
        table = _unwrap(children[1])
        env = _MATRIX_FENCES.get((open_tex, close_tex))
        if env is None and open_tex == r"\{" and close_tex == ".":
            if len(children) == 2 or _cases_close(children[2], table):
                env = "cases"
            else:  # \left\{ \begin{array} ... \right.
                return rf"\left\{{{self._table(table, 'array', _column_spec(table))}\right."
        return self._table(table, env) if env else None

    def _fence_tex(self, mo) -> str:
        text = _text(mo)
        if not text:
            return "."
        if text in _DOUBLE_BARS:
            return r"\|"
        tex = sym.char_to_latex(text) if len(text) == 1 else text
        return tex or "."

    def _math(self, el) -> str:
        return self.row(_kids(el))

    _mrow = _mstyle = _mpadded = _merror = _math

    def _semantics(self, el) -> str:
        children = [c for c in _kids(el) if local_name(c) not in ("annotation", "annotation-xml")]
        return self.row(children[:1])

    def _maction(self, el) -> str:
        children = _kids(el)
        return self.node(children[0]) if children else ""

    def _annotation(self, el) -> str:
        return ""

    _annotation_xml = _none = _mprescripts = _malignmark = _annotation

    def _maligngroup(self, el) -> str:
        return _ALIGN_MARK  # becomes a column break inside a table cell (mathpix / MathJax aligned)

    def _mphantom(self, el) -> str:
        return rf"\phantom{{{self.row(_kids(el))}}}"

    def _menclose(self, el) -> str:
        body = self.row(_kids(el))
        notation = set((el.get("notation") or "longdiv").split())
        if {"updiagonalstrike", "downdiagonalstrike"} <= notation:
            return rf"\xcancel{{{body}}}"
        for key, cmd in (("updiagonalstrike", r"\cancel"), ("downdiagonalstrike", r"\bcancel"),
                         ("horizontalstrike", r"\sout"), ("radical", r"\sqrt"), ("top", r"\overline"),
                         ("bottom", r"\underline")):
            if key in notation:
                return f"{cmd}{{{body}}}"
        return rf"\boxed{{{body}}}"

    def _mfenced(self, el) -> str:
        open_ch, close_ch = el.get("open", "("), el.get("close", ")")
        seps = [s for s in (el.get("separators", ",") or "").replace(" ", "")] or [""]
        parts = []
        for k, child in enumerate(_kids(el)):
            if k:
                parts.append(seps[min(k - 1, len(seps) - 1)])
            parts.append(self.node(child))
        children = _kids(el)
        open_tex = sym.char_to_latex(open_ch) if open_ch else "."
        close_tex = sym.char_to_latex(close_ch) if close_ch else "."
        if len(children) == 1 and local_name(children[0]) == "mtable":
            env = _MATRIX_FENCES.get((open_tex, close_tex))
            if env:
                return self._table(children[0], env)
        return _join([rf"\left{open_tex}", *parts, rf"\right{close_tex}"])

    # -- tokens ------------------------------------------------------------------------
    def _mi(self, el) -> str:
        text = _text(el)
        if not text:
            return ""
        variant = el.get("mathvariant")
        if len(text) == 1:
            accented = _decomposed_accent(text)
            if accented is not None:
                base, accent = accented
                return f"{accent}{{{base}}}"
            if variant == "normal" and text.isascii() and text.isalpha() and (
                _applies_function(el) or el.get("data-mjx-texclass") == "OP"
            ):
                return rf"\operatorname{{{text}}}"  # \operatorname{E}, \operatorname{P}: upright, then U+2061
            letter, styled = sym.plain_letter(text)
            variant = variant or styled
            tex = sym.char_to_latex(letter) if len(letter) == 1 else letter
            if variant in (None, "italic"):
                return tex
            if variant == "normal" and not (len(letter) == 1 and letter.isascii() and letter.isalpha()):
                return tex  # upright Greek capitals and symbols are upright already
            cmd = sym.VARIANTS.get(variant)
            if cmd == r"\mathbf" and tex.startswith("\\"):
                cmd = r"\boldsymbol"
            return f"{cmd}{{{tex}}}" if cmd else tex
        if "".join(text.split()) in _SPACED_OPERATORS:
            return "\\" + "".join(text.split())
        if text in sym.FUNCTION_NAMES:
            return "\\" + text
        if _applies_function(el):  # "sn" followed by U+2061 FUNCTION APPLICATION: \operatorname{sn}
            return rf"\operatorname{{{text}}}"
        letters = "".join(sym.char_to_latex(ch) for ch in text)
        if el.get("data-mjx-texclass") == "OP":
            return rf"\operatorname{{{letters}}}"
        cmd = sym.VARIANTS.get(variant or "normal", r"\mathrm")
        if not text.isalpha() and variant is None:
            return letters if all(not c.isalpha() for c in text) else rf"\mathrm{{{letters}}}"
        return f"{cmd}{{{letters}}}"

    def _mn(self, el) -> str:
        text = _text(el)
        out = "".join(sym.char_to_latex(sym.plain_letter(ch)[0]) for ch in text)
        variant = el.get("mathvariant")
        if variant and variant not in ("normal", "italic") and sym.VARIANTS.get(variant):
            return f"{sym.VARIANTS[variant]}{{{out}}}"
        return out

    def _mo(self, el) -> str:
        text = _text(el)
        if not text:
            return ""
        if len(text) > 1:
            if "".join(text.split()) in _SPACED_OPERATORS:
                return "\\" + "".join(text.split())
            if text in sym.FUNCTION_NAMES:
                return "\\" + text
            if text.isalpha():
                return rf"\operatorname{{{text}}}"
            return "".join(sym.char_to_latex(ch) for ch in text)
        if text in ("′", "″", "‴"):
            return sym.LETTERLIKE[text]
        if text in ("∥", "‖") and el.get("data-mjx-texclass") in ("ORD", "OPEN", "CLOSE"):
            return r"\|"  # MathJax writes \| as an ordinary double bar, \parallel as a relation
        return sym.char_to_latex(text)

    def _mtext(self, el) -> str:
        raw = "".join(el.itertext())
        if not raw.strip():
            n = len(raw.replace("\u200b", ""))
            return r"\ " * min(n, 2) if n else ""
        if _UNKNOWN_MACRO.match(raw.strip()):
            return raw.strip()  # MathJax shows a macro it does not know as text: keep the macro
        raw = _WHITESPACE_RUN.sub(" ", raw)  # line breaks and indentation of the source are not text
        variant = el.get("mathvariant")
        math_cmd = sym.VARIANTS.get(variant or "")
        if variant in _LETTER_VARIANTS and raw.strip().isalpha() and raw.strip().isascii():
            return f"{math_cmd}{{{raw.strip()}}}"  # \mathbb{R} written as <mtext mathvariant="double-struck">
        cmd = {"bold": r"\textbf", "italic": r"\textit", "monospace": r"\texttt"}.get(variant or "", r"\text")
        return f"{cmd}{{{sym.escape_text(raw)}}}"

    def _ms(self, el) -> str:
        return rf'\text{{"{sym.escape_text(_text(el))}"}}'

    def _mspace(self, el) -> str:
        if el.get("linebreak") == "newline":
            return r"\\"
        width = _em(el.get("width"))
        if width is None or abs(width) < 0.05:
            return ""
        best = min(_SPACES_EM, key=lambda pair: abs(pair[0] - width))
        return best[1]

    def _mglyph(self, el) -> str:
        return el.get("alt", "")

    # -- layout ------------------------------------------------------------------------
    def _mfrac(self, el) -> str:
        children = _kids(el)
        if len(children) < 2:
            return self.row(children)
        num, den = self.node(children[0]), self.node(children[1])
        if el.get("bevelled") == "true":
            return _join([_group(num), "/", _group(den)])
        if _zero_thickness(el):
            return rf"\genfrac{{}}{{}}{{0pt}}{{}}{{{num}}}{{{den}}}"
        return rf"\frac{{{num}}}{{{den}}}"

    def _msqrt(self, el) -> str:
        return rf"\sqrt{{{self.row([k for k in _kids(el) if not _is_surd(k)])}}}"

    def _mroot(self, el) -> str:
        children = [k for k in _kids(el) if not _is_surd(k)]
        if len(children) < 2:
            return self._msqrt(el)
        return rf"\sqrt[{self.node(children[1])}]{{{self.node(children[0])}}}"

    def _base(self, el) -> str:
        tex = self.node(el)
        inner = _unwrap(el)
        if not tex:
            return "{}"
        if local_name(inner) in _SCRIPT_TAGS and _has_top_level_script(tex):
            return _group(tex)
        if local_name(inner) in ("mrow", "mstyle") and len(_kids(inner)) > 1 and not tex.startswith(r"\left"):
            return _group(tex)
        return tex

    def _scripts(self, base: str, sub, sup) -> str:
        out = base
        if sub is not None:
            sub_tex = self.node(sub)
            out += "_" + _script_arg(sub_tex)
        if sup is not None:
            prime = _prime(sup)
            if prime:
                out += prime
            else:
                out += "^" + _script_arg(self.node(sup))
        return out

    def _msub(self, el) -> str:
        children = _kids(el)
        if len(children) < 2:
            return self.row(children)
        return self._scripts(self._base(children[0]), children[1], None)

    def _msup(self, el) -> str:
        children = _kids(el)
        if len(children) < 2:
            return self.row(children)
        return self._scripts(self._base(children[0]), None, children[1])

    def _msubsup(self, el) -> str:
        children = _kids(el)
        if len(children) < 3:
            return self.row(children)
        return self._scripts(self._base(children[0]), children[1], children[2])

    def _mmultiscripts(self, el) -> str:
        children = _kids(el)
        if not children:
            return ""
        base = self._base(children[0])
        post, pre, target = [], [], None
        target = post
        for child in children[1:]:
            if local_name(child) == "mprescripts":
                target = pre
                continue
            target.append(child)
        out = ""
        if pre:
            out += "{}" + self._script_pairs(pre)
        return out + base + self._script_pairs(post)

    def _script_pairs(self, items: list) -> str:
        out = ""
        for k in range(0, len(items) - 1, 2):
            sub, sup = items[k], items[k + 1]
            sub_tex, sup_tex = self.node(sub), self.node(sup)
            if sub_tex:
                out += "_" + _script_arg(sub_tex)
            if sup_tex:
                out += "^" + _script_arg(sup_tex)
        return out

    def _mover(self, el) -> str:
        children = _kids(el)
        if len(children) < 2:
            return self.row(children)
        base_el, over_el = children[0], children[1]
        accent = self._accent(base_el, over_el, sym.OVER_ACCENTS, el.get("accent"))
        if accent:
            return accent
        if _is_brace_accent(base_el) or _takes_limits(base_el):
            return self._base(base_el) + _limits(base_el) + "^" + _script_arg(self.node(over_el))
        return rf"\overset{{{self.node(over_el)}}}{{{self.node(base_el)}}}"

    def _munder(self, el) -> str:
        children = _kids(el)
        if len(children) < 2:
            return self.row(children)
        base_el, under_el = children[0], children[1]
        accent = self._accent(base_el, under_el, sym.UNDER_ACCENTS, el.get("accentunder"))
        if accent:
            return accent
        if _is_brace_accent(base_el) or _takes_limits(base_el):
            return self._base(base_el) + _limits(base_el) + "_" + _script_arg(self.node(under_el))
        return rf"\underset{{{self.node(under_el)}}}{{{self.node(base_el)}}}"

    def _munderover(self, el) -> str:
        children = _kids(el)
        if len(children) < 3:
            return self.row(children)
        base_el, under_el, over_el = children
        if _takes_limits(base_el):
            return (self._base(base_el) + _limits(base_el) + "_" + _script_arg(self.node(under_el))
                    + "^" + _script_arg(self.node(over_el)))
        inner = rf"\underset{{{self.node(under_el)}}}{{{self.node(base_el)}}}"
        return rf"\overset{{{self.node(over_el)}}}{{{inner}}}"

    def _accent(self, base_el, mark_el, table: dict, accent_attr: str | None) -> str | None:
        if local_name(_unwrap(mark_el)) != "mo" and accent_attr != "true":
            return None
        mark = _text(mark_el)
        if mark in ("―", "‾", "¯", "_") and table is sym.OVER_ACCENTS and _wide(base_el):
            return rf"\overline{{{self.node(base_el)}}}"
        if mark == "―":
            mark = "‾" if table is sym.OVER_ACCENTS else "_"
        cmd = table.get(mark)
        if cmd is None:
            return None
        stretchy = (_unwrap(mark_el).get("stretchy") or "").lower()
        if cmd in sym.WIDE_OVER and (stretchy == "true" or (stretchy != "false" and _wide(base_el))):
            cmd = sym.WIDE_OVER[cmd]
        return f"{cmd}{{{self.node(base_el)}}}"

    # -- tables ------------------------------------------------------------------------
    def _mtable(self, el) -> str:
        aligns = (el.get("columnalign") or "").split()
        alternating = all(a == ("right" if k % 2 == 0 else "left") for k, a in enumerate(aligns))
        # MathJax's aligned: right/left pairs; one "right" column when only maligngroups split it
        if aligns and alternating and (len(aligns) >= 2 or el.get("displaystyle") == "true"):
            return self._table(el, "aligned")
        if aligns and aligns[0] == "left" and len(set(aligns)) == 1:
            return self._table(el, "array", "l")
        return self._table(el, "matrix")

    def _rows(self, el) -> list[list]:
        rows = []
        for tr in _kids(el):
            name = local_name(tr)
            if name not in ("mtr", "mlabeledtr"):
                continue
            cells = [td for td in _kids(tr) if local_name(td) == "mtd"]
            if name == "mlabeledtr" and len(cells) > 1:
                cells = cells[1:]  # the equation number
            rows.append(cells)
        return rows

    def _table(self, el, env: str, column_align: str = "c") -> str:
        rows, columns = [], 1
        for cells in self._rows(el):
            texts = []
            for td in cells:
                cell = self.row(_kids(td)).strip()
                # maligngroup marks split a cell into columns; the first one starts the cell (only
                # one: a second mark right after it is an empty first column, "& = b" rows)
                if cell.startswith(_ALIGN_MARK):
                    cell = cell[1:]
                texts.extend(piece.strip() for piece in cell.split(_ALIGN_MARK))
            columns = max(columns, len(texts))
            rows.append(" & ".join(texts))
        body = r" \\ ".join(rows)
        if env == "array":
            spec = column_align if len(column_align) == columns else column_align[:1] * columns
            return rf"\begin{{array}}{{{spec}}}{body}\end{{array}}"
        return rf"\begin{{{env}}}{body}\end{{{env}}}"


def _has_top_level_script(tex: str) -> bool:
    """Does ``tex`` end in scripts outside any group (``x_1`` yes, ``\\hat{x}`` no)?"""
    depth = 0
    escaped = False
    for ch in tex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0 and ch in "_^'":
            return True
    return False


# -- helpers over elements -----------------------------------------------------------------
def _applies_function(el) -> bool:
    """Is ``el`` followed by U+2061 FUNCTION APPLICATION, or marked an operator by MathJax?"""
    following = el.getnext()
    while following is not None and not isinstance(following.tag, str):
        following = following.getnext()
    if following is not None and local_name(following) == "mo" and _text(following) == "\u2061":
        return True
    parent = el.getparent()
    return parent is not None and parent.get("data-mjx-texclass") == "OP" and len(_kids(parent)) == 1


def _cases_close(close, table) -> bool:
    """Is the empty fence after ``{`` + table the one ``cases`` writes (not ``\\right.``)?

    latex2mathml writes no closing fence for cases; MathJax 3 gives cases' closing fence
    ``symmetric``/``fence`` attributes that its ``\\right.`` lacks; MathJax 2 writes both
    alike but spaces array rows 4pt and cases rows .2em.
    """
    inner = _unwrap(close)
    if inner.get("symmetric") != "true":
        return False
    return (table.get("rowspacing") or "").strip() != "4pt"


_ALIGN_LETTER = {"left": "l", "right": "r", "center": "c"}


def _column_spec(table) -> str:
    """Array column letters from ``columnalign`` (of the table, else of the first row's cells)."""
    aligns = (table.get("columnalign") or "").split()
    if not aligns:
        row = next((r for r in _kids(table) if local_name(r) in ("mtr", "mlabeledtr")), None)
        aligns = [td.get("columnalign") or "center" for td in _kids(row)] if row is not None else []
    return "".join(_ALIGN_LETTER.get(a, "c") for a in aligns) or "c"


def _decomposed_accent(ch: str) -> tuple[str, str] | None:
    """(base letter, accent command) for a precomposed letter such as ``á``; None otherwise."""
    import unicodedata

    if ch.isascii() or not ch.isalpha():
        return None
    parts = unicodedata.normalize("NFD", ch)
    if len(parts) == 2 and parts[0].isascii() and parts[1] in _COMBINING_ACCENTS:
        return parts[0], _COMBINING_ACCENTS[parts[1]]
    return None


def _limits(base_el) -> str:
    """Integrals put scripts beside them unless told: under/over placement means \\limits."""
    return r"\limits" if _text(_unwrap(base_el)) in _SIDE_SCRIPT_OPERATORS else ""


def _is_surd(el) -> bool:
    """The radical sign itself, which MathJax's SVG output draws as a child of msqrt."""
    return local_name(el) == "mo" and _text(el) == "√"


def _kids(el) -> list:
    """Element children, without comments and processing instructions."""
    return [child for child in el if isinstance(child.tag, str)]


def _unwrap(el):
    """The single meaningful child of mrow/mstyle wrappers (MathJax nests them freely)."""
    while local_name(el) in ("mrow", "mstyle", "mpadded"):
        kids = _kids(el)
        if len(kids) != 1:
            break
        el = kids[0]
    return el


def _fence_char(el) -> str | None:
    inner = _unwrap(el)
    return _text(inner) if local_name(inner) == "mo" else None


def _is_stretchy_fence(el, role: str) -> bool:
    inner = _unwrap(el)
    if local_name(inner) != "mo":
        return False
    if inner.get("data-mjx-texclass") == role:
        return True
    if (inner.get("stretchy") or "").lower() == "false":
        return False
    return inner.get("fence") == "true" or (inner.get("stretchy") or "").lower() == "true"


def _zero_thickness(frac) -> bool:
    thickness = (frac.get("linethickness") or "").strip().lower()
    return thickness in ("0", "0pt", "0px", "0em", "0.0em", "zero")


def _prime(sup) -> str | None:
    inner = _unwrap(sup)
    text = _text(inner)
    if local_name(inner) in ("mo", "mi") and text and set(text) <= {"′", "″", "‴", "'"}:
        return "".join(sym.LETTERLIKE.get(ch, ch) for ch in text)
    return None


def _wide(el) -> bool:
    """More than one symbol under an accent: MathJax/KaTeX pick the wide accent then."""
    inner = _unwrap(el)
    if local_name(inner) in ("mi", "mn", "mo"):
        return len(_text(inner)) > 1
    return True


def _is_brace_accent(el) -> bool:
    inner = _unwrap(el)
    kids = _kids(inner)
    if local_name(inner) not in ("mover", "munder") or len(kids) < 2:
        return False
    return _text(kids[1]) in ("⏞", "⏟", "⎴", "⎵", "⏜", "⏝")


def _takes_limits(el) -> bool:
    """Large operators and lim-like functions: under/over scripts are their limits."""
    inner = _unwrap(el)
    name = local_name(inner)
    if name in ("msub", "msup", "msubsup") and _kids(inner):
        return _takes_limits(_kids(inner)[0])
    if name not in ("mo", "mi"):
        return False
    text = _text(inner)
    if inner.get("movablelimits") == "true" or inner.get("largeop") == "true":
        return True
    if inner.get("data-mjx-texclass") == "OP":
        return True
    return text in _LARGE_OPERATORS or text in sym.FUNCTION_NAMES
