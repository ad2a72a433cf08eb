"""`dataengine ingest warc|cc|jsonl` end to end: real CLI, real WARCs, real DuckLake warehouse."""

from __future__ import annotations

import pytest

import gzip
import json
import shutil
from pathlib import Path

from conftest import run_cli

DATA = Path(__file__).parent / "data" / "warc"


@pytest.mark.slow
def test_ingest_warc_counts_skips_and_is_idempotent(wh):
    files = [str(DATA / n) for n in ("warcfile.warc.gz", "example-bad-non-chunked.warc.gz",
                                      "example-wrong-chunks.warc.gz", "example.arc.gz", "clueweb-quirk.warc.gz")]
    proc = run_cli("ingest", "warc", *files, "--table", "raw", "-q", warehouse=wh.config.root, check=True)
    out = proc.stdout + proc.stderr
    assert "committed 47 rows to raw" in out
    assert "revisit: 1" in out and "truncated: 1" in out and "gzip_not_per_record: 1" in out
    assert "extraction: ok: 47" in out
    rows = wh.sql("SELECT language, count(*) AS n FROM raw GROUP BY 1 ORDER BY n DESC").to_pylist()
    assert rows[0] == {"language": "ja", "n": 29}  # the EUC-JP ClueWeb pages
    cols = wh.schema("raw").names
    assert {"text", "title", "extract_status", "language", "language_score", "warc_file", "charset"} <= set(cols)
    assert "html" not in cols
    ids = wh.sql("SELECT id FROM raw ORDER BY id").column(0).to_pylist()
    again = run_cli("ingest", "warc", *files, "--table", "raw", "-q", warehouse=wh.config.root, check=True)
    assert "already committed" in again.stdout + again.stderr
    assert wh.sql("SELECT id FROM raw ORDER BY id").column(0).to_pylist() == ids


@pytest.mark.slow
def test_html_table_allows_re_extraction_without_the_warc(wh, tmp_path):
    warc = tmp_path / "cc.warc.gz"
    shutil.copy(DATA / "warcfile.warc.gz", warc)
    run_cli("ingest", "warc", str(warc), "--table", "docs", "--html-table", "html", "--extractor", "trafilatura",
            "-q", warehouse=wh.config.root, check=True)
    warc.unlink()  # the raw HTML now lives in the warehouse
    run_cli("run", "--from", "html", "--stage", "extract:extractor=resiliparse", "--stage", "langid",
            "--to", "docs_fast", "-q", warehouse=wh.config.root, check=True)
    both = wh.sql("SELECT count(*) AS n, count(DISTINCT d.id) AS ids, count(f.text) AS texts FROM docs d "
                  "JOIN docs_fast f USING (id)").to_pylist()[0]
    assert both == {"n": 16, "ids": 16, "texts": 16}
    assert "html" in wh.schema("html").names and "html" not in wh.schema("docs").names


@pytest.mark.slow
def test_ingest_cc_listing_with_local_mirror_and_limit(wh, tmp_path):
    mirror = tmp_path / "mirror"
    crawl = "CC-MAIN-2024-22"
    rel = [f"crawl-data/{crawl}/segments/1715971057216.39/warc/CC-MAIN-20240517233122-{i:05d}.warc.gz"
           for i in range(2)]
    for path, src in zip(rel, ("whirlwind.warc.gz", "warcfile.warc.gz")):
        (mirror / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / src, mirror / path)
    listing = mirror / "crawl-data" / crawl / "warc.paths.gz"
    listing.write_bytes(gzip.compress(("\n".join(rel) + "\n").encode()))

    proc = run_cli("ingest", "cc", str(listing), "--limit", "1", "--table", "cc", "-q",
                   warehouse=wh.config.root, check=True)
    assert "(1 shards" in proc.stdout + proc.stderr
    row = wh.sql("SELECT crawl, warc_file, source, language FROM cc").to_pylist()
    assert row == [{"crawl": crawl, "warc_file": rel[0], "source": "commoncrawl", "language": "an"}]

    # a crawl name plus a mirror prefix finds the same listing; both files this time
    run_cli("ingest", "cc", crawl, "--mirror", str(mirror), "--table", "cc_all", "--extractor", "resiliparse",
            "--no-langid", "-q", warehouse=wh.config.root, check=True)
    files = wh.sql("SELECT warc_file, count(*) AS n FROM cc_all GROUP BY 1 ORDER BY 1").to_pylist()
    assert files == [{"warc_file": rel[0], "n": 1}, {"warc_file": rel[1], "n": 16}]
    # the whirlwind capture gets the same id in both tables: ids depend on file name + record id
    assert wh.sql("SELECT count(*) FROM cc JOIN cc_all USING (id)").column(0)[0].as_py() == 1


@pytest.mark.slow
def test_ingest_jsonl_with_langid(wh, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in
                            enumerate(["This is an English sentence about the weather.",
                                       "Dies ist ein deutscher Satz über das Wetter."])))
    run_cli("ingest", "jsonl", str(path), "--table", "j", "--langid", "-q", warehouse=wh.config.root, check=True)
    assert wh.sql("SELECT language FROM j ORDER BY text DESC").column(0).to_pylist() == ["en", "de"]


def test_bad_listing_is_one_line_error(wh, tmp_path):
    empty = tmp_path / "warc.paths.gz"
    empty.write_bytes(gzip.compress(b"\n"))
    proc = run_cli("ingest", "cc", str(empty), warehouse=wh.config.root)
    assert proc.returncode == 1 and "names no WARC file" in proc.stderr + proc.stdout
