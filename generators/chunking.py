"""Nemotron-CC style chunking: whole lines merged up to the model's input budget.

A document is split on newlines; neighbouring lines are merged while the segment stays
within ``max_tokens``; a single line over the budget is cut at word boundaries; segments
under ``min_tokens`` are dropped (too little to rephrase). Every segment keeps its
position (``segment_id``) so the outputs can be re-joined in document order.
MIND's ~500-token chunks use the same function with ``max_tokens=500``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Segment:
    segment_id: int  # position among all segments of the document, before dropping short ones
    text: str
    tokens: int


def split_segments(text: str, count_tokens: CountTokens, max_tokens: int, min_tokens: int = 0) -> list[Segment]:
    """Segments of ``text``, each at most ``max_tokens`` (by ``count_tokens``), in order."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    pieces: list[tuple[str, int]] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        n = count_tokens(line)
        if n > max_tokens:
            pieces.extend(_cut_long_line(line, count_tokens, max_tokens))
        else:
            pieces.append((line, n))
    merged: list[tuple[str, int]] = []
    cur_lines: list[str] = []
    cur_tokens = 0
    for line, n in pieces:
        # +1 for the newline that joins two lines (a conservative estimate for BPE)
        if cur_lines and cur_tokens + 1 + n > max_tokens:
            merged.append(("\n".join(cur_lines), cur_tokens))
            cur_lines, cur_tokens = [], 0
        cur_tokens += n + (1 if cur_lines else 0)
        cur_lines.append(line)
    if cur_lines:
        merged.append(("\n".join(cur_lines), cur_tokens))
    return [Segment(i, seg, n) for i, (seg, n) in enumerate(merged) if n >= min_tokens]


def _cut_long_line(line: str, count_tokens: CountTokens, max_tokens: int) -> list[tuple[str, int]]:
    """Cut one over-long line at word boundaries into pieces within the budget."""
    out: list[tuple[str, int]] = []
    words = line.split(" ")
    cur: list[str] = []
    for word in words:
        trial = " ".join(cur + [word])
        if cur and count_tokens(trial) > max_tokens:
            piece = " ".join(cur)
            out.append((piece, count_tokens(piece)))
            cur = [word]
        else:
            cur.append(word)
    if cur:
        piece = " ".join(cur)
        out.append((piece, count_tokens(piece)))
    return out


def join_segments(outputs: Iterable[tuple[int, str | None]], separator: str = "\n") -> str:
    """Re-join per-segment outputs in segment order; missing (None/empty) outputs are skipped."""
    ordered = sorted((sid, text) for sid, text in outputs if text and text.strip())
    return separator.join(text.strip() for _, text in ordered)
