"""Fuzzy dedup recall and precision on near-duplicate pairs with known Jaccard similarity.

Bases: every demo-corpus document of more than 150 words (real Shakespeare, MIT); each gets
one variant with 1-64 random word edits (substitutions, insertions, moved spans), so the
pairs spread over the whole Jaccard range. Ground truth is the exact word 5-gram Jaccard.
Recall counts pairs with Jaccard >= 0.8 that end in one cluster; precision counts clustered
pairs whose Jaccard is >= 0.8. Each configuration runs the real `fuzzy_dedup` stage through
a pipeline on a real warehouse.

    python benchmarks/dedup_quality.py
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
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
