"""Spans a translation must not touch: code, URLs, e-mail addresses, placeholders, math.

Before a text goes to the model each span is replaced by a marker ``[[0]]``, ``[[1]]``, ...
and the prompt asks the model to keep the markers; afterwards the markers are replaced by
the original bytes. A model that reorders the sentence may move the markers: each span
goes back wherever its marker ended up. What was protected, in order of precedence:

- fenced code blocks (```` ``` ```` or ``~~~``), inline ``code``;
- display math ``$$...$$``, ``\\[...\\]``, ``\\begin{env}...\\end{env}``, inline ``\\(...\\)``
  and ``$...$`` (pandoc's rule, so prices are not math: no space after the opening ``$``,
  none before the closing one, no digit right after it);
- URLs (``http(s)://``, ``ftp://``, ``www.``; trailing punctuation is not part of them),
  e-mail addresses;
- placeholders: ``{{ var }}``, ``{name}`` / ``{0}`` / ``{}`` (format fields), ``%s`` /
  ``%d`` / ``%.2f`` / ``%(name)s``, ``${VAR}``;
- text that already looks like a marker (``[[3]]``), so it cannot be confused with ours.

Lives in the core because the translation recipes (protect, restore) and the
``translation_quality`` filter (spans left out of the untranslated-n-gram count) share it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERNS = [
    ("code", r"(?P<fence>```|~~~)[^\n]*\n.*?(?:\n(?P=fence)|$(?![\s\S]))"),
    ("math", r"\$\$.+?\$\$"),
    ("math", r"\\\[.+?\\\]"),
    ("math", r"\\begin\{(?P<env>[A-Za-z*]+)\}.*?\\end\{(?P=env)\}"),
    ("code", r"`[^`\n]+`"),
    ("math", r"\\\(.+?\\\)"),
    ("math", r"(?<![\\$\w])\$(?=[^\s$])(?:\\.|[^$\\\n])+?(?<=\S)\$(?![\d$])"),
    ("url", r"(?:https?://|ftp://|www\.)[^\s<>\"'`\]\[(){}]+(?:\([^\s()]*\)[^\s<>\"'`\]\[(){}]*)*"),
    ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"),
    ("placeholder", r"\{\{[^{}\n]{0,200}\}\}"),
    ("placeholder", r"\$\{[^{}\n]{1,100}\}"),
    ("placeholder", r"\{[A-Za-z_0-9.\[\]]{0,64}(?:![rsa])?(?::[^{}\s]{0,32})?\}"),
    ("placeholder", r"%(?:\([A-Za-z_]\w*\))?[#0+-]?\d*(?:\.\d+)?[sdifgeExXcr](?![A-Za-z])"),
    ("marker", r"\[\[\s*\d+\s*\]\]"),
]
_SPAN = re.compile("|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(_PATTERNS)), re.DOTALL)
_KINDS = {f"k{i}": kind for i, (kind, _) in enumerate(_PATTERNS)}
_MARKER = re.compile(r"\[\[\s*(\d+)\s*\]\]")
_TRAILING = ".,;:!?"


@dataclass(frozen=True)
class Span:
    kind: str  # code | math | url | email | placeholder | marker
    text: str


@dataclass(frozen=True)
class Protected:
    """A text with its spans replaced by markers, and the spans in marker order."""

    masked: str
    spans: tuple[Span, ...]

    def restore(self, translated: str) -> "Restored":
        return restore(translated, self.spans)


@dataclass(frozen=True)
class Restored:
    text: str
    ok: bool  # every marker came back exactly once
    missing: tuple[int, ...] = ()
    repeated: tuple[int, ...] = ()


def find_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every protected span, left to right, non-overlapping."""
    found = []
    for m in _SPAN.finditer(text):
        kind = _KINDS[m.lastgroup] if m.lastgroup in _KINDS else _kind_of(m)
        start, end = m.start(), m.end()
        if kind == "url":  # "see https://x.org/a." : the full stop ends the sentence
            while end > start and text[end - 1] in _TRAILING:
                end -= 1
        found.append((start, end, kind))
    return found


def _kind_of(match: re.Match) -> str:
    for name, kind in _KINDS.items():
        if match.group(name) is not None:
            return kind
    return "code"


def protect(text: str) -> Protected:
    """Replace every protected span with ``[[i]]``."""
    spans: list[Span] = []
    pieces: list[str] = []
    pos = 0
    for start, end, kind in find_spans(text):
        pieces.append(text[pos:start])
        pieces.append(f"[[{len(spans)}]]")
        spans.append(Span(kind, text[start:end]))
        pos = end
    pieces.append(text[pos:])
    return Protected("".join(pieces), tuple(spans))


def restore(translated: str, spans: tuple[Span, ...] | list[Span]) -> Restored:
    """Put each span back where its marker is; ``ok`` only if each came back exactly once."""
    seen: dict[int, int] = {}

    def put(m: re.Match) -> str:
        i = int(m.group(1))
        if i >= len(spans):
            return m.group(0)  # not ours: the model invented it
        seen[i] = seen.get(i, 0) + 1
        return spans[i].text

    text = _MARKER.sub(put, translated)
    missing = tuple(i for i in range(len(spans)) if i not in seen)
    repeated = tuple(i for i, n in sorted(seen.items()) if n > 1)
    invented = any(int(m.group(1)) >= len(spans) for m in _MARKER.finditer(translated))
    return Restored(text, not missing and not repeated and not invented, missing, repeated)


def strip_spans(text: str) -> str:
    """The text with its protected spans blanked out (language id, copied-n-gram counts)."""
    pieces, pos = [], 0
    for start, end, _ in find_spans(text):
        pieces.append(text[pos:start])
        pieces.append(" ")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def span_texts(text: str) -> list[str]:
    """The protected spans of ``text``, in order (to check that a translation kept them)."""
    return [text[s:e] for s, e, _ in find_spans(text)]
