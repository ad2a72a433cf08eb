"""Fuzzy dedup end to end: ours vs datatrove's 4-stage MinHash vs datasketch MinHashLSH.

Documents: real Shakespeare speeches (the demo corpus) recombined into documents of ~8
speeches (~230 words), of which ``--dup-rate`` are near-copies of another document with a
few word edits. Same documents, same cores, one run; all three use word 5-grams with
14 bands x 8 rows (FineWeb's setting).

The peers run in a separate virtual environment (never a project dependency):
    python -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install datatrove datasketch
Usage:
    python benchmarks/bench_dedup.py --docs 100000 --peer-python /tmp/dtvenv/bin/python
    python benchmarks/bench_dedup.py --docs 1000000 --skip-peers      # memory at 1M documents
    python benchmarks/bench_dedup.py --docs 100000 --skip-peers --partial-copy   # + partial_copy, same table

``--partial-copy`` also runs the ``partial_copy`` stage on the same table in the same run
(after ``fuzzy_dedup``), and ``--partial-rate`` plants documents that quote 30-90% of an
earlier document inside shuffled words of another (partial copies).
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
import time
from importlib import resources


def make_docs(n: int, dup_rate: float, seed: int = 0, partial_rate: float = 0.0, unique: bool = False) -> list[dict]:
    """``unique``: each speech's words shuffled per document, so documents share no passages
    except the planted copies (the recombined corpus shares every speech with ~n/300 others)."""
    path = resources.files("dataengine") / "data" / "demo_corpus.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        speeches = [s for line in fh for s in json.loads(line)["text"].split("\n\n") if s.strip()]
    rng = random.Random(seed)

    def fresh(k: int) -> str:
        parts = rng.sample(speeches, k)
        if unique:
            parts = [" ".join(rng.sample(p.split(), len(p.split()))) for p in parts]
        return "\n\n".join(parts)

    docs = []
    for i in range(n):
        draw = rng.random()
        if docs and draw < partial_rate:  # a partial copy: part of an earlier document among new words
            words = rng.choice(docs)["text"].split()
            span = int(len(words) * rng.uniform(0.3, 0.9))
            start = rng.randrange(len(words) - span + 1)
            own = fresh(4).split()
            rng.shuffle(own)
            text = " ".join(own[: len(own) // 2] + words[start:start + span] + own[len(own) // 2:])
        elif docs and draw < partial_rate + dup_rate:
            words = rng.choice(docs)["text"].split()
            for _ in range(rng.randint(1, 3)):
                words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
            text = " ".join(words)
        else:
            text = fresh(8)
        docs.append({"id": f"doc-{i:07d}", "text": text})
    return docs


def run_ours(jsonl: str, root: str, workers: int, partial_copy: bool = False) -> dict:
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict
    from dataengine.warehouse import Warehouse, init_warehouse

    init_warehouse(root)
    wh = Warehouse(root)
    run_pipeline(pipeline_from_dict({"source": {"files": [jsonl], "format": "jsonl"}, "output": {"table": "docs"}}), wh, progress=False)
    pipe = pipeline_from_dict(
        {
            "source": {"table": "docs"},
            "stages": [{"name": "fuzzy_dedup", "params": {"preset": "fineweb", "jaccard_check": False, "order_by": ["id"]}}],
            "output": {"table": "docs"},
            "executor": {"workers": workers, "batch_size": 5000},
        }
    )
    with open("/proc/self/clear_refs", "w") as fh:  # reset VmHWM: the ingest above is not measured
        fh.write("5")
    sampler = TreeRssSampler()
    start, cpu = time.perf_counter(), cpu_seconds()
    run_pipeline(pipe, wh, progress=False)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    sampler.stop()
    removed = wh.sql("SELECT count(*) FILTER (WHERE NOT fuzzy_dup_keep) FROM docs").column(0)[0].as_py()
    result = {"seconds": seconds, "cpu_seconds": cpu, "removed": removed, "dedup_peak_rss_mb_driver": vm_hwm_mb(),
              "dedup_peak_rss_mb_all_processes": sampler.peak_mb}
    if partial_copy:
        pipe = pipeline_from_dict({
            "source": {"table": "docs"},
            "stages": [{"name": "partial_copy"}],
            "output": {"table": "docs_copies"},
            "executor": {"workers": workers, "batch_size": 5000},
        })
        sampler = TreeRssSampler()
        start, cpu = time.perf_counter(), cpu_seconds()
        run_pipeline(pipe, wh, progress=False)
        result["partial_copy_seconds"] = time.perf_counter() - start
        result["partial_copy_cpu_seconds"] = cpu_seconds() - cpu
        sampler.stop()
        result["partial_copy_peak_rss_mb_all_processes"] = sampler.peak_mb
        result["partial_copy_flagged"] = wh.sql("SELECT count(copy_of) FROM docs_copies").column(0)[0].as_py()
    return result


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (the pool workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def vm_hwm_mb() -> float:
    """This process's peak RSS since the last clear_refs reset."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


class TreeRssSampler:
    """Peak of the summed RSS of this process and all its children (workers), sampled every 0.1 s."""

    def __init__(self):
        import threading

        import psutil

        self.peak_mb, self._stop = 0.0, threading.Event()
        me = psutil.Process()

        def sample():
            while not self._stop.is_set():
                total = 0
                for p in [me, *me.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak_mb = max(self.peak_mb, total / 2**20)
                self._stop.wait(0.1)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


DATATROVE = textwrap.dedent(
    """
    import sys, time, json
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
        MinhashDedupCluster, MinhashDedupFilter)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    src, work, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = MinhashConfig(hash_config=HashConfig(precision=64), num_buckets=14, hashes_per_bucket=8, n_grams=5)
    reader = lambda: JsonlReader(src, glob_pattern="*.jsonl", text_key="text", id_key="id")
    t = time.perf_counter()
    LocalPipelineExecutor([reader(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)],
                          tasks=workers, workers=workers, logging_dir=f"{work}/l1").run()
    LocalPipelineExecutor([MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=cfg)],
                          tasks=cfg.num_buckets, workers=workers, logging_dir=f"{work}/l2").run()
    LocalPipelineExecutor([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/ids", config=cfg)],
                          tasks=1, logging_dir=f"{work}/l3").run()
    LocalPipelineExecutor([reader(), MinhashDedupFilter(input_folder=f"{work}/ids", exclusion_writer=JsonlWriter(f"{work}/removed")),
                           JsonlWriter(f"{work}/out")], tasks=workers, workers=workers, logging_dir=f"{work}/l4").run()
    seconds = time.perf_counter() - t
    import glob, gzip
    removed = sum(1 for f in glob.glob(f"{work}/removed/*") for _ in gzip.open(f, "rt"))
    print(json.dumps({"seconds": seconds, "removed": removed}))
    """
)

DATASKETCH = textwrap.dedent(
    """
    import sys, time, json, re
    from datasketch import MinHash, MinHashLSH
    src = sys.argv[1]
    docs = [json.loads(l) for l in open(src)]
    t = time.perf_counter()
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    sigs = []
    for d in docs:
        w = re.sub(r"[^\\w\\s]", " ", d["text"].lower()).split()
        shingles = {" ".join(w[i:i + 5]) for i in range(max(1, len(w) - 4))}
        m = MinHash(num_perm=112)
        m.update_batch([s.encode() for s in shingles])
        lsh.insert(d["id"], m)
        sigs.append(m)
    parent = {}
    def find(x):
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x]); x = parent[x]
        return x
    for d, m in zip(docs, sigs):
        for other in lsh.query(m):
            a, b = find(d["id"]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    removed = sum(1 for d in docs if find(d["id"]) != d["id"])
    print(json.dumps({"seconds": time.perf_counter() - t, "removed": removed}))
    """
)


def peak_rss_mb(pid_children: bool = True) -> float:
    import resource

    who = resource.RUSAGE_CHILDREN if pid_children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--dup-rate", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--peer-python", default="/tmp/dtvenv/bin/python")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--out", default="benchmarks/out/dedup")
    ap.add_argument("--partial-copy", action="store_true", help="also time partial_copy on the same table")
    ap.add_argument("--partial-rate", type=float, default=0.05, help="share of planted partial copies")
    ap.add_argument("--unique", action="store_true", help="documents share nothing but the planted copies")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(os.path.join(args.out, "input"))
    jsonl = os.path.join(args.out, "input", "docs.jsonl")
    docs = make_docs(args.docs, args.dup_rate, partial_rate=args.partial_rate if args.partial_copy else 0.0,
                     unique=args.unique)
    with open(jsonl, "w") as fh:
        for d in docs:
            fh.write(json.dumps(d) + "\n")
    del docs
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "docs": args.docs,
        "workers": args.workers,
    }
    # ours runs in a child process so its peak RSS is measured on its own
    child = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from bench_dedup import run_ours
        result = run_ours({jsonl!r}, {os.path.join(args.out, 'wh')!r}, {args.workers}, {args.partial_copy!r})
        open({os.path.join(args.out, 'ours.json')!r}, "w").write(json.dumps(result))
        """
    )
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-c", child], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"our run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    with open(os.path.join(args.out, "ours.json")) as fh:
        ours = json.load(fh)
    rss = [l for l in proc.stderr.splitlines() if "Maximum resident set size" in l]
    ours["peak_rss_mb_largest_process_incl_ingest"] = int(rss[0].split()[-1]) / 1024 if rss else None
    ours["docs_per_s"] = args.docs / ours["seconds"]
    ours["docs_per_cpu_s"] = args.docs / ours["cpu_seconds"]
    if args.partial_copy:
        ours["partial_copy_docs_per_s"] = args.docs / ours["partial_copy_seconds"]
        ours["partial_copy_docs_per_cpu_s"] = args.docs / ours["partial_copy_cpu_seconds"]
        ours["partial_copy_cost_vs_fuzzy"] = ours["partial_copy_seconds"] / ours["seconds"]
    result["ours"] = ours
    if not args.skip_peers:
        for name, script in (("datatrove", DATATROVE), ("datasketch", DATASKETCH)):
            work = os.path.join(args.out, name)
            os.makedirs(work, exist_ok=True)
            src = os.path.dirname(jsonl) if name == "datatrove" else jsonl
            proc = subprocess.run(
                [args.peer_python, "-c", script, src, work, str(args.workers)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                result[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
                continue
            peer = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
            peer["docs_per_s"] = args.docs / peer["seconds"]
            peer["ours_speedup"] = peer["seconds"] / ours["seconds"]
            result[name] = peer
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
