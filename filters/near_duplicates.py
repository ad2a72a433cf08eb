"""Near-duplicate pairs with known Jaccard similarity, to measure fuzzy dedup's recall and precision.

Each base text gets one variant made by random word edits: substitutions, insertions and
moved 5-word spans (reorderings). The number of edits per pair is drawn from ``edit_choices``
so the pairs cover the whole Jaccard range; the true word 5-gram Jaccard of every pair is
computed exactly. Used by tests/test_dedup.py and benchmarks/dedup_quality.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dataengine.filters.shingles import jaccard, shingle_sets


@dataclass(frozen=True)
class Pair:
    base_id: str
    variant_id: str
    jaccard: float


def edit_words(words: list[str], rng: random.Random, edits: int) -> list[str]:
    """``edits`` random substitutions, insertions or moved 5-word spans."""
    w = list(words)
    for _ in range(edits):
        op = rng.random()
        i = rng.randrange(len(w))
        if op < 0.4:
            w[i] = rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) + str(rng.randrange(1000))
        elif op < 0.7:
            w.insert(i, "inserted" + str(rng.randrange(1000)))
        else:
            j = rng.randrange(len(w))
            span = w[i : i + 5]
            del w[i : i + 5]
            w[j:j] = span
    return w


def near_duplicate_pairs(texts: list[str], seed: int = 1, edit_choices=(1, 2, 4, 8, 16, 32),
                         ngram: int = 5) -> tuple[list[dict], list[Pair]]:
    """Rows ``{"id", "text"}`` (every base and its variant) and the pairs with their true Jaccard."""
    rng = random.Random(seed)
    rows, pairs = [], []
    for b, text in enumerate(texts):
        base_id, variant_id = f"base-{b:05d}", f"var-{b:05d}"
        variant = " ".join(edit_words(text.split(), rng, rng.choice(edit_choices)))
        rows += [{"id": base_id, "text": text}, {"id": variant_id, "text": variant}]
        sa, sb = shingle_sets([text, variant], "word", ngram)
        pairs.append(Pair(base_id, variant_id, jaccard(sa, sb)))
    return rows, pairs


def recall_precision(pairs: list[Pair], cluster_of: dict[str, object], threshold: float = 0.8) -> dict:
    """Recall over pairs with Jaccard >= threshold; precision over the pairs put in one cluster."""
    high = [p for p in pairs if p.jaccard >= threshold]
    together = [p for p in pairs if cluster_of[p.base_id] == cluster_of[p.variant_id]]
    return {
        "pairs": len(pairs),
        "pairs_at_or_above": len(high),
        "recall": sum(cluster_of[p.base_id] == cluster_of[p.variant_id] for p in high) / len(high) if high else None,
        "predicted": len(together),
        "precision": sum(p.jaccard >= threshold for p in together) / len(together) if together else None,
    }
