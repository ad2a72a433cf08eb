"""WARC -> text throughput: our ingest (trafilatura / resiliparse paths) vs datatrove and bare loops.

Every contender reads the same WARC of real pages (the 181 article-extraction-benchmark
pages wrapped into WARC response records, repeated ``--copies`` times under distinct
URLs) in its own process, one after the other, on the same machine. For each we report
wall-clock docs/s and docs per CPU-second (user+sys of the process and its children):
the machine is shared, so CPU time is the fairer "per core" figure; ratios compare
contenders of the same run only.

* datatrove 0.10.1 (separate venv, never a project dependency):
  WarcReader -> Trafilatura (its defaults: favour_precision, deduplicate) -> JsonlWriter
* bare fastwarc + trafilatura loop (datatrove's trafilatura options), bare fastwarc +
  resiliparse loop: the floor of what a WARC -> text job costs
* ours: ``dataengine ingest warc`` end to end (reader, extract stage, Parquet, DuckLake
  commit), ``--no-langid`` to do the same work as the peers; 1 worker, then 2 workers
  over the same pages split into 2 files (scaling), and the resiliparse path once more on
  ``--scaling-copies`` copies, where the per-call fixed cost matters less.
* streaming: ``--rss-gb 1`` also builds a ~1 GB uncompressed WARC and reports the
  peak RSS of ingesting it (resiliparse path + langid).

    python benchmarks/bench_ingest.py --datatrove-python /tmp/dtvenv/bin/python [--copies 5] [--rss-gb 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

BARE_TRAFILATURA = r"""
import sys, trafilatura
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
n = 0
for path in sys.argv[1:]:
    for rec in ArchiveIterator(path, record_types=WarcRecordType.response, auto_decode="all", fsspec_args=False):
        body = rec.reader.read()
        text = trafilatura.extract(bytes_to_str(body, detect_encoding(body)), favor_precision=True,
                                   include_comments=False, deduplicate=True)
        n += 1
print(n)
"""

BARE_RESILIPARSE = r"""
import sys
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding
from resiliparse.extract.html2text import extract_plain_text
n = 0
for path in sys.argv[1:]:
    for rec in ArchiveIterator(path, record_types=WarcRecordType.response, auto_decode="all", fsspec_args=False):
        body = rec.reader.read()
        text = extract_plain_text(bytes_to_str(body, detect_encoding(body)), main_content=True)
        n += 1
print(n)
"""

DATATROVE = r"""
import sys, os
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.writers import JsonlWriter
folder, out, logs, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
files = sorted(f for f in os.listdir(folder) if f.endswith(".warc.gz"))
LocalPipelineExecutor(
    pipeline=[WarcReader(folder, glob_pattern="*.warc.gz"), Trafilatura(), JsonlWriter(out)],
    tasks=len(files), workers=workers, logging_dir=logs,
).run()
"""


def timed(cmd: list[str], env: dict | None = None) -> dict:
    """Run a command; wall seconds, CPU seconds of it and its children, its peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (incl. its waited children)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{text[-4000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": text}


def build_warcs(copies: int, folder: Path, parts: int) -> tuple[list[Path], int]:
    """The AEB pages x copies, as ``parts`` WARC files (same pages overall, whatever ``parts``)."""
    from dataengine.connectors.warc_write import write_html_warc
    from extraction_quality import DEFAULT_PAGES, load_pages

    pages = load_pages(DEFAULT_PAGES)
    items = [(f"{p['url']}#copy{c}", p["html"]) for c in range(copies) for p in pages]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(parts):
        path = folder / f"pages-{i}.warc.gz"
        write_html_warc(str(path), items[i::parts])
        paths.append(path)
    return paths, len(items)


def ours(files: list[Path], extractor: str, workers: int, langid: bool = False) -> dict:
    from dataengine.warehouse import init_warehouse

    wh = Path(tempfile.mkdtemp(prefix="bench-wh-"))
    init_warehouse(wh)
    cmd = [sys.executable, "-m", "dataengine.cli", "--warehouse", str(wh), "ingest", "warc", *map(str, files),
           "--table", "docs", "--extractor", extractor, "--workers", str(workers), "--quiet"]
    if not langid:
        cmd.append("--no-langid")
    try:
        return timed(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        shutil.rmtree(wh, ignore_errors=True)


def datatrove(python: str, folder: Path, workers: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench-dt-"))
    try:
        return timed([python, "-c", DATATROVE, str(folder), str(out / "out"), str(out / "logs"), str(workers)])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def rss_run(gigabytes: float, folder: Path) -> dict:
    """Ingest one ~N GB uncompressed WARC (resiliparse + langid), report peak RSS."""
    from dataengine.connectors.warc_write import write_html_warc
    from extraction_quality import DEFAULT_PAGES, load_pages

    pages = load_pages(DEFAULT_PAGES)
    size = sum(len(p["html"]) for p in pages)
    copies = max(1, int(gigabytes * 2**30 / size) + 1)
    path = folder / "big.warc"
    n = write_html_warc(str(path), ((f"{p['url']}#big{c}", p["html"]) for c in range(copies) for p in pages))
    result = ours([path], "resiliparse", 1, langid=True)
    result.update(docs=n, file_gb=path.stat().st_size / 2**30)
    path.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datatrove-python", default="/tmp/dtvenv/bin/python")
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--rss-gb", type=float, default=0, help="also run the streaming test on a WARC this big")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--scaling-copies", type=int, default=20,
                    help="also measure 1 -> 2 workers of the resiliparse path on this many copies (0: skip)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    rows = []
    fixed: dict = {}
    print(f"load average at start: {os.getloadavg()}", flush=True)

    def report(name, result, docs, cores=1):
        row = {"contender": name, "cores": cores, "docs": docs, "wall_s": round(result["wall"], 2),
               "docs_per_s": round(docs / result["wall"], 1), "docs_per_cpu_s": round(docs / result["cpu"], 1),
               "peak_rss_mb": round(result["peak_rss_mb"])}
        rows.append(row)
        print(json.dumps(row), flush=True)

    try:
        one, docs = build_warcs(args.copies, work / "one", 1)
        two, _ = build_warcs(args.copies, work / "two", 2)
        print(f"{docs} pages, {sum(p.stat().st_size for p in one) / 2**20:.1f} MB WARC", flush=True)
        py = sys.executable
        tiny = work / "tiny"
        tiny.mkdir()
        shutil.copy(ROOT / "tests" / "data" / "warc" / "example.warc.gz", tiny / "one-page.warc.gz")
        fixed.update({x: ours([tiny / "one-page.warc.gz"], x, 1) for x in ("resiliparse", "trafilatura")})
        for x, r in fixed.items():
            print(f"fixed cost of one `ingest` call ({x}, 1 page): {r['wall']:.1f}s wall, {r['cpu']:.1f}s CPU", flush=True)

        def net(result, extractor):
            """The run minus the fixed start-up + commit cost of a CLI call (measured on 1 page)."""
            f = fixed[extractor]
            return {**result, "wall": result["wall"] - f["wall"], "cpu": result["cpu"] - f["cpu"]}
        report("bare fastwarc + resiliparse loop", timed([py, "-c", BARE_RESILIPARSE, *map(str, one)]), docs)
        r = ours(one, "resiliparse", 1)
        report("ours: ingest --extractor resiliparse", r, docs)
        report("ours: ingest --extractor resiliparse, net of fixed cost", net(r, "resiliparse"), docs)
        report("bare fastwarc + trafilatura loop (datatrove options)",
               timed([py, "-c", BARE_TRAFILATURA, *map(str, one)]), docs)
        r = ours(one, "trafilatura", 1)
        report("ours: ingest --extractor trafilatura", r, docs)
        report("ours: ingest --extractor trafilatura, net of fixed cost", net(r, "trafilatura"), docs)
        if args.datatrove_python and os.path.exists(args.datatrove_python):
            report("datatrove WarcReader -> Trafilatura -> JsonlWriter", datatrove(args.datatrove_python, work / "one", 1), docs)
        report("ours: ingest --extractor trafilatura + langid", ours(one, "trafilatura", 1, langid=True), docs)
        if not args.skip_scaling:
            report("ours: ingest --extractor resiliparse, 2 files", ours(two, "resiliparse", 2), docs, cores=2)
            report("ours: ingest --extractor trafilatura, 2 files", ours(two, "trafilatura", 2), docs, cores=2)
            if args.datatrove_python and os.path.exists(args.datatrove_python):
                report("datatrove, 2 files", datatrove(args.datatrove_python, work / "two", 2), docs, cores=2)
            if args.scaling_copies:
                big_one, big_docs = build_warcs(args.scaling_copies, work / "big-one", 1)
                big_two, _ = build_warcs(args.scaling_copies, work / "big-two", 2)
                report(f"bare fastwarc + resiliparse loop, {args.scaling_copies} copies",
                       timed([py, "-c", BARE_RESILIPARSE, *map(str, big_one)]), big_docs)
                report(f"ours: ingest --extractor resiliparse, {args.scaling_copies} copies, 1 file",
                       ours(big_one, "resiliparse", 1), big_docs)
                report(f"ours: ingest --extractor resiliparse, {args.scaling_copies} copies, 2 files",
                       ours(big_two, "resiliparse", 2), big_docs, cores=2)
                shutil.rmtree(work / "big-one", ignore_errors=True)
                shutil.rmtree(work / "big-two", ignore_errors=True)
        if args.rss_gb:
            result = rss_run(args.rss_gb, work)
            report(f"streaming: ours resiliparse + langid, {result['file_gb']:.2f} GB WARC", result, result["docs"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {os.getloadavg()}")
    print()
    for x, r in fixed.items():
        print(f"fixed cost of one `ingest` call ({x}, 1 page, 1 worker): {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU")
    by_name = {r["contender"]: r for r in rows}

    def ratio(a: str, b: str, key: str) -> str:
        if a not in by_name or b not in by_name:
            return "n/a"
        return f"{by_name[a][key] / by_name[b][key]:.2f}"

    pairs = [
        ("resiliparse path / bare loop", "ours: ingest --extractor resiliparse", "bare fastwarc + resiliparse loop"),
        ("resiliparse path / bare loop, net of fixed cost", "ours: ingest --extractor resiliparse, net of fixed cost",
         "bare fastwarc + resiliparse loop"),
        ("trafilatura path / datatrove", "ours: ingest --extractor trafilatura",
         "datatrove WarcReader -> Trafilatura -> JsonlWriter"),
        ("trafilatura path / datatrove, net of fixed cost", "ours: ingest --extractor trafilatura, net of fixed cost",
         "datatrove WarcReader -> Trafilatura -> JsonlWriter"),
        ("resiliparse 2 files, 2 workers / 1 file, 1 worker", "ours: ingest --extractor resiliparse, 2 files",
         "ours: ingest --extractor resiliparse"),
        ("trafilatura 2 files, 2 workers / 1 file, 1 worker", "ours: ingest --extractor trafilatura, 2 files",
         "ours: ingest --extractor trafilatura"),
        ("datatrove 2 workers / 1 worker", "datatrove, 2 files", "datatrove WarcReader -> Trafilatura -> JsonlWriter"),
    ]
    if args.scaling_copies:
        c = args.scaling_copies
        pairs += [
            (f"resiliparse path / bare loop, {c} copies", f"ours: ingest --extractor resiliparse, {c} copies, 1 file",
             f"bare fastwarc + resiliparse loop, {c} copies"),
            (f"resiliparse 2 files, 2 workers / 1 file, 1 worker, {c} copies",
             f"ours: ingest --extractor resiliparse, {c} copies, 2 files",
             f"ours: ingest --extractor resiliparse, {c} copies, 1 file"),
        ]
    for label, a, b in pairs:
        print(f"{label}: {ratio(a, b, 'docs_per_s')} wall docs/s, {ratio(a, b, 'docs_per_cpu_s')} docs per CPU-s")
    print()
    print("| contender | cores | docs | wall s | docs/s | docs per CPU-s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['contender']} | {r['cores']} | {r['docs']} | {r['wall_s']} | {r['docs_per_s']} | "
              f"{r['docs_per_cpu_s']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
