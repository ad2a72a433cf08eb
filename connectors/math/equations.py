"""Equations found on a page, and the placeholders that stand for them while rendering.

Every math element is replaced in the DOM by a short ASCII placeholder before the page is
rendered; afterwards each placeholder is swapped for ``$tex$`` / ``$$tex$$``. Renderers
(lynx, trafilatura, ours) never see TeX, so they cannot re-wrap, unescape or drop parts of
it, and an equation can only come out once: its placeholder is substituted once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PLACEHOLDER = re.compile(r"ZZMATH(\d+)ZZ")
# TeX that typesets to nothing: whitespace, spacing commands, empty groups (``$$   $$``)
_EMPTY_TEX = re.compile(r"^(?:\s|\\[,;:! >]|\\quad|\\qquad|~|\{\})*$")


def is_empty_tex(tex: str) -> bool:
    return bool(_EMPTY_TEX.match(tex))


@dataclass(frozen=True)
class Equation:
    tex: str
    display: bool
    form: str  # where it came from: katex, mathjax2, mathjax3, mathml, latexml, image, text, ...
    marked: str | None = None  # set when the source is not TeX (AsciiMath): written as `...`

    def formatted(self) -> str:
        if self.marked is not None:
            return f"`{self.marked}`"
        return f"$${self.tex}$$" if self.display else f"${self.tex}$"


@dataclass
class EquationSink:
    """Collects a page's equations in document order and hands out their placeholders."""

    equations: list[Equation] = field(default_factory=list)

    def add(self, tex: str, display: bool, form: str, marked: str | None = None) -> str:
        """The placeholder for one equation; ``""`` for an empty one (it is dropped, not counted)."""
        if marked is None and is_empty_tex(tex):
            return ""
        self.equations.append(Equation(tex.strip(), display, form, marked))
        return f"ZZMATH{len(self.equations) - 1}ZZ"

    def substitute(self, text: str) -> tuple[str, list[int]]:
        """Text with every placeholder replaced; returns the indices of equations kept."""
        kept: list[int] = []
        seen: set[int] = set()

        def swap(match: re.Match) -> str:
            index = int(match.group(1))
            if index >= len(self.equations) or index in seen:
                return ""  # a renderer that repeated a placeholder must not repeat the equation
            seen.add(index)
            kept.append(index)
            return self.equations[index].formatted()

        return PLACEHOLDER.sub(swap, text), kept
