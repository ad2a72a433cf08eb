"""Fuzzy dedup's reduce at scale: DuckDB on the driver vs the Dask and Spark engine reduces.

Documents: real Shakespeare verse lines (the demo corpus) recombined into documents of
20-60 lines (150-450 words, ~300 on average), with planted near-duplicate clusters whose members are scattered
over all shards: sizes from a power law (2 .. 2,000), 30% of them chains (each member is
its predecessor with 1-2 word substitutions, so the ends of a long chain are not similar)
and 70% stars (each member is the base with 1-2 substitutions). ``--dup-rate`` of the
documents are non-first members of a planted cluster.

Phases:
1. **map** (once per size, streamed shard by shard in ``--workers`` processes): generate a
   shard's documents and run ``fuzzy_dedup``'s own map step (MinHash + LSH bands, FineWeb's
   14 x 8 over word 5-grams), writing the mapped shard file a pipeline would write.
2. **reduce**, each configuration in a fresh process on the same mapped files, through the
   functions the executors call (``reduce_on_driver``; ``reduce_on_engine`` with the Dask
   or Spark shuffle): wall time, peak RSS of the driver (VmHWM, reset after the cluster
   started) and of every other process (sampled every 0.25 s), CPU seconds of the process
   tree, logical and physical shuffle bytes, components rounds, per-step counts.
3. **check**: every reduce gives the same columns for every row, and the planted clusters
   are recovered (a planted cluster is recovered when all its members share one cluster).

Usage (see benchmarks/RESULTS.md for the numbers and the machine):
    python benchmarks/bench_dedup_scale.py --docs 1000000
    python benchmarks/bench_dedup_scale.py --docs 10000000 --reduces driver,dask,spark
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from importlib import resources

import numpy as np

SEED = 1234


# -- documents with planted clusters ------------------------------------------------------

def verse_lines() -> list[str]:
    """The demo corpus's lines of three words or more (~11,000 distinct, ~7.5 words each).

    Lines, not whole speeches: with 3,200 speeches, documents of a few speeches share half
    their text by chance often enough at millions of documents to create false candidates;
    two 40-line documents share 0.14 lines on average."""
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        return [s for line in fh for s in json.loads(line)["text"].split("\n") if len(s.split()) >= 3]


def plant_clusters(n: int, dup_rate: float, seed: int = SEED) -> np.ndarray:
    """``parent[d]``: -1 for a document of its own or a cluster's base, else the document it
    was derived from. Cluster members are spread uniformly over the corpus."""
    rng = np.random.default_rng(seed)
    parent = np.full(n, -1, dtype=np.int64)
    order = rng.permutation(n)
    members_left = int(n * dup_rate)
    pos = 0
    while members_left > 0 and pos < n - 1:
        size = int(min(2000, max(2, np.floor(2 * (1 - rng.random()) ** (-1 / 1.2)))))  # Pareto, alpha 1.2
        size = min(size, members_left + 1, n - pos)
        docs = order[pos : pos + size]
        pos += size
        members_left -= size - 1
        if rng.random() < 0.3:  # a chain: each member from its predecessor
            parent[docs[1:]] = docs[:-1]
        else:  # a star: each member from the base
            parent[docs[1:]] = docs[0]
    return parent


class Texts:
    """The text of document ``d``, a pure function of ``d`` (any shard can rebuild any parent)."""

    def __init__(self, parent: np.ndarray):
        self.parent = parent
        self.lines = verse_lines()
        self.cache: dict[int, str] = {}

    def __call__(self, d: int) -> str:
        path = [d]  # d, its parent, ... up to a cached text or a base (chains are long)
        while path[-1] not in self.cache and self.parent[path[-1]] >= 0:
            path.append(int(self.parent[path[-1]]))
        text = self.cache.get(path[-1])
        for node in reversed(path):
            if text is None or node not in self.cache:
                text = self._make(node, text)
            else:
                text = self.cache[node]
        return text

    def _make(self, d: int, parent_text: str | None) -> str:
        rng = random.Random(SEED * 1_000_003 + d)
        if self.parent[d] < 0:
            text = "\n".join(rng.sample(self.lines, rng.randint(20, 60)))
        else:
            words = parent_text.split(" ")
            for _ in range(rng.randint(1, 2)):
                words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
            text = " ".join(words)
        if len(self.cache) > 200_000:
            self.cache.clear()
        self.cache[d] = text
        return text


def stage_params(jaccard_check: bool) -> dict:
    return {"preset": "fineweb", "jaccard_check": jaccard_check, "order_by": ["id"], "seed": 42}


def map_shard(args) -> dict:
    """Generate shard ``i``'s documents and write its mapped file (the fuzzy_dedup map step)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataengine.filters.fuzzy_dedup import FuzzyDedup

    i, shard_docs, n, parent_path, out_dir, jaccard_check = args
    target = os.path.join(out_dir, f"shard-{i:05d}.parquet")
    if os.path.exists(target):
        return {"shard": i, "skipped": True}
    start, cpu = time.perf_counter(), time.process_time()
    parent = np.load(parent_path, mmap_mode="r")
    texts = Texts(parent)
    stage = FuzzyDedup(stage_params(jaccard_check))
    lo, hi = i * shard_docs, min(n, (i + 1) * shard_docs)
    writer = None
    for b in range(lo, hi, 10_000):
        ids = range(b, min(hi, b + 10_000))
        batch = pa.table({"id": [f"d{d:09d}" for d in ids], "text": [texts(d) for d in ids]})
        mapped = stage.map(batch)
        if not jaccard_check:
            mapped = mapped.drop_columns(["text"])
        if writer is None:
            writer = pq.ParquetWriter(target + ".tmp", mapped.schema)
        writer.write_table(mapped)
    writer.close()
    os.replace(target + ".tmp", target)
    return {"shard": i, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "docs": hi - lo}


def prepare(out: str, n: int, shard_docs: int, dup_rate: float, workers: int, jaccard_check: bool) -> dict:
    """Phase 1 (resumable: finished shards are kept)."""
    import multiprocessing as mp

    mapped = os.path.join(out, "mapped")
    os.makedirs(mapped, exist_ok=True)
    parent_path = os.path.join(out, "parent.npy")
    if not os.path.exists(parent_path):
        np.save(parent_path, plant_clusters(n, dup_rate))
    shards = (n + shard_docs - 1) // shard_docs
    start = time.perf_counter()
    jobs = [(i, shard_docs, n, parent_path, mapped, jaccard_check) for i in range(shards)]
    done = []
    with mp.get_context("spawn").Pool(workers) as pool:
        for rec in pool.imap_unordered(map_shard, jobs):
            done.append(rec)
            took = "(kept)" if rec.get("skipped") else f"{rec['seconds']:.1f} s"
            print(f"  map: shard {rec['shard']} {took} [{len(done)}/{shards}]", flush=True)
    fresh = [r for r in done if not r.get("skipped")]
    seconds = time.perf_counter() - start
    cpu = [r["cpu_seconds"] for r in fresh if "cpu_seconds" in r]
    return {"shards": shards, "map_seconds": seconds if fresh else None,
            "map_docs_per_s": sum(r["docs"] for r in fresh) / seconds if fresh else None,
            "map_cpu_seconds_per_1k_docs": 1000 * sum(cpu) / sum(r["docs"] for r in fresh) if cpu else None,
            "mapped_bytes": sum(os.path.getsize(os.path.join(mapped, f)) for f in os.listdir(mapped))}


# -- one reduce, measured, in its own process ----------------------------------------------

class TreeSampler:
    """Peak RSS per process (this one and every descendant) and CPU seconds, every 0.25 s."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.peaks: dict[int, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        import psutil

        while not self._stop.is_set():
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    with p.oneshot():
                        rss = p.memory_info().rss
                        cpu = p.cpu_times()
                        entry = self.peaks.setdefault(p.pid, {"role": role_of(p), "peak_mb": 0.0, "cpu_s": 0.0})
                        entry["peak_mb"] = max(entry["peak_mb"], rss / 2**20)
                        entry["cpu_s"] = max(entry["cpu_s"], cpu.user + cpu.system)
                except psutil.Error:
                    pass
            self._stop.wait(0.25)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return self.peaks


def role_of(proc) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:
        return "?"
    if proc.pid == os.getpid():
        return "driver"
    if "java" in cmd.split(" ")[0] or "org.apache.spark" in cmd:
        return "spark jvm (driver + executor, local mode)"
    if "pyspark.daemon" in cmd or "pyspark/daemon" in cmd or "pyspark.worker" in cmd:
        return "spark python worker"
    if "spawn_main" in cmd or "forkserver" in cmd or "multiprocessing" in cmd:
        return "dask worker or nanny"
    return cmd[:60]


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


def run_one(kind: str, out: str, jaccard_check: bool, driver_memory: str | None) -> dict:
    """One reduce configuration (this runs in a fresh process)."""
    from dataengine.filters.fuzzy_dedup import FuzzyDedup

    mapped_dir = os.path.join(out, "mapped")
    files = sorted(os.path.join(mapped_dir, f) for f in os.listdir(mapped_dir) if f.endswith(".parquet"))
    stage = FuzzyDedup(stage_params(jaccard_check))
    target = os.path.join(out, f"reduce-{kind}")
    shutil.rmtree(target, ignore_errors=True)
    sampler = TreeSampler()
    started = time.perf_counter()
    if kind == "driver":
        from dataengine.engine.reduce_plan import reduce_on_driver

        reset_peak_rss()
        sampler.start()
        stats = reduce_on_driver(stage, files, target, progress=True, memory_limit=driver_memory)
        setup = 0.0
    elif kind == "dask":
        import logging

        import dask
        from distributed import Client, LocalCluster

        from dataengine.engine.dask_executor import DaskShuffle
        from dataengine.engine.shuffle_plan import reduce_on_engine

        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
        setup = time.perf_counter() - started
        reset_peak_rss()
        sampler.start()
        stats = reduce_on_engine(DaskShuffle(client), stage, files, target, partitions=len(files), progress=True)
    else:
        from dataengine.engine.shuffle_plan import reduce_on_engine
        from dataengine.engine.spark_executor import SparkShuffle, spark_session

        session = spark_session(workers=2, retries=3, memory="4g")
        session.range(2).count()  # the JVM and its first job: start-up, not the reduce
        setup = time.perf_counter() - started
        reset_peak_rss()
        sampler.start()
        stats = reduce_on_engine(SparkShuffle(session), stage, files, target, partitions=len(files), progress=True)
    peaks = sampler.stop()
    driver_hwm = vm_hwm_mb()
    others = [dict(pid=pid, **p) for pid, p in peaks.items() if p["role"] != "driver"]
    return {
        "reduce": kind,
        "setup_seconds": round(setup, 1),
        "seconds": stats["seconds"],
        "rounds": stats.get("rounds"),
        "shuffle_bytes": stats.get("shuffle_bytes"),
        "shuffle_bytes_physical": stats.get("shuffle_bytes_physical"),
        "driver_peak_rss_mb": round(driver_hwm, 1),
        "other_processes": sorted(others, key=lambda p: -p["peak_mb"]),
        "cpu_seconds_tree": round(sum(p["cpu_s"] for p in peaks.values()), 1),
        "steps": [{k: s.get(k) for k in ("step", "rows", "final_rows", "seconds", "bytes_in", "stats",
                                          "largest_partition_rows", "shuffle_bytes_physical")}
                  for s in stats["steps"]],
    }


def run_in_child(kind: str, out: str, jaccard_check: bool, driver_memory: str | None) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    result = os.path.join(out, f"result-{kind}.json")
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {here!r})
        from bench_dedup_scale import run_one
        if __name__ == "__main__":
            r = run_one({kind!r}, {out!r}, {jaccard_check!r}, {driver_memory!r})
            open({result!r}, "w").write(json.dumps(r))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code])
    if proc.returncode != 0:
        return {"reduce": kind, "error": f"exit {proc.returncode}"}
    with open(result) as fh:
        return json.load(fh)


# -- checks --------------------------------------------------------------------------------

def compare_and_score(out: str, kinds: list[str], n: int, shard_docs: int) -> dict:
    """Rows where reduces disagree, and how many planted clusters the first one recovered."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")

    def rel(kind):
        return (f"(SELECT _shard, _row, fuzzy_dup_cluster AS c, fuzzy_dup_cluster_size AS s, fuzzy_dup_keep AS k "
                f"FROM read_parquet('{out}/reduce-{kind}/*/*.parquet', hive_partitioning = true))")

    report: dict = {}
    base = kinds[0]
    for other in kinds[1:]:
        report[f"rows differing {base} vs {other}"] = con.execute(
            f"""SELECT count(*) FROM {rel(base)} a FULL JOIN {rel(other)} b USING (_shard, _row)
                WHERE a.c IS DISTINCT FROM b.c OR a.s IS DISTINCT FROM b.s OR a.k IS DISTINCT FROM b.k""").fetchone()[0]
    parent = np.load(os.path.join(out, "parent.npy"))
    root = np.arange(n)
    root[parent >= 0] = parent[parent >= 0]
    for _ in range(2001):  # chains: follow parents to the base
        nxt = np.where(parent[root] >= 0, parent[root], root)
        if np.array_equal(nxt, root):
            break
        root = nxt
    con.register("planted", __import__("pyarrow").table({"d": np.arange(n), "planted": root}))
    got = con.execute(
        f"""WITH r AS (SELECT CAST(substr(_shard, 7) AS BIGINT) * {shard_docs} + _row AS d, c FROM {rel(base)})
            SELECT
              (SELECT count(*) FROM (SELECT planted FROM r JOIN planted USING (d) GROUP BY planted
                                     HAVING count(*) > 1 AND count(DISTINCT c) = 1)) AS recovered,
              (SELECT count(*) FROM (SELECT planted FROM planted GROUP BY planted HAVING count(*) > 1)) AS planted_clusters,
              (SELECT count(*) FROM (SELECT c FROM r JOIN planted USING (d) GROUP BY c
                                     HAVING count(DISTINCT planted) > 1)) AS clusters_merging_planted
        """).fetchone()
    report.update(planted_clusters=got[1], recovered=got[0], clusters_merging_different_planted=got[2])
    return report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--shard-docs", type=int, default=100_000, help="documents per shard (mapped file)")
    ap.add_argument("--dup-rate", type=float, default=0.2)
    ap.add_argument("--workers", type=int, default=2, help="processes for the map phase")
    ap.add_argument("--reduces", default="driver,dask,spark")
    ap.add_argument("--jaccard-check", action="store_true")
    ap.add_argument("--driver-memory", default=None, help="DuckDB memory_limit of the driver reduce (default: DuckDB's)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the reduce outputs")
    ap.add_argument("--map-only", action="store_true", help="only build (or finish) the mapped shards")
    args = ap.parse_args()
    out = os.path.abspath(args.out or f"benchmarks/out/dedup-scale-{args.docs}")
    os.makedirs(out, exist_ok=True)
    kinds = [] if args.map_only else args.reduces.split(",")
    print(f"map phase: {args.docs:,} documents -> {out}/mapped", flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "docs": args.docs, "shard_docs": args.shard_docs, "dup_rate": args.dup_rate,
        "jaccard_check": args.jaccard_check, "load_at_start": os.getloadavg(),
        "map": prepare(out, args.docs, args.shard_docs, args.dup_rate, args.workers, args.jaccard_check),
        "reduces": [],
    }
    for kind in kinds:
        print(f"reduce: {kind}", flush=True)
        r = run_in_child(kind, out, args.jaccard_check, args.driver_memory)
        r["load_after"] = os.getloadavg()
        result["reduces"].append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("steps", "other_processes")}), flush=True)
    ok = [r["reduce"] for r in result["reduces"] if "error" not in r]
    if ok:
        result["check"] = compare_and_score(out, ok, args.docs, args.shard_docs)
    with open(os.path.join(out, "result.json"), "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps(result, indent=1))
    if not args.keep:
        for kind in kinds:
            shutil.rmtree(os.path.join(out, f"reduce-{kind}"), ignore_errors=True)


if __name__ == "__main__":
    main()
