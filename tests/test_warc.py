"""The `warc` reader on real WARC/ARC files: edge cases, broken files, charsets, ids, URLs."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from dataengine.connectors.charset import decode_html, normalize_charset
from dataengine.connectors.warc import WarcReader
from dataengine.connectors.warc_write import write_html_warc

DATA = Path(__file__).parent / "data" / "warc"
SHARED_WARC = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "warc"


def read_all(path, **options) -> tuple[list[dict], dict]:
    reader = WarcReader(options)
    rows = [row for batch in reader.read(str(path), 1000) for row in batch.to_pylist()]
    return rows, dict(reader.skipped)


def test_common_crawl_excerpt_reads_every_html_response():
    rows, skipped = read_all(DATA / "warcfile.warc.gz")
    assert len(rows) == 16 and skipped == {}
    assert {r["crawl"] for r in rows} == {"CC-MAIN-2020-34"}  # from the warcinfo isPartOf field
    assert all(r["warc_file"] == "warcfile.warc.gz" for r in rows)
    assert all(r["html"] and r["url"].startswith("http") and r["fetched_at"] for r in rows)
    assert all(r["text"] is None for r in rows)  # text comes from the extract stage
    cyrillic = [r for r in rows if r["charset"] == "cp1251"]
    assert cyrillic and any("\u0400" <= ch <= "\u04ff" for ch in cyrillic[0]["html"])


def test_euc_jp_clueweb_decodes_to_japanese():
    rows, skipped = read_all(DATA / "clueweb-quirk.warc.gz")
    assert len(rows) == 29 and skipped == {}
    first = rows[0]
    assert first["charset"] == "euc_jp" and first["charset_source"] == "http"
    assert "ブラウニー ブリーフケース" in first["html"]  # the page's <title>
    assert all("\ufffd" not in r["html"] for r in rows)  # no replacement characters
    assert first["crawl"] == "clueweb09-ja"
    assert first["fetched_at"] is None  # "2008-10-294T05:21:46" is not a date: null, not a crash


def test_the_two_broken_warcio_files_are_counted_not_fatal():
    rows, skipped = read_all(DATA / "example-bad-non-chunked.warc.gz")
    # One gzip member for the whole file: every record is still read; the defect is counted.
    assert skipped == {"gzip_not_per_record": 1, "revisit": 1}
    assert [r["url"] for r in rows] == ["http://example.com/"] and "Example Domain" in rows[0]["html"]

    rows, skipped = read_all(DATA / "example-wrong-chunks.warc.gz")
    # The response's WARC length is one byte short of its HTTP Content-Length: truncated.
    assert rows == [] and skipped == {"truncated": 1}
    # ...and the intact request record after it is still read.
    rows, skipped = read_all(DATA / "example-wrong-chunks.warc.gz", record_types=["request"], content_types=None)
    assert skipped == {"empty_body": 1}  # a GET request: read, no body


def test_truncated_records_are_counted_and_can_be_kept():
    for name in ("clipped.warc.gz", "example-trunc.warc"):
        rows, skipped = read_all(DATA / name)
        assert rows == [] and skipped == {"truncated": 1}, name
    rows, _ = read_all(DATA / "clipped.warc.gz", keep_truncated=True)
    assert len(rows) == 1 and rows[0]["html"].startswith("<!DOCTYPE html>")


def test_arc_chunked_gzip_encoded_and_revisit():
    rows, skipped = read_all(DATA / "example.arc.gz")  # warcio fallback
    assert [r["url"] for r in rows] == ["http://example.com/"] and "Example Domain" in rows[0]["html"]
    again, _ = read_all(DATA / "example.arc.gz")
    assert rows[0]["id"] == again[0]["id"]  # ARC ids are stable too (offset-based)

    rows, _ = read_all(DATA / "example-iana.org-chunked.warc")  # Transfer-Encoding: chunked
    assert rows[0]["html"].rstrip().endswith("</html>") and "\r\n0\r\n" not in rows[0]["html"]

    rows, skipped = read_all(DATA / "example.warc.gz")  # Content-Encoding: gzip body
    assert rows[0]["html"].startswith("<!doctype html>") and skipped == {"revisit": 1}


def test_content_type_and_record_type_options():
    rows, skipped = read_all(DATA / "post-test.warc.gz")
    assert rows == [] and skipped == {"not_html": 3}
    rows, _ = read_all(DATA / "post-test.warc.gz", content_types=["application/json"])
    assert len(rows) == 3 and all(r["content_type"] == "application/json" for r in rows)
    rows, _ = read_all(DATA / "example-resource.warc.gz", record_types=["resource"], content_types=None)
    assert len(rows) == 1


def test_every_test_file_reads_without_raising():
    files = sorted(DATA.iterdir())
    assert len(files) >= 17
    total = 0
    for path in files:
        rows, _ = read_all(path, record_types=["response", "resource", "request", "metadata", "conversion"],
                           content_types=None)
        total += len(rows)
    assert total > 60


@pytest.mark.skipif(not SHARED_WARC.exists(), reason="../shared/testdata not present")
def test_every_shared_warc_file_ingests():
    """Every file under ../shared/testdata/warc (incl. the dolma crawls) reads without raising."""
    for path in sorted(SHARED_WARC.rglob("*")):
        if path.is_file():
            rows, skipped = read_all(path)
            assert all(r["id"] and r["html"] for r in rows), path
            if path.name.startswith("sample-"):
                assert len(rows) >= 15, (path, skipped)


def test_ids_are_stable_per_file_name_and_record(tmp_path):
    rows, _ = read_all(DATA / "warcfile.warc.gz")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(DATA / "warcfile.warc.gz", moved / "warcfile.warc.gz")
    again, _ = read_all(moved / "warcfile.warc.gz")
    assert [r["id"] for r in rows] == [r["id"] for r in again]
    shutil.copy(DATA / "warcfile.warc.gz", moved / "other.warc.gz")
    other, _ = read_all(moved / "other.warc.gz")
    assert not {r["id"] for r in rows} & {r["id"] for r in other}
    assert len({r["id"] for r in rows}) == len(rows)


def test_file_url_and_uncompressed_copy_read_the_same(tmp_path):
    rows, _ = read_all(DATA / "warcfile.warc.gz")
    via_url, _ = read_all("file://" + str(DATA / "warcfile.warc.gz"))
    assert [r["id"] for r in via_url] == [r["id"] for r in rows]
    plain = tmp_path / "warcfile.warc"
    plain.write_bytes(gzip.decompress((DATA / "warcfile.warc.gz").read_bytes()))
    unzipped, _ = read_all(plain)
    assert [r["html"] for r in unzipped] == [r["html"] for r in rows]


def test_charset_from_meta_and_detection(tmp_path):
    page = "<html><head><title>Ça coûte €5</title></head><body><p>Déjà vu, naïve café.</p></body></html>"
    meta_page = page.replace("<head>", '<head><meta charset="windows-1252">')
    french = (Path(__file__).parent / "data" / "langid" / "fr.txt").read_text(encoding="utf-8")
    latin = f"<html><body><p>{french}</p><p>Déjà vu, naïve café.</p></body></html>".encode("cp1252", "ignore")
    warc = tmp_path / "pages.warc.gz"
    write_html_warc(str(warc), [("http://a/", meta_page.encode("cp1252")), ("http://b/", latin),
                                ("http://c/", page.encode("utf-8"))])
    rows, _ = read_all(warc)
    by_url = {r["url"]: r for r in rows}
    assert by_url["http://a/"]["charset_source"] == "meta" and "€5" in by_url["http://a/"]["html"]
    assert by_url["http://b/"]["charset_source"] == "detected" and "Déjà vu" in by_url["http://b/"]["html"]
    assert by_url["http://c/"]["charset_source"] == "utf-8" and "naïve" in by_url["http://c/"]["html"]


def test_declared_charset_labels_map_to_what_browsers_use():
    assert normalize_charset("ISO-8859-1") == "cp1252"
    assert normalize_charset("Shift_JIS") == "cp932"
    assert normalize_charset("no-such-charset") is None
    decoded = decode_html("“quoted”".encode("cp1252"), "iso-8859-1")
    assert decoded.text == "“quoted”" and decoded.source == "http"
