"""WARC/ARC files -> documents with the page HTML (decoded to Unicode) in an ``html`` column.

fastwarc reads (it is several times faster than warcio); warcio takes over for what
fastwarc rejects: ARC files, and the rest of a file after a record fastwarc cannot parse.
Every bad record is counted by reason in ``self.skipped`` and the rest of the file is
still read. Text extraction is a separate stage (``extract``), so a table of raw HTML can
be re-extracted with other settings without reading the WARCs again.

Ids are ``make_doc_id(<WARC file name>, <WARC-Record-ID>)``: re-ingesting the same file
gives the same ids wherever the file lives (local path, mirror or s3://).
"""

from __future__ import annotations

import os
import re
from typing import Iterator, Literal

import pyarrow as pa
from pydantic import Field

from dataengine.connectors.charset import charset_from_content_type, decode_html
from dataengine.connectors.warc_record import RawRecord
from dataengine.connectors.http_payload import PayloadError, declared_length, decode_content
from dataengine.core.reader import Reader, ReaderOptions
from dataengine.core.schema import CORE_COLUMNS, DOCUMENT_SCHEMA, conform, make_doc_id

HTML_TYPES = ("text/html", "application/xhtml+xml")
_CRAWL_NAME = re.compile(r"(CC-MAIN-\d{4}-\d{2})")

#: Columns the WARC reader adds to the core document columns.
WARC_COLUMNS = {
    "html": pa.string(),
    "charset": pa.string(),
    "charset_source": pa.string(),
    "http_status": pa.int32(),
    "warc_file": pa.string(),
    "warc_record_id": pa.string(),
}

RecordType = Literal["response", "resource", "conversion", "request", "metadata"]


class WarcOptions(ReaderOptions):
    record_types: list[RecordType] = Field(["response"], description="WARC record types turned into documents")
    content_types: list[str] | None = Field(
        list(HTML_TYPES), description="MIME types kept (prefix match); null keeps every type"
    )
    keep_truncated: bool = Field(False, description="keep records whose body was cut off (WARC-Truncated, short body)")
    max_body_bytes: int = Field(64 * 2**20, ge=1, description="larger bodies are skipped as too_large")
    crawl: str | None = Field(None, description="crawl column; default: CC-MAIN-... from the path or warcinfo isPartOf")
    source: str = Field("warc", description="value of the source column")
    # 16 MiB rather than more: the HTML column is joined into one buffer per batch, and
    # buffers above glibc's 32 MiB mmap ceiling are fresh pages every time (page faults
    # cost ~4% of the resiliparse path); smaller ones reuse the heap. See docs/decisions.md.
    batch_bytes: int = Field(16 * 2**20, ge=1, description="flush a batch once its HTML reaches this size")




def warc_file_name(path: str) -> str:
    """The file's identity for ids and the warc_file column: the Common Crawl key
    (``crawl-data/...``) when the path has one, else the base name."""
    idx = path.find("crawl-data/")
    return path[idx:] if idx >= 0 else os.path.basename(path.rstrip("/"))


class WarcReader(Reader):
    """WARC (.warc, .warc.gz, WARC/1.0, 1.1, 0.18) and ARC (.arc, .arc.gz), local or fsspec URL."""

    format = "warc"
    Options = WarcOptions

    def columns(self, path: str) -> list[str]:
        return list(CORE_COLUMNS) + list(WARC_COLUMNS)

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        from dataengine.connectors.warc_backends import NotAnArchive, iter_records

        opts = self.options
        name = warc_file_name(path)
        state = {"crawl": opts.crawl or _crawl_from_path(path)}
        rows: list[dict] = []
        size = 0
        records = iter_records(path, self._wanted_types(), self.skipped, state, opts.max_body_bytes)
        try:
            for raw in records:
                doc = self._document(raw, name, state.get("crawl"))
                if doc is None:
                    continue
                rows.append(doc)
                size += len(doc["html"])
                if len(rows) >= batch_size or size >= opts.batch_bytes:
                    yield _to_table(rows)
                    rows, size = [], 0
        except NotAnArchive as exc:
            self.fail_file(path, str(exc), reason="empty_file" if str(exc).startswith("empty") else "unreadable_file")
        if rows:
            yield _to_table(rows)

    def _wanted_types(self) -> set[str]:
        # Revisits are read only to be counted; warcinfo gives the crawl name.
        return set(self.options.record_types) | {"revisit", "warcinfo"}

    def _document(self, raw: RawRecord, warc_file: str, crawl: str | None) -> dict | None:
        """One record -> a document row, or None after counting why it was skipped."""
        opts = self.options
        if raw.record_type == "revisit":
            self.skipped["revisit"] += 1
            return None
        if raw.record_type not in opts.record_types:
            return None
        mime, charset_label = _content_type(raw)
        if opts.content_types and not any(mime.startswith(t) for t in opts.content_types):
            self.skipped["not_html" if tuple(opts.content_types) == HTML_TYPES else "content_type"] += 1
            return None
        if len(raw.body) > opts.max_body_bytes:
            self.skipped["too_large"] += 1
            return None
        if not opts.keep_truncated and _is_truncated(raw):
            self.skipped["truncated"] += 1
            return None
        try:
            payload = decode_content(raw.body, raw.headers.get("Content-Encoding") if raw.headers else None,
                                     max_bytes=opts.max_body_bytes)
        except PayloadError as exc:
            if exc.reason != "truncated" or not opts.keep_truncated:
                self.skipped[exc.reason] += 1
                return None
            payload = raw.body
        if not payload.strip():
            self.skipped["empty_body"] += 1
            return None
        decoded = decode_html(payload, charset_label)
        return {
            "id": make_doc_id(warc_file, raw.record_id),
            "url": raw.url,
            "source": opts.source,
            "crawl": crawl,
            "fetched_at": raw.date,
            "content_type": mime or None,
            "html": decoded.data,  # UTF-8 bytes: stored as an Arrow string without a str round trip
            "charset": decoded.charset,
            "charset_source": decoded.source,
            "http_status": raw.status,
            "warc_file": warc_file,
            "warc_record_id": raw.record_id,
        }


def _content_type(raw: RawRecord) -> tuple[str, str | None]:
    """(MIME type, charset label) from the HTTP header, or the WARC one for resources."""
    value = raw.headers.get("Content-Type") if raw.headers else None
    if value is None:
        value = ""
    mime = value.split(";", 1)[0].strip().lower()
    return mime, charset_from_content_type(value)


def _is_truncated(raw: RawRecord) -> bool:
    if raw.warc_truncated:
        return True
    if raw.declared_payload is not None and len(raw.body) < raw.declared_payload:
        return True  # the file ends (or the next record starts) before the record does
    expected = declared_length(raw.headers)
    return expected is not None and len(raw.body) < expected


def _crawl_from_path(path: str) -> str | None:
    match = _CRAWL_NAME.search(path)
    return match.group(1) if match else None


def _to_table(rows: list[dict]) -> pa.Table:
    arrays = {}
    for field in DOCUMENT_SCHEMA:
        arrays[field.name] = pa.array([r.get(field.name) for r in rows], type=field.type)
    for name, dtype in WARC_COLUMNS.items():
        if name == "html":
            arrays[name] = utf8_array([r["html"] for r in rows])
        else:
            arrays[name] = pa.array([r.get(name) for r in rows], type=dtype)
    return conform(pa.table(arrays))


def utf8_array(values: list[bytes]) -> pa.Array:
    """A string array from already-validated UTF-8 bytes: one join, no per-item conversion."""
    import numpy as np

    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    data = pa.py_buffer(b"".join(values))
    return pa.Array.from_buffers(pa.large_string(), len(values), [None, pa.py_buffer(offsets), data]).cast(
        pa.string()
    )
