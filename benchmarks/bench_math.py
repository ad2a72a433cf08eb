"""Speed of the math-aware path vs plain extraction, on math-free and on math pages (issue 9).

    .venv/bin/python benchmarks/bench_math.py [--pages DIR] [--repeat 2]

Math-free pages: scrapinghub's article-extraction-benchmark (181 news pages, from
../shared; falls back to the 20 in tests/data/aeb). Math pages: 56 article pages with 8
equations each in the six page forms of benchmarks/math_quality.py, plus the LaTeXML files.
Each configuration runs the stage on all pages of a set as one batch (as an executor
would), ``--repeat`` times; the best run is reported. Because the machine is shared,
docs/s is given both by wall time and by CPU time (this process plus its children, i.e.
lynx), and the CPU figure is the one to compare.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import sys
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from dataengine.connectors.extract import Extract  # noqa: E402
from dataengine.connectors.math.detect import has_math_markers, math_marker_mask  # noqa: E402
from dataengine.connectors.math.lynx import lynx_path  # noqa: E402
from dataengine.connectors.math.stage import MathExtract  # noqa: E402

DEFAULT_PAGES = next((parent / "shared" / "testdata" / "extraction" / "scrapinghub-aeb" for parent in ROOT.parents
                      if (parent / "shared" / "testdata").is_dir()), ROOT.parent / "shared" / "testdata")


def math_free_pages(folder: Path) -> list[str]:
    if not (folder / "ground-truth.json").exists():
        folder = ROOT / "tests" / "data" / "aeb"
    keys = sorted(json.loads((folder / "ground-truth.json").read_text()))
    out = []
    for key in keys:
        path = folder / "html" / f"{key}.html.gz"
        if path.exists():
            out.append(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
    return out


def math_pages() -> list[str]:
    import math_quality as mq

    data = ROOT / "tests" / "data" / "math"
    records = [r for r in mq.rendered_records(data) if not r.get("katex_error") and not r.get("mathjax_error")]
    pages = []
    for form in mq.PAGE_FORMS:
        for start in range(0, 72, 8):
            group = records[start:start + 8]
            pages.append(mq.math_page([mq.equation_markup(r, form, start + k) for k, r in enumerate(group)]))
    pages += [p.read_text(encoding="utf-8") for p in sorted((data / "latexml").glob("*.xml"))]
    return pages


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(stage, pages: list[str], repeat: int) -> tuple[float, float]:
    """(docs/s by wall time, docs/s by CPU time), best of ``repeat``."""
    table = pa.table({"id": [str(i) for i in range(len(pages))], "html": pages})
    stage.ensure_setup()
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        stage(table)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, _cpu() - cpu)
    return len(pages) / best_wall, len(pages) / max(best_cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", default=str(DEFAULT_PAGES))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    sets = {"math-free": math_free_pages(Path(args.pages)), "math": math_pages()}
    marked = sum(has_math_markers(p) for p in sets["math-free"])
    print(f"math-free pages: {len(sets['math-free'])} ({marked} with a math marker: they take the slow path); "
          f"math pages: {len(sets['math'])}")
    configs = [
        ("extract trafilatura (plain)", lambda: Extract({})),
        ("extract resiliparse (plain)", lambda: Extract({"extractor": "resiliparse"})),
        ("math_extract renderer=trafilatura", lambda: MathExtract({"renderer": "trafilatura"})),
        ("math_extract renderer=python", lambda: MathExtract({"renderer": "python"})),
    ]
    if lynx_path():
        configs.append(("math_extract renderer=lynx", lambda: MathExtract({"renderer": "lynx"})))
    results = {}
    print(f"{'configuration':36s} {'set':10s} {'docs/s wall':>12s} {'docs/s CPU':>11s}")
    for name, make in configs:
        for set_name, pages in sets.items():
            wall, cpu = measure(make(), pages, args.repeat)
            results[(name, set_name)] = cpu
            print(f"{name:36s} {set_name:10s} {wall:12.1f} {cpu:11.1f}")
    base = results[("extract trafilatura (plain)", "math-free")]
    ours = results[("math_extract renderer=trafilatura", "math-free")]
    print(f"math pass cost on math-free pages (same renderer, CPU): {base / ours:.2f}x the time of plain extraction")
    column = pa.array(sets["math-free"])
    start = time.process_time()
    for _ in range(20):
        math_marker_mask(column)
    scan = (time.process_time() - start) / (20 * len(sets["math-free"]))
    print(f"marker scan alone (RE2 over the batch column): {scan * 1e6:.0f} us/page CPU")


if __name__ == "__main__":
    main()
