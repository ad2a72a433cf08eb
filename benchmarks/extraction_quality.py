"""Extraction quality on scrapinghub's article-extraction-benchmark (181 news/blog pages).

Token-level precision / recall / F1 of the extracted text against ``articleBody``
(multiset overlap of whitespace tokens, averaged over pages; a page with no output
scores 0). Compares, on the same pages:

* ``direct trafilatura``: ``trafilatura.extract(page)`` with the options our stage uses;
* ``direct trafilatura (datatrove options)``: favor_precision, deduplicate, no comments,
  the way datatrove's Trafilatura step calls it;
* our pipeline: the pages wrapped into a WARC, read by the ``warc`` reader (charset
  detection included) and the ``extract`` stage, for both extractors and favour settings.

    python benchmarks/extraction_quality.py [--pages DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_PAGES = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "extraction" / "scrapinghub-aeb"


def load_pages(folder: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """[{key, url, html (bytes), truth}] from a folder with ground-truth.json and html/*.html.gz."""
    folder = Path(folder)
    truth = json.loads((folder / "ground-truth.json").read_text())
    pages = []
    for key in sorted(truth):
        path = folder / "html" / f"{key}.html.gz"
        if not path.exists():
            continue
        pages.append({"key": key, "url": truth[key]["url"], "html": gzip.decompress(path.read_bytes()),
                      "truth": truth[key]["articleBody"]})
        if limit and len(pages) >= limit:
            break
    return pages


def token_prf(predicted: str | None, truth: str) -> tuple[float, float, float]:
    pred, gold = Counter((predicted or "").split()), Counter(truth.split())
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    p, r = overlap / sum(pred.values()), overlap / sum(gold.values())
    return p, r, 2 * p * r / (p + r)


def mean_prf(pages: list[dict], texts: list[str | None]) -> dict:
    scores = [token_prf(t, p["truth"]) for t, p in zip(texts, pages)]
    n = len(scores) or 1
    return {k: round(sum(s[i] for s in scores) / n, 4) for i, k in enumerate(("precision", "recall", "f1"))}


def direct_trafilatura(pages: list[dict], **options) -> list[str | None]:
    """trafilatura called directly on each page's bytes (it decodes them itself)."""
    import trafilatura

    return [trafilatura.extract(p["html"], url=p["url"], **options) for p in pages]


def pipeline_texts(pages: list[dict], stage_params: dict, workdir: str) -> list[str | None]:
    """Texts from our warc reader + extract stage, in page order (matched by URL)."""
    from dataengine.connectors.extract import Extract
    from dataengine.connectors.warc import WarcReader
    from dataengine.connectors.warc_write import write_html_warc

    warc = os.path.join(workdir, "pages.warc.gz")
    if not os.path.exists(warc):
        write_html_warc(warc, [(p["url"], p["html"]) for p in pages])
    stage = Extract(stage_params)
    by_url = {}
    for batch in WarcReader().read(warc, 500):
        out = stage(batch)
        by_url.update(zip(out.column("url").to_pylist(), out.column("text").to_pylist()))
    return [by_url.get(p["url"]) for p in pages]


#: The trafilatura options of our stage's default, for the "direct" comparison.
OUR_TRAFILATURA = dict(fast=True, include_comments=False, deduplicate=False)
DATATROVE_TRAFILATURA = dict(favor_precision=True, include_comments=False, deduplicate=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default=str(DEFAULT_PAGES))
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    pages = load_pages(args.pages, args.limit)
    rows = []

    def record(name, fn):
        start = time.perf_counter()
        texts = fn()
        rows.append((name, mean_prf(pages, texts), len(pages) / (time.perf_counter() - start)))
        print(f"{name:55s} {rows[-1][1]}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        record("direct trafilatura, our options (fast, no comments)", lambda: direct_trafilatura(pages, **OUR_TRAFILATURA))
        record("direct trafilatura, datatrove options", lambda: direct_trafilatura(pages, **DATATROVE_TRAFILATURA))
        record("direct trafilatura, library defaults", lambda: direct_trafilatura(pages))
        for favour in ("balanced", "precision", "recall"):
            record(f"pipeline: warc -> extract trafilatura favour={favour}",
                   lambda f=favour: pipeline_texts(pages, {"favour": f}, tmp))
            record(f"direct trafilatura, our options + favour={favour}",
                   lambda f=favour: direct_trafilatura(
                       pages, **OUR_TRAFILATURA, favor_precision=f == "precision", favor_recall=f == "recall"))
        record("pipeline: warc -> extract resiliparse", lambda: pipeline_texts(pages, {"extractor": "resiliparse"}, tmp))
    print()
    print(f"| extraction ({len(pages)} pages) | precision | recall | F1 |")
    print("|---|---|---|---|")
    for name, s, _ in rows:
        print(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} |")


if __name__ == "__main__":
    main()
