"""Unicode characters of MathML token elements -> LaTeX commands.

One table for identifiers and operators: MathML carries characters (``∑``, ``≤``, ``α``),
TeX writes commands. Characters not listed are written as they are (valid in XeLaTeX /
MathJax / KaTeX, and what the renderers accept back).
"""

from __future__ import annotations

import unicodedata

GREEK = {
    "α": r"\alpha", "β": r"\beta", "γ": r"\gamma", "δ": r"\delta", "ϵ": r"\epsilon", "ε": r"\varepsilon",
    "ζ": r"\zeta", "η": r"\eta", "θ": r"\theta", "ϑ": r"\vartheta", "ι": r"\iota", "κ": r"\kappa",
    "λ": r"\lambda", "μ": r"\mu", "ν": r"\nu", "ξ": r"\xi", "ο": r"\omicron", "π": r"\pi", "ϖ": r"\varpi",
    "ρ": r"\rho", "ϱ": r"\varrho", "σ": r"\sigma", "ς": r"\varsigma", "τ": r"\tau", "υ": r"\upsilon",
    "ϕ": r"\phi", "φ": r"\varphi", "χ": r"\chi", "ψ": r"\psi", "ω": r"\omega", "ϝ": r"\digamma",
    "ϰ": r"\varkappa",
    "Γ": r"\Gamma", "Δ": r"\Delta", "Θ": r"\Theta", "Λ": r"\Lambda", "Ξ": r"\Xi", "Π": r"\Pi",
    "Σ": r"\Sigma", "Υ": r"\Upsilon", "Φ": r"\Phi", "Ψ": r"\Psi", "Ω": r"\Omega",
}

LETTERLIKE = {
    "ℓ": r"\ell", "ℏ": r"\hbar", "ℑ": r"\Im", "ℜ": r"\Re", "℘": r"\wp", "ℵ": r"\aleph", "ℶ": r"\beth",
    "ℷ": r"\gimel", "ı": r"\imath", "ȷ": r"\jmath", "∞": r"\infty", "∂": r"\partial", "∇": r"\nabla",
    "∅": r"\emptyset", "∀": r"\forall", "∃": r"\exists", "∄": r"\nexists", "¬": r"\neg", "⊤": r"\top",
    "⊥": r"\bot", "∠": r"\angle", "△": r"\triangle", "□": r"\square", "♠": r"\spadesuit",
    "♡": r"\heartsuit", "♢": r"\diamondsuit", "♣": r"\clubsuit", "♭": r"\flat", "♮": r"\natural",
    "♯": r"\sharp", "′": "'", "″": "''", "‴": "'''", "°": r"^\circ", "…": r"\ldots", "⋯": r"\cdots",
    "⋮": r"\vdots", "⋱": r"\ddots", "ð": r"\eth", "✓": r"\checkmark", "✠": r"\maltese", "§": r"\S",
    "¶": r"\P", "†": r"\dagger", "‡": r"\ddagger", "∁": r"\complement", "ℸ": r"\daleth", "Ⅎ": r"\Finv",
    "⅁": r"\Game", "℧": r"\mho",
}

OPERATORS = {
    "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div", "⋅": r"\cdot", "·": r"\cdot", "∗": r"\ast",
    "⋆": r"\star", "∘": r"\circ", "∙": r"\bullet", "⊕": r"\oplus", "⊖": r"\ominus", "⊗": r"\otimes",
    "⊘": r"\oslash", "⊙": r"\odot", "∩": r"\cap", "∪": r"\cup", "⊎": r"\uplus", "⊓": r"\sqcap",
    "⊔": r"\sqcup", "∧": r"\wedge", "∨": r"\vee", "∖": r"\setminus", "≀": r"\wr", "⋄": r"\diamond",
    "△": r"\bigtriangleup", "▽": r"\bigtriangledown", "◃": r"\triangleleft", "▹": r"\triangleright",
    "⨿": r"\amalg", "⊲": r"\lhd", "⊳": r"\rhd", "⊴": r"\unlhd", "⊵": r"\unrhd", "−": "-", "∕": "/",
    "∑": r"\sum", "∏": r"\prod", "∐": r"\coprod", "∫": r"\int", "∬": r"\iint", "∭": r"\iiint",
    "⨌": r"\iiiint", "∮": r"\oint", "⋂": r"\bigcap", "⋃": r"\bigcup", "⨁": r"\bigoplus",
    "⨂": r"\bigotimes", "⨀": r"\bigodot", "⋁": r"\bigvee", "⋀": r"\bigwedge", "⨄": r"\biguplus",
    "⨆": r"\bigsqcup",
    "≤": r"\leq", "≥": r"\geq", "≦": r"\leqq", "≧": r"\geqq", "⩽": r"\leqslant", "⩾": r"\geqslant",
    "≠": r"\neq", "≡": r"\equiv", "≈": r"\approx", "≅": r"\cong", "∼": r"\sim", "≃": r"\simeq",
    "≍": r"\asymp", "∝": r"\propto", "≪": r"\ll", "≫": r"\gg", "≺": r"\prec", "≻": r"\succ",
    "⪯": r"\preceq", "⪰": r"\succeq", "⊂": r"\subset", "⊃": r"\supset", "⊆": r"\subseteq",
    "⊇": r"\supseteq", "⊊": r"\subsetneq", "⊋": r"\supsetneq", "⊄": r"\not\subset", "∈": r"\in",
    "∉": r"\notin", "∋": r"\ni", "⊢": r"\vdash", "⊣": r"\dashv", "⊨": r"\models", "∣": r"\mid",
    "∥": r"\parallel", "⊥": r"\perp", "⌣": r"\smile", "⌢": r"\frown", "≐": r"\doteq", "⋈": r"\bowtie",
    "≮": r"\nless", "≯": r"\ngtr", "≰": r"\nleq", "≱": r"\ngeq", "≁": r"\nsim", "≇": r"\ncong",
    "∤": r"\nmid", "∦": r"\nparallel", "⊏": r"\sqsubset", "⊐": r"\sqsupset", "⊑": r"\sqsubseteq",
    "⊒": r"\sqsupseteq", "≜": r"\triangleq", "∴": r"\therefore", "∵": r"\because", "≔": ":=",
    "⋘": r"\lll", "⋙": r"\ggg", "≲": r"\lesssim", "≳": r"\gtrsim", "⊊": r"\subsetneq",
    "←": r"\leftarrow", "→": r"\rightarrow", "↑": r"\uparrow", "↓": r"\downarrow",
    "↔": r"\leftrightarrow", "↕": r"\updownarrow", "⇐": r"\Leftarrow", "⇒": r"\Rightarrow",
    "⇑": r"\Uparrow", "⇓": r"\Downarrow", "⇔": r"\Leftrightarrow", "⇕": r"\Updownarrow",
    "↦": r"\mapsto", "⟼": r"\longmapsto", "⟵": r"\longleftarrow", "⟶": r"\longrightarrow",
    "⟷": r"\longleftrightarrow", "⟸": r"\Longleftarrow", "⟹": r"\Longrightarrow",
    "⟺": r"\Longleftrightarrow", "↩": r"\hookleftarrow", "↪": r"\hookrightarrow", "↼": r"\leftharpoonup",
    "↽": r"\leftharpoondown", "⇀": r"\rightharpoonup", "⇁": r"\rightharpoondown",
    "⇌": r"\rightleftharpoons", "↗": r"\nearrow", "↘": r"\searrow", "↙": r"\swarrow", "↖": r"\nwarrow",
    "⇝": r"\leadsto", "↠": r"\twoheadrightarrow", "↞": r"\twoheadleftarrow", "↺": r"\circlearrowleft",
    "↻": r"\circlearrowright", "⇄": r"\rightleftarrows", "⇆": r"\leftrightarrows",
    "⟨": r"\langle", "⟩": r"\rangle", "〈": r"\langle", "〉": r"\rangle", "⌈": r"\lceil", "⌉": r"\rceil",
    "⌊": r"\lfloor", "⌋": r"\rfloor", "‖": r"\|", "{": r"\{", "}": r"\}", "⌜": r"\ulcorner",
    "⌝": r"\urcorner", "⌞": r"\llcorner", "⌟": r"\lrcorner", "⟦": r"[\![", "⟧": r"]\!]",
    "%": r"\%", "#": r"\#", "&": r"\&", "$": r"\$", "_": r"\_", "~": r"\sim", "\\": r"\backslash",
    "∶": ":", "⁄": "/", "⬝": r"\centerdot", "≩": r"\gneqq", "≨": r"\lneqq", "⊈": r"\nsubseteq",
    "⊉": r"\nsupseteq", "⫋": r"\subsetneqq", "⫌": r"\supsetneqq", "⊅": r"\not\supset", "↷": r"\curvearrowright",
    "↶": r"\curvearrowleft", "√": r"\surd", "⌣": r"\smile", "≬": r"\between", "⋉": r"\ltimes", "⋊": r"\rtimes",
    "⊺": r"\intercal", "⩾": r"\geqslant", "∡": r"\measuredangle", "∢": r"\sphericalangle", "⊻": r"\veebar",
    "⊼": r"\barwedge", "⋏": r"\curlywedge", "⋎": r"\curlyvee", "⊸": r"\multimap", "∔": r"\dotplus",
    "⊞": r"\boxplus", "⊟": r"\boxminus", "⊠": r"\boxtimes", "⊡": r"\boxdot", "⋇": r"\divideontimes",
    "≑": r"\doteqdot", "≖": r"\eqcirc", "≗": r"\circeq", "≏": r"\bumpeq", "≎": r"\Bumpeq", "∽": r"\backsim",
    "⋍": r"\backsimeq", "⊩": r"\Vdash", "⊪": r"\Vvdash", "∍": r"\backepsilon",
    "⋔": r"\pitchfork", "≶": r"\lessgtr", "≷": r"\gtrless", "⋚": r"\lesseqgtr", "⋛": r"\gtreqless",
    "⪅": r"\lessapprox", "⪆": r"\gtrapprox", "⊏": r"\sqsubset", "⋐": r"\Subset", "⋑": r"\Supset",
    "↝": r"\rightsquigarrow", "⇛": r"\Rrightarrow", "⇚": r"\Lleftarrow", "↰": r"\Lsh", "↱": r"\Rsh",
    "⇈": r"\upuparrows", "⇊": r"\downdownarrows", "⊶": r"\origof", "⊷": r"\imageof",
}

#: Invisible operators: function application, invisible times / separator / plus.
INVISIBLE = {"\u2061", "\u2062", "\u2063", "\u2064", "\u200b"}

#: Characters that are TeX syntax in math mode and need escaping inside \text{...}.
TEXT_ESCAPES = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
                "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}"}

#: Multi-letter identifiers TeX has as operator commands.
FUNCTION_NAMES = {
    "arccos", "arcsin", "arctan", "arg", "cos", "cosh", "cot", "coth", "csc", "deg", "det", "dim", "exp",
    "gcd", "hom", "inf", "ker", "lg", "lim", "liminf", "limsup", "ln", "log", "max", "min", "Pr", "sec",
    "sin", "sinh", "sup", "tan", "tanh",
}

#: Accents over / under a base (munder / mover with an accent character).
OVER_ACCENTS = {
    "^": r"\hat", "ˆ": r"\hat", "\u0302": r"\hat", "ˇ": r"\check", "\u030c": r"\check", "~": r"\tilde",
    "˜": r"\tilde", "\u0303": r"\tilde", "¯": r"\bar", "\u0304": r"\bar", "ˉ": r"\bar", "‾": r"\overline",
    "\u0305": r"\overline", "˙": r"\dot", "\u0307": r"\dot", "¨": r"\ddot", "\u0308": r"\ddot",
    "⃛": r"\dddot", "⃜": r"\ddddot", "´": r"\acute", "\u0301": r"\acute", "`": r"\grave", "\u0300": r"\grave",
    "˘": r"\breve", "\u0306": r"\breve", "˚": r"\mathring", "\u030a": r"\mathring",
    "→": r"\vec", "⃗": r"\vec", "⏞": r"\overbrace", "⏜": r"\overparen", "←": r"\overleftarrow",
    "↔": r"\overleftrightarrow", "⎴": r"\overbracket", "–": r"\overline", "—": r"\overline",
}
#: When the accent spans several characters, MathJax/KaTeX use the wide forms.
WIDE_OVER = {r"\hat": r"\widehat", r"\tilde": r"\widetilde", r"\vec": r"\overrightarrow", r"\bar": r"\overline"}
UNDER_ACCENTS = {
    "_": r"\underline", "‾": r"\underline", "\u0332": r"\underline", "¯": r"\underline", "⏟": r"\underbrace",
    "⏝": r"\underparen", "→": r"\underrightarrow", "←": r"\underleftarrow", "↔": r"\underleftrightarrow",
    "⎵": r"\underbracket", "–": r"\underline", "—": r"\underline",
}

#: mathvariant -> font command for identifiers.
VARIANTS = {
    "bold": r"\mathbf", "double-struck": r"\mathbb", "script": r"\mathcal", "bold-script": r"\mathcal",
    "fraktur": r"\mathfrak", "bold-fraktur": r"\mathfrak", "sans-serif": r"\mathsf", "monospace": r"\mathtt",
    "normal": r"\mathrm", "bold-italic": r"\boldsymbol", "italic": r"\mathit", "sans-serif-bold-italic": r"\mathsf",
    "bold-sans-serif": r"\mathsf", "sans-serif-italic": r"\mathsf",
}

#: Unicode "Mathematical Alphanumeric Symbols" style words -> mathvariant.
_STYLE_WORDS = (
    ("BOLD ITALIC", "bold-italic"), ("BOLD SCRIPT", "bold-script"), ("BOLD FRAKTUR", "bold-fraktur"),
    ("SANS-SERIF BOLD ITALIC", "sans-serif-bold-italic"), ("SANS-SERIF BOLD", "bold-sans-serif"),
    ("SANS-SERIF ITALIC", "sans-serif-italic"), ("SANS-SERIF", "sans-serif"), ("DOUBLE-STRUCK", "double-struck"),
    ("MONOSPACE", "monospace"), ("FRAKTUR", "fraktur"), ("SCRIPT", "script"), ("BOLD", "bold"),
    ("ITALIC", "italic"),
)
_LETTERLIKE_STYLED = {
    "ℂ": ("C", "double-struck"), "ℍ": ("H", "double-struck"), "ℕ": ("N", "double-struck"),
    "ℙ": ("P", "double-struck"), "ℚ": ("Q", "double-struck"), "ℝ": ("R", "double-struck"),
    "ℤ": ("Z", "double-struck"), "ℬ": ("B", "script"), "ℰ": ("E", "script"), "ℱ": ("F", "script"),
    "ℋ": ("H", "script"), "ℐ": ("I", "script"), "ℒ": ("L", "script"), "ℳ": ("M", "script"),
    "ℛ": ("R", "script"), "ℭ": ("C", "fraktur"), "ℌ": ("H", "fraktur"), "ℨ": ("Z", "fraktur"),
    "ℎ": ("h", "italic"),
}
_GREEK_BY_NAME = {unicodedata.name(ch).split()[-1].lower(): cmd for ch, cmd in GREEK.items() if ch.islower()}


def plain_letter(ch: str) -> tuple[str, str | None]:
    """Split a styled math letter (𝑎, 𝐁, ℝ) into (plain letter, mathvariant or None)."""
    if ch in _LETTERLIKE_STYLED:
        return _LETTERLIKE_STYLED[ch]
    code = ord(ch)
    if not (0x1D400 <= code <= 0x1D7FF):
        return ch, None
    name = unicodedata.name(ch, "")
    if not name.startswith("MATHEMATICAL "):
        return ch, None
    rest = name[len("MATHEMATICAL "):]
    variant = None
    for words, var in _STYLE_WORDS:
        if rest.startswith(words + " "):
            variant, rest = var, rest[len(words) + 1:]
            break
    parts = rest.split()
    if parts[:2] == ["CAPITAL", "GREEK"] or parts[:1] == ["CAPITAL"] and len(parts) == 2:
        letter = parts[-1]
        return (letter if len(letter) == 1 else _greek(letter.lower(), upper=True)), variant
    if parts[:1] == ["SMALL"] and len(parts) == 2:
        letter = parts[-1]
        return (letter.lower() if len(letter) == 1 else _greek(letter.lower(), upper=False)), variant
    if parts[:1] == ["DIGIT"]:
        digits = {"ZERO": "0", "ONE": "1", "TWO": "2", "THREE": "3", "FOUR": "4", "FIVE": "5", "SIX": "6",
                  "SEVEN": "7", "EIGHT": "8", "NINE": "9"}
        return digits.get(parts[-1], ch), variant
    return ch, variant


def _greek(name: str, upper: bool) -> str:
    cmd = _GREEK_BY_NAME.get(name)
    if cmd is None:
        return name
    return "\\" + cmd[1:].capitalize() if upper else cmd


def char_to_latex(ch: str) -> str:
    """One character as LaTeX (a command where TeX has one)."""
    if ch in GREEK:
        return GREEK[ch]
    if ch in LETTERLIKE:
        return LETTERLIKE[ch]
    if ch in OPERATORS:
        return OPERATORS[ch]
    if ch in INVISIBLE:
        return ""
    if ch == "\u00a0":
        return " "
    return ch


def escape_text(text: str) -> str:
    """Text for \\text{...}: TeX's special characters escaped."""
    return "".join(TEXT_ESCAPES.get(ch, ch) for ch in text)
