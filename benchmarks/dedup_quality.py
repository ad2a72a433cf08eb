"""Fuzzy dedup recall and precision on near-duplicate pairs with known Jaccard similarity.

Bases: every demo-corpus document of more than 150 words (real Shakespeare, MIT); each gets
one variant with 1-64 random word edits (substitutions, insertions, moved spans), so the
pairs spread over the whole Jaccard range. Ground truth is the exact word 5-gram Jaccard.
Recall counts pairs with Jaccard >= 0.8 that end in one cluster; precision counts clustered
pairs whose Jaccard is >= 0.8. Each configuration runs the real `fuzzy_dedup` stage through
a pipeline on a real warehouse.

    python benchmarks/dedup_quality.py
    python benchmarks/dedup_quality.py --partial-copies      # partial_copy (issue 18)

``--partial-copies``: real article bodies (tests/data/aeb_quality.jsonl.gz, 141 as the
corpus, 40 as the copies' own words) with 140 planted copies (syndicated, quoted, quoted
with light edits; see dataengine.filters.planted_copies); recall per band of the copy's
true containment in its source, precision of every ``copy_of`` written (its exact
containment reaches the threshold; the pair is a planted one), and fuzzy_dedup on the same
documents for contrast (recall = copy and source in one cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from dataengine.engine import run_pipeline  # noqa: E402
from dataengine.core.pipeline import pipeline_from_dict  # noqa: E402
from dataengine.filters.near_duplicates import near_duplicate_pairs, recall_precision  # noqa: E402
from dataengine.warehouse import Warehouse, init_warehouse  # noqa: E402

CONFIGS = {
    "custom 20x5 word 5-grams, Jaccard check on": {"preset": "custom", "unit": "word", "ngram": 5, "num_perm": 100,
                                                    "bands": 20, "rows": 5, "jaccard_check": True},
    "custom 20x5 word 5-grams, Jaccard check off": {"preset": "custom", "unit": "word", "ngram": 5, "num_perm": 100,
                                                     "bands": 20, "rows": 5, "jaccard_check": False},
    "fineweb preset 14x8, Jaccard check on": {"preset": "fineweb", "jaccard_check": True},
    "fineweb preset 14x8, Jaccard check off": {"preset": "fineweb", "jaccard_check": False},
}


def demo_texts(min_words: int = 150) -> list[str]:
    import gzip
    from importlib import resources

    with gzip.open(resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz", "rt") as fh:
        return [t for t in (json.loads(line)["text"] for line in fh) if len(t.split()) > min_words]


PARTIAL_CONFIGS = {
    "partial_copy defaults (threshold 0.5, 32-value sketch)": {},
    "partial_copy threshold 0.3": {"threshold": 0.3},
    "partial_copy 16-value sketch": {"sample_size": 16},
    "partial_copy 64-value sketch": {"sample_size": 64},
}


def article_texts() -> tuple[list[str], list[str]]:
    import gzip
    import random

    path = Path(__file__).resolve().parents[1] / "tests" / "data" / "aeb_quality.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        texts = [r["text"] for r in map(json.loads, fh) if r["kind"] == "article"]
    random.Random(0).shuffle(texts)
    return texts[40:], texts[:40]


def _share_exact(got: dict, copies: list) -> float | None:
    """Share of copies whose copy_containment is their exact containment (None: no such copy)."""
    if not copies:
        return None
    return round(sum(abs(got[p.copy_id]["copy_containment"] - p.containment) < 1e-9 for p in copies) / len(copies), 3)


def partial_copy_quality(seed: int) -> dict:
    from dataengine.filters.planted_copies import BANDS, band_label, containment, plant_copies, recall_by_band
    from dataengine.filters.shingles import shingle_sets

    texts, fillers = article_texts()
    rows, planted = plant_copies(texts, len(texts) - 1, fillers, seed=seed)
    planted_pairs = {(p.copy_id, p.source_id) for p in planted} | {(p.source_id, p.copy_id) for p in planted}
    text_of = {r["id"]: r["text"] for r in rows}
    results = {"documents": len(rows), "copies": len(planted),
               "copies_by_containment": {band_label(lo, hi): sum(lo <= p.containment < hi for p in planted)
                                         for lo, hi in BANDS}}
    with tempfile.TemporaryDirectory() as tmp:
        init_warehouse(tmp)
        wh = Warehouse(tmp)
        wh.write_table("docs", pa.Table.from_pylist(rows))
        for name, params in PARTIAL_CONFIGS.items():
            out = "out_" + str(abs(hash(name)) % 10**8)
            run_pipeline(pipeline_from_dict({"source": {"table": "docs"}, "stages": [
                {"name": "partial_copy", "params": params}], "output": {"table": out}}), wh, progress=False)
            got = {r["id"]: r for r in wh.sql(f"SELECT id, copy_of, copy_containment FROM {out}").to_pylist()}
            threshold = params.get("threshold", 0.5)
            flagged = [(i, r["copy_of"]) for i, r in got.items() if r["copy_of"]]
            exact_ok = 0
            for doc_id, target in flagged:
                mine, theirs = shingle_sets([text_of[doc_id], text_of[target]], "word", 5)
                exact_ok += containment(mine, theirs) >= threshold
            above = [p for p in planted if p.containment >= threshold]
            results[name] = {
                "recall_at_threshold": round(sum(got[p.copy_id]["copy_of"] == p.source_id for p in above)
                                             / len(above), 3),
                "recall_by_containment": recall_by_band(planted, {k: r["copy_of"] for k, r in got.items()}),
                "flagged": len(flagged),
                "precision_exact_containment": round(exact_ok / len(flagged), 3) if flagged else None,
                "precision_planted_pairs": round(sum(f in planted_pairs for f in flagged) / len(flagged), 3)
                if flagged else None,
                "containment_exact_below_threshold": _share_exact(got, [p for p in planted
                                                                         if 0.3 <= p.containment < threshold]),
            }
            print(name, json.dumps(results[name]), flush=True)
        for name, params in (("fuzzy_dedup fineweb 14x8, Jaccard 0.8 (check on)", {"preset": "fineweb"}),
                             ("fuzzy_dedup 20x5, Jaccard 0.5 (check on)", {"preset": "custom", "unit": "word", "ngram": 5,
                                                                            "num_perm": 100, "bands": 20, "rows": 5,
                                                                            "threshold": 0.5})):
            out = "out_" + str(abs(hash(name)) % 10**8)
            run_pipeline(pipeline_from_dict({"source": {"table": "docs"}, "stages": [
                {"name": "fuzzy_dedup", "params": {**params, "order_by": ["id"]}}], "output": {"table": out}}), wh,
                progress=False)
            cluster = {r["id"]: r["fuzzy_dup_cluster"] for r in wh.sql(f"SELECT id, fuzzy_dup_cluster FROM {out}").to_pylist()}
            together = {p.copy_id: p.source_id for p in planted if cluster[p.copy_id] == cluster[p.source_id]}
            results[name] = {"recall_by_containment": recall_by_band(planted, together)}
            print(name, json.dumps(results[name]), flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--partial-copies", action="store_true", help="measure partial_copy instead of fuzzy_dedup")
    args = ap.parse_args()
    if args.partial_copies:
        print(json.dumps(partial_copy_quality(args.seed), indent=1))
        return
    rows, pairs = near_duplicate_pairs(demo_texts(), seed=args.seed, edit_choices=(1, 2, 4, 8, 12, 16, 24, 32, 64))
    bins = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    results = {"pairs": len(pairs), "by_jaccard": {f"[{lo}, {min(hi, 1.0)})": sum(lo <= p.jaccard < hi for p in pairs)
                                                   for lo, hi in bins}}
    with tempfile.TemporaryDirectory() as tmp:
        init_warehouse(tmp)
        wh = Warehouse(tmp)
        wh.write_table("pairs", pa.Table.from_pylist(rows))
        for name, params in CONFIGS.items():
            out = "out_" + str(abs(hash(name)) % 10**8)
            run_pipeline(pipeline_from_dict({
                "source": {"table": "pairs"},
                "stages": [{"name": "fuzzy_dedup", "params": {**params, "threshold": 0.8, "order_by": ["id"]}}],
                "output": {"table": out},
            }), wh, progress=False)
            cluster = {r["id"]: r["fuzzy_dup_cluster"] for r in wh.sql(f"SELECT id, fuzzy_dup_cluster FROM {out}").to_pylist()}
            scores = recall_precision(pairs, cluster, threshold=0.8)
            scores["recall_by_jaccard"] = {
                f"[{lo}, {min(hi, 1.0)})": round(sum(cluster[p.base_id] == cluster[p.variant_id] for p in inside)
                                                 / len(inside), 3)
                for lo, hi in bins if (inside := [p for p in pairs if lo <= p.jaccard < hi])
            }
            results[name] = scores
            print(name, json.dumps(scores), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
