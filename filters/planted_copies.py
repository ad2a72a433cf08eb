"""Planted partial copies with known containment, to measure ``partial_copy``'s recall and precision.

From real base texts, each planted document copies part of a *source* document in one of
the ways web pages do:

* ``syndicated``: the whole source under a new header and above a new footer (words of
  another text), so the copy is large and the source is contained in it;
* ``quoted``: a contiguous run of the source's paragraphs/words inserted into a different
  page's own text;
* ``quoted_edited``: like ``quoted``, with a few word edits inside the copied run (a light
  revision).

The share of the copy's shingles found in the source (the containment ``partial_copy``
reports for the copy) is computed exactly on word 5-gram sets. Used by tests/test_partial_copy.py,
benchmarks/dedup_quality.py and benchmarks/bench_dedup.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dataengine.filters.shingles import shingle_sets

KINDS = ("syndicated", "quoted", "quoted_edited")


@dataclass(frozen=True)
class PlantedCopy:
    copy_id: str
    source_id: str
    kind: str
    containment: float  # |S_copy ∩ S_source| / |S_copy|


def containment(a, b) -> float:
    """Share of shingle set ``a`` (sorted unique hashes) found in ``b``."""
    import numpy as np

    if len(a) == 0:
        return 0.0
    return len(np.intersect1d(a, b, assume_unique=True)) / len(a)


def plant_copies(texts: list[str], copies: int, fillers: list[str], seed: int = 1, ngram: int = 5,
                 id_prefix: str = "doc") -> tuple[list[dict], list[PlantedCopy]]:
    """Rows ``{"id", "text"}``: every base text, plus ``copies`` planted copies of random bases.

    A copy's own words (a quoting page's text, a syndicated page's header and footer) are
    the words of one of ``fillers`` (texts not in the corpus) in a random order, so no other
    document shares the copy's own shingles and the source is the only one that holds the
    copied part. Copies cover the containment range: the copied share of a
    quoting page and the length of a syndicated page's header and footer are drawn at random.
    """
    rng = random.Random(seed)
    rows = [{"id": f"{id_prefix}-{i:06d}", "text": text} for i, text in enumerate(texts)]
    planted_rows: list[dict] = []
    meta: list[tuple[str, str, str]] = []
    # each source copied once while there are enough (two copies of one source contain each
    # other's copied part, which would make the planted source one right answer of several)
    sources = rng.sample(range(len(texts)), copies) if copies <= len(texts) else [
        rng.randrange(len(texts)) for _ in range(copies)]
    for k, source in enumerate(sources):
        kind = KINDS[k % len(KINDS)]
        src_words, own_words = texts[source].split(), rng.choice(fillers).split()
        rng.shuffle(own_words)  # a filler's words in a fresh order: shingles no other document has
        if kind == "syndicated":
            header = own_words[: rng.randint(5, max(6, len(own_words) // 2))]
            footer = own_words[-rng.randint(5, max(6, len(own_words) // 3)):]
            words = ["Republished", "from", "the", "original:"] + header + src_words + ["Footer:"] + footer
        else:
            share = rng.uniform(0.15, 0.9)
            span = max(10, int(len(src_words) * rng.uniform(0.2, 1.0)))
            start = rng.randrange(max(1, len(src_words) - span + 1))
            quoted = src_words[start:start + span]
            if kind == "quoted_edited":
                quoted = list(quoted)
                for _ in range(max(1, len(quoted) // 40)):
                    quoted[rng.randrange(len(quoted))] = f"edited{rng.randrange(1000)}"
            own_len = max(5, int(len(quoted) * (1 - share) / share))
            own = own_words[:own_len]
            cut = rng.randrange(len(own) + 1)
            words = own[:cut] + ["As", "reported", "elsewhere:"] + quoted + own[cut:]
        copy_id = f"{id_prefix}-copy-{k:06d}"
        planted_rows.append({"id": copy_id, "text": " ".join(words)})
        meta.append((copy_id, rows[source]["id"], kind))
    texts_by_id = {r["id"]: r["text"] for r in rows + planted_rows}
    sets = shingle_sets([texts_by_id[c] for c, _, _ in meta] + [texts_by_id[s] for _, s, _ in meta], "word", ngram)
    n = len(meta)
    planted = [PlantedCopy(c, s, kind, containment(sets[i], sets[n + i])) for i, (c, s, kind) in enumerate(meta)]
    return rows + planted_rows, planted


BANDS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01))


def band_label(lo: float, hi: float) -> str:
    return f"[{lo}, {min(hi, 1.0)}]" if hi > 1 else f"[{lo}, {hi})"


def recall_by_band(planted: list[PlantedCopy], copy_of: dict[str, str | None]) -> dict[str, dict]:
    """Per containment band: planted copies, and the share whose ``copy_of`` is their source."""
    out = {}
    for lo, hi in BANDS:
        inside = [p for p in planted if lo <= p.containment < hi]
        if inside:
            found = sum(copy_of.get(p.copy_id) == p.source_id for p in inside)
            out[band_label(lo, hi)] = {"copies": len(inside), "found": found, "recall": round(found / len(inside), 3)}
    return out
