"""Foundation benchmarks: executor overhead and a GROUP BY over 1M documents.

1. Executor overhead: the local executor running the cheap `text_stats` stage over 1M rows
   in 8 Parquet shards (read, stage, write Parquet, one DuckLake commit) vs a plain loop
   that reads the same shards, calls the same stage and writes Parquet. Same process count.
2. `SELECT language, count(*) ... GROUP BY 1` over the 1M-document table: wall time and
   the peak RSS of the querying process (the text column must never reach Python).

Usage: python benchmarks/bench_foundation.py [--rows 1000000] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import resources

import pyarrow as pa
import pyarrow.parquet as pq

LANGS = ["en"] * 6 + ["de", "fr", "es", "ja", "zh", "ru", "pt", "it"]


def make_shards(folder: str, rows: int, shards: int) -> list[str]:
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    os.makedirs(folder, exist_ok=True)
    per = rows // shards
    files = []
    for s in range(shards):
        idx = range(s * per, (s + 1) * per)
        table = pa.table(
            {
                "id": [f"doc-{i}" for i in idx],
                "text": [texts[i % len(texts)] for i in idx],
                "language": [LANGS[i % len(LANGS)] for i in idx],
            }
        )
        p = os.path.join(folder, f"shard-{s:02d}.parquet")
        pq.write_table(table, p, compression="zstd")
        files.append(p)
    return files


def plain_loop(files: list[str], out_dir: str, batch_size: int) -> float:
    """The baseline: same shards, same reader, same stage, same Parquet output, no executor."""
    from dataengine.connectors.files import ParquetReader
    from dataengine.filters.basic import TextStats

    stage = TextStats()
    reader = ParquetReader({"id_field": "id"})
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    for i, f in enumerate(files):
        writer = None
        for batch in reader.read(f, batch_size):
            out = stage(batch)
            if writer is None:
                writer = pq.ParquetWriter(os.path.join(out_dir, f"{i}.parquet"), out.schema, compression="zstd")
            writer.write_table(out)
        writer.close()
    return time.perf_counter() - start


def executor_run(files: list[str], wh_path: str, workers: int, batch_size: int) -> float:
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict
    from dataengine.warehouse import Warehouse, init_warehouse

    init_warehouse(wh_path)
    wh = Warehouse(wh_path)
    pipe = pipeline_from_dict(
        {
            "name": "bench",
            "source": {"files": files, "format": "parquet", "options": {"id_field": "id"}},
            "stages": ["text_stats"],
            "output": {"table": "docs"},
            "executor": {"workers": workers, "batch_size": batch_size},
        }
    )
    start = time.perf_counter()
    result = run_pipeline(pipe, wh, progress=False)
    elapsed = time.perf_counter() - start
    assert result.rows_out == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return elapsed


GROUPBY_CHILD = """
import sys, time
from dataengine.warehouse import Warehouse

def hwm_kb():  # VmHWM is per address space; ru_maxrss would carry the parent's peak over exec
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

wh = Warehouse(sys.argv[1])
wh.sql("SELECT 1")  # warm: load extensions, attach
base = hwm_kb()
t = time.perf_counter()
out = wh.sql("SELECT language, count(*) AS docs FROM docs GROUP BY 1 ORDER BY 2 DESC")
elapsed = time.perf_counter() - t
peak = hwm_kb()
print(elapsed, base, peak, out.num_rows, sum(out.column('docs').to_pylist()))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/out/foundation")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    files = make_shards(os.path.join(args.out, "input"), args.rows, args.shards)
    text_mb = sum(os.path.getsize(f) for f in files) / 1e6

    loop_t, exec_t = [], []
    for r in range(args.repeats):  # interleave so machine noise hits both alike
        loop_t.append(plain_loop(files, os.path.join(args.out, f"loop{r}"), args.batch_size))
        exec_t.append(executor_run(files, os.path.join(args.out, f"wh{r}"), 1, args.batch_size))
    exec2 = executor_run(files, os.path.join(args.out, "wh-2workers"), 2, args.batch_size)

    proc = subprocess.run(
        [sys.executable, "-c", GROUPBY_CHILD, os.path.join(args.out, "wh0")], capture_output=True, text=True, check=True
    )
    gb_time, base_kb, peak_kb, groups, total = proc.stdout.split()
    table_mb = sum(
        os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(args.out, "wh0", "data")) for f in fs
    ) / 1e6

    loop_best, exec_best = min(loop_t), min(exec_t)
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": args.rows,
        "shards": args.shards,
        "input_parquet_mb": round(text_mb, 1),
        "plain_loop_s": [round(t, 2) for t in loop_t],
        "executor_1_worker_s": [round(t, 2) for t in exec_t],
        "executor_overhead_best_of": round(exec_best / loop_best - 1, 4),
        "executor_2_workers_s": round(exec2, 2),
        "speedup_2_workers_vs_plain_loop": round(loop_best / exec2, 2),
        "groupby_seconds": round(float(gb_time), 3),
        "groupby_groups": int(groups),
        "groupby_total_docs": int(total),
        "groupby_rss_before_mb": round(int(base_kb) / 1024, 1),
        "groupby_rss_peak_mb": round(int(peak_kb) / 1024, 1),
        "table_on_disk_mb": round(table_mb, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
