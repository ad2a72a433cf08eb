"""Executor scaling: the same CPU-heavy pipeline on local, Dask and Spark with 1 and 2 workers.

Workload: real web pages (the two Apache-2.0 WARC files in tests/data/executors, 38 HTML
responses) ingested once, then replicated ``--copies`` times under new ids into a table
``pages``; the pipeline reads ``pages`` at that snapshot in ``--shards`` partitions and
runs ``extract`` (trafilatura: CPU-bound Python), ``langid`` and ``exact_dedup`` (a
global stage: map per batch, reduce in DuckDB on the driver).

Measured per executor and worker count:
* start-up: creating the LocalCluster + Client (Dask) or the SparkSession (Spark), alone;
* processing: ``run_pipeline`` with that cluster/session (plan, shards, reduce, commit);
  run ``--repeats`` times; the first run also pays worker-side imports and model loads.

Usage: python benchmarks/bench_executors.py [--copies 60] [--shards 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARCS = sorted(str(p) for p in (ROOT / "tests" / "data" / "executors").glob("*.warc.gz"))


def build_pages(wh_path: str, copies: int) -> int:
    """Ingest the WARCs and replicate the pages; returns the snapshot to read."""
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict
    from dataengine.warehouse import Warehouse, init_warehouse

    shutil.rmtree(wh_path, ignore_errors=True)
    init_warehouse(wh_path)
    wh = Warehouse(wh_path)
    ingest = {"name": "ingest", "source": {"files": WARCS, "format": "warc"}, "output": {"table": "raw"}}
    run_pipeline(pipeline_from_dict(ingest), wh, progress=False, workers=1)
    wh.execute(
        f"CREATE TABLE pages AS SELECT raw.* REPLACE (id || '-' || k::VARCHAR AS id) FROM raw, range({copies}) t(k)"
    )
    return wh.current_snapshot()


def pipeline(version: int, shards: int, table: str):
    from dataengine.core.pipeline import pipeline_from_dict

    return pipeline_from_dict(
        {
            "name": f"bench-{table}",
            "source": {"table": "pages", "version": version},
            "stages": ["extract", "langid", "exact_dedup"],
            "output": {"table": table},
            "executor": {"shards": shards, "batch_size": 100},
        }
    )


def start_dask(workers: int):
    """The LocalCluster exactly as `--executor dask` starts it."""
    from contextlib import ExitStack

    from dataengine.engine.dask_executor import dask_client
    from dataengine.core.pipeline import ExecutorConfig

    stack = ExitStack()
    client = stack.enter_context(dask_client(ExecutorConfig(kind="dask", workers=workers, threads=1)))
    return {"client": client}, stack.close


def start_spark(workers: int):
    from dataengine.engine.spark_executor import spark_session

    session = spark_session(workers=workers)
    return {"spark": session}, session.stop


def start_local(workers: int):
    return {"workers": workers}, lambda: None


STARTERS = {"local": start_local, "dask": start_dask, "spark": start_spark}


def tree_cpu_seconds() -> float:
    """CPU seconds used so far by this process and every process under it (workers, JVM).

    Wall time on a shared 2-core machine moves with other people's jobs; CPU seconds of
    the run's own processes do not, so they are the steadier measure of overhead.
    """
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def measure(kind: str, workers: int, wh_path: str, version: int, shards: int, repeats: int, rows: int) -> None:
    from dataengine.engine import run_pipeline
    from dataengine.warehouse import Warehouse

    wh = Warehouse(wh_path)
    t0 = time.perf_counter()
    options, stop = STARTERS[kind](workers)
    startup = time.perf_counter() - t0
    runs, cpu = [], []
    try:
        for rep in range(repeats):
            table = f"out_{kind}_{workers}_{rep}"
            t0, c0 = time.perf_counter(), tree_cpu_seconds()
            result = run_pipeline(pipeline(version, shards, table), wh, executor=kind, progress=False, **options)
            runs.append(round(time.perf_counter() - t0, 2))
            cpu.append(round(tree_cpu_seconds() - c0, 2))
            assert result.rows_out == rows, (kind, workers, result.rows_out, rows)
    finally:
        stop()
    row = {"executor": kind, "workers": workers, "startup_s": round(startup, 2), "runs_s": runs, "best_s": min(runs),
           "cpu_s": cpu, "best_cpu_s": min(cpu)}
    print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=60)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--executors", default="local,dask,spark")
    ap.add_argument("--out", default="benchmarks/out/executors")
    ap.add_argument("--one", nargs=5, metavar=("EXECUTOR", "WORKERS", "WAREHOUSE", "VERSION", "ROWS"),
                    help="internal: measure one configuration in this process")
    args = ap.parse_args()
    if args.one:
        kind, workers, wh_path, version, rows = args.one
        measure(kind, int(workers), wh_path, int(version), args.shards, args.repeats, int(rows))
        return
    os.makedirs(args.out, exist_ok=True)
    wh_path = os.path.join(args.out, "warehouse")
    version = build_pages(wh_path, args.copies)
    from dataengine.warehouse import Warehouse

    rows = Warehouse(wh_path).sql(f"SELECT count(*) FROM pages@{version}").column(0)[0].as_py()
    print(f"{rows} pages in {args.shards} shards", flush=True)
    results = []
    for kind in args.executors.split(","):
        for workers in (1, 2):
            # A fresh interpreter per configuration: Spark's JVM and warm imports must not carry over.
            cmd = [sys.executable, __file__, "--one", kind, str(workers), wh_path, str(version), str(rows),
                   "--shards", str(args.shards), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    local1 = next(r for r in results if r["executor"] == "local" and r["workers"] == 1)
    lines = [
        "| executor | workers | start-up s | processing s (runs) | best | speedup 1->2 | wall vs local@1 "
        "| CPU s (best) | CPU vs local@1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        one = next(x["best_s"] for x in results if x["executor"] == r["executor"] and x["workers"] == 1)
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['startup_s']:.2f} | {', '.join(f'{s:.1f}' for s in r['runs_s'])} "
            f"| {r['best_s']:.2f} | {one / r['best_s']:.2f}x | {100 * (r['best_s'] / local1['best_s'] - 1):+.0f}% "
            f"| {r['best_cpu_s']:.1f} | {100 * (r['best_cpu_s'] / local1['best_cpu_s'] - 1):+.0f}% |"
        )
    table = "\n".join(lines)
    print(table)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}", "rows": rows,
            "shards": args.shards, "copies": args.copies, "results": results}
    Path(args.out, "results.json").write_text(json.dumps(meta, indent=1))
    Path(args.out, "table.md").write_text(table + "\n")


if __name__ == "__main__":
    sys.exit(main())
