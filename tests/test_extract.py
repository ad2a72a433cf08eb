"""The `extract` stage: quality against direct trafilatura, limits, statuses, html column."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
import trafilatura

from dataengine.connectors.extract import Extract
from dataengine.connectors.warc import WarcReader
from dataengine.connectors.warc_write import write_html_warc

AEB = Path(__file__).parent / "data" / "aeb"


def token_f1(predicted: str | None, truth: str) -> float:
    pred, gold = Counter((predicted or "").split()), Counter(truth.split())
    overlap = sum((pred & gold).values())
    if not overlap:
        return 0.0
    p, r = overlap / sum(pred.values()), overlap / sum(gold.values())
    return 2 * p * r / (p + r)


@pytest.fixture(scope="module")
def aeb_pages():
    truth = json.loads((AEB / "ground-truth.json").read_text())
    return [
        {"url": v["url"], "truth": v["articleBody"], "html": gzip.decompress((AEB / "html" / f"{k}.html.gz").read_bytes())}
        for k, v in sorted(truth.items())
    ]


@pytest.fixture(scope="module")
def aeb_warc(aeb_pages, tmp_path_factory):
    path = tmp_path_factory.mktemp("aeb") / "aeb.warc.gz"
    write_html_warc(str(path), [(p["url"], p["html"]) for p in aeb_pages])
    return str(path)


def pipeline_texts(warc: str, params: dict) -> dict[str, str | None]:
    stage = Extract(params)
    out = {}
    for batch in WarcReader().read(warc, 100):
        result = stage(batch)
        assert "html" not in result.column_names
        out.update(zip(result.column("url").to_pylist(), result.column("text").to_pylist()))
    return out


@pytest.mark.parametrize("favour", ["balanced", "precision", "recall"])
def test_trafilatura_path_loses_nothing_against_direct_trafilatura(aeb_pages, aeb_warc, favour):
    """WARC -> reader (charset detection) -> extract scores at least trafilatura called directly."""
    ours = pipeline_texts(aeb_warc, {"favour": favour})
    options = dict(fast=True, include_comments=False, favor_precision=favour == "precision",
                   favor_recall=favour == "recall")
    direct = [trafilatura.extract(p["html"], url=p["url"], **options) for p in aeb_pages]
    f1_ours = sum(token_f1(ours[p["url"]], p["truth"]) for p in aeb_pages) / len(aeb_pages)
    f1_direct = sum(token_f1(t, p["truth"]) for t, p in zip(direct, aeb_pages)) / len(aeb_pages)
    assert len(ours) == len(aeb_pages) == 20
    assert f1_ours >= f1_direct - 1e-9
    assert f1_ours > 0.85


def test_default_scores_above_trafilatura_library_defaults(aeb_pages, aeb_warc):
    """The stage's default (favour recall, no fallback) against ``trafilatura.extract(page)`` as is."""
    ours = pipeline_texts(aeb_warc, {})
    direct = [trafilatura.extract(p["html"], url=p["url"]) for p in aeb_pages]
    f1_ours = sum(token_f1(ours[p["url"]], p["truth"]) for p in aeb_pages) / len(aeb_pages)
    f1_direct = sum(token_f1(t, p["truth"]) for t, p in zip(direct, aeb_pages)) / len(aeb_pages)
    assert f1_ours > f1_direct


def test_resiliparse_path_extracts_the_articles(aeb_pages, aeb_warc):
    ours = pipeline_texts(aeb_warc, {"extractor": "resiliparse"})
    f1 = sum(token_f1(ours[p["url"]], p["truth"]) for p in aeb_pages) / len(aeb_pages)
    assert f1 > 0.8


def _batch(htmls, content_types=None) -> pa.Table:
    n = len(htmls)
    return pa.table({
        "id": [str(i) for i in range(n)],
        "url": [f"http://x/{i}" for i in range(n)],
        "content_type": content_types or ["text/html"] * n,
        "html": htmls,
    })


ARTICLE = "<html><head><title> A  title </title></head><body><article>" + "<p>" + "Real words in a sentence. " * 30 + "</p>" * 1 + "</article></body></html>"


@pytest.mark.parametrize("extractor", ["trafilatura", "resiliparse"])
def test_statuses_for_odd_pages(extractor):
    deep = "<html><head><title>deep</title></head><body>" + "<div>" * 100_000 + "hello" + "</div>" * 100_000 + "</body></html>"
    huge = "<html><head><title>huge</title></head><body>" + "<p>lorem ipsum</p>" * 150_000 + "</body></html>"
    batch = _batch([ARTICLE, "<html><body></body></html>", '{"a": 1}', None, huge, deep],
                   ["text/html", "text/html", "application/json", "text/html", "text/html", "text/html"])
    out = Extract({"extractor": extractor, "max_html_bytes": 2_000_000})(batch)
    status = out.column("extract_status").to_pylist()
    assert status[:5] == ["ok", "empty", "not_html", "no_html", "too_large"]
    # resiliparse refuses the 100k-deep DOM; lxml (trafilatura) cuts it at depth 255 itself.
    assert status[5] == ("too_deep" if extractor == "resiliparse" else "empty")
    titles = out.column("title").to_pylist()
    assert titles[0] == "A title" and titles[4] == "huge"
    assert "Real words in a sentence." in out.column("text")[0].as_py()
    assert out.column("text").to_pylist()[1:] == [None] * 5
    assert out.num_rows == 6 and "html" not in out.column_names


def test_per_page_time_limit_interrupts_trafilatura():
    out = Extract({"timeout_s": 1e-6})(_batch([ARTICLE * 50]))
    assert out.column("extract_status").to_pylist() == ["timeout"]
    assert out.column("title").to_pylist() == ["A title"]
    # the timer is disarmed afterwards: the next page extracts normally
    assert Extract()(_batch([ARTICLE])).column("extract_status").to_pylist() == ["ok"]


SLOW_PAGE = ("<html><head><title>slow</title></head><body><article>"  # ~1 s for trafilatura
             + "<p>Real words in a sentence, then more words here.</p><div><span>nested</span></div>" * 10_000
             + "</article></body></html>")


def test_per_page_time_limit_works_in_a_worker_thread():
    """Dask runs tasks in worker threads, where SIGALRM cannot be used."""
    import threading

    results = {}

    def work():
        slow = Extract({"timeout_s": 0.05})
        results["slow"] = slow(_batch([SLOW_PAGE, ARTICLE])).column("extract_status").to_pylist()
        results["next"] = Extract()(_batch([ARTICLE] * 3)).column("extract_status").to_pylist()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert results["slow"] == ["timeout", "ok"]  # ~1 s of extraction stopped at 0.05 s; the next page is fine
    assert results["next"] == ["ok"] * 3  # disarmed: no timeout escapes into later pages


def test_keep_html_keeps_the_column_for_re_extraction():
    out = Extract({"keep_html": True})(_batch([ARTICLE]))
    assert out.column("html").to_pylist() == [ARTICLE]
    again = Extract({"extractor": "resiliparse"})(out)
    assert again.column("extract_status").to_pylist() == ["ok"] and "html" not in again.column_names
