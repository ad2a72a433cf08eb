"""Tokenized blend export throughput vs the `tokenizers` batch encoder alone.

Peer: `Tokenizer.encode_batch_fast` over the same texts, already in memory (no reading,
no writing). Ours: `export_component` end to end: read the component rows from DuckLake at
the pinned snapshot, tokenize, append EOS, write Megatron .bin/.idx, hash the files.

Usage: python benchmarks/bench_export.py [--docs 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import time
from importlib import resources

import pyarrow as pa


def build(root: str, docs: int):
    from dataengine.warehouse import Warehouse, init_warehouse

    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    init_warehouse(root)
    wh = Warehouse(root)
    wh.write_table("docs", pa.table({"id": [f"d{i:07d}" for i in range(docs)], "text": [texts[i % len(texts)] + f" #{i}" for i in range(docs)]}))
    return wh


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/out/export")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    from dataengine.warehouse.blends import Blends
    from dataengine.warehouse.export import export_component
    from dataengine.warehouse.tokenizers import load_tokenizer

    wh = build(args.out, args.docs)
    blends = Blends(wh)
    tok = load_tokenizer("gpt2")
    snapshot = wh.current_snapshot()
    sql = "SELECT id, text FROM docs"
    texts = wh.sql("SELECT text FROM docs ORDER BY id").column(0).to_pylist()
    rows, content_hash = blends.component_content_hash(sql, snapshot)

    peer, ours, tokens = [], [], 0
    for r in range(args.repeats):
        t = time.perf_counter()
        n = 0
        for i in range(0, len(texts), 2000):
            n += sum(len(e.ids) for e in tok.tokenizer.encode_batch_fast(texts[i : i + 2000], add_special_tokens=False))
        peer.append(n / (time.perf_counter() - t))
        comp = {"name": "docs", "sql": sql, "rows": rows, "content_hash": f"{content_hash}-{r}"}  # defeat the cache
        t = time.perf_counter()
        rec = export_component(blends, comp, snapshot, tok, workers=1)
        ours.append((rec["tokens"] - rec["documents"]) / (time.perf_counter() - t))  # text tokens, EOS excluded
        tokens = rec["tokens"] - rec["documents"]
        assert tokens == n, (tokens, n)
    cached_t = time.perf_counter()
    export_component(blends, {"name": "docs", "sql": sql, "rows": rows, "content_hash": f"{content_hash}-0"}, snapshot, tok)
    cached = time.perf_counter() - cached_t
    print(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
                "docs": args.docs,
                "text_tokens": tokens,
                "tokenizers_alone_tok_per_s": [round(x) for x in peer],
                "export_tok_per_s": [round(x) for x in ours],
                "ratio_best": round(max(ours) / max(peer), 3),
                "ratio_median": round(sorted(ours)[len(ours) // 2] / sorted(peer)[len(peer) // 2], 3),
                "cached_reexport_s": round(cached, 4),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
