"""Record iteration over fastwarc (WARC) and warcio (ARC), in bounded memory for any input.

Both backends yield :class:`dataengine.connectors.warc_record.RawRecord`; every decision about a record
(type, MIME, truncation, charset) is made once, in the reader, whatever the backend.

Hostile or damaged input never reaches a parser unchecked (see
:mod:`dataengine.connectors.warc_resync`): a stream that does not inflate to ``WARC/`` or
``filedesc://`` is refused as a whole file; a record body larger than ``max_body_bytes`` is
skipped by its declared length without being read; after garbage, reading resumes at the
next gzip member or ``WARC/x.y`` header and the skipped bytes are counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

from dataengine.connectors.warc_record import RawRecord
from dataengine.connectors.warc_resync import InflatingReader, find_next_record, record_end, sniff

#: ARC only: a line-oriented parser reads its headers, so no line may be longer than this.
ARC_MAX_LINE = 256 * 2**20


class NotAnArchive(ValueError):
    """The whole file is not WARC or ARC (or is empty): one line saying what it is instead."""


def iter_records(
    path: str, wanted: set[str], skipped: Counter, state: dict, max_body_bytes: int = 64 * 2**20
) -> Iterator[RawRecord]:
    """All records of the wanted types in ``path``; bad ones are counted in ``skipped``.

    Raises :class:`NotAnArchive` (before yielding anything) for a file that holds no WARC or
    ARC record at all. ``state["records"]`` counts the records of any type that were read.
    """
    state.setdefault("records", 0)
    with _open_raw(path) as fh:
        kind, gzipped, head = sniff(fh)
        if kind == "empty":
            raise NotAnArchive("empty file, no WARC records")
        if kind == "arc":
            yield from _warcio_arc_records(fh, gzipped, wanted, skipped, state, max_body_bytes)
            return
        start = 0
        if kind == "unknown":  # garbage first? look for a record further on before giving up
            start = find_next_record(fh, 1, gzipped)
            if start is None:
                raise NotAnArchive(_not_an_archive(head, gzipped))
            skipped["skipped_bytes"] += start
        yield from _resyncing_warc_records(fh, start, gzipped, wanted, skipped, state, max_body_bytes)


def _not_an_archive(head: bytes, gzipped: bool) -> str:
    shown = head[:24]
    return (f"gzip data that is not WARC or ARC (inflates to {shown!r}...)" if gzipped
            else f"not a WARC or ARC file (starts with {shown!r})")


def _resyncing_warc_records(fh, start, gzipped, wanted, skipped, state, max_body_bytes) -> Iterator[RawRecord]:
    """fastwarc from ``start``; on a parse error, resume at the next record start after the
    last good one and count the bytes in between (``skipped_bytes``, ``resyncs``)."""
    offset = start
    while True:
        last: dict = {}
        try:
            yield from _fastwarc_records(fh, offset, wanted, skipped, state, gzipped, max_body_bytes, last)
            return
        except (OSError, ValueError):
            pass
        good_end = record_end(fh, last["pos"], gzipped, last.get("length")) if last else offset
        resume = find_next_record(fh, max(good_end, last.get("pos", offset) + 1), gzipped)
        if last or offset == start:  # a restart that failed at once is the same damaged region
            skipped["resyncs"] += 1
        if resume is None:
            fh.seek(0, 2)
            skipped["skipped_bytes"] += max(0, fh.tell() - good_end)
            return
        skipped["skipped_bytes"] += max(0, resume - good_end)
        offset = resume


def _open_raw(path: str):
    if "://" not in path:
        return open(path, "rb")
    import fsspec

    return fsspec.open(path, "rb", compression=None).open()


def _fastwarc_records(
    fh, offset: int, wanted: set[str], skipped: Counter, state: dict, gzipped: bool, max_body_bytes: int, last: dict
) -> Iterator[RawRecord]:
    """Records from ``offset`` on; ``last`` tracks the start and length of the last good one."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    mask = 0
    for name in wanted:
        mask |= int(getattr(WarcRecordType, name))
    fh.seek(offset)
    last_pos, flagged = -1, False
    records = ArchiveIterator(
        fh,
        record_types=mask,
        parse_http=True,
        auto_decode="transfer",  # undo chunking; content decoding is checked in the reader
        quirks_mode=True,  # LF-only headers (ClueWeb, old crawlers)
        fsspec_args=False,
    )
    for rec in records:
        state["records"] += 1
        if gzipped and rec.stream_pos == last_pos and not flagged:
            # Several records in one gzip member: readable in sequence, but offsets
            # (as in a CDX/columnar index) cannot address them.
            skipped["gzip_not_per_record"] += 1
            flagged = True
        last_pos = rec.stream_pos
        rtype = str(rec.record_type)
        if rec.content_length > max_body_bytes:
            # Never read it: fastwarc skips the body (inflating and discarding) on the next step.
            last.update(pos=rec.stream_pos, length=_warc_length(rec))
            if rtype in wanted and rtype != "revisit":
                skipped["too_large"] += 1
            continue
        body = rec.reader.read()
        last.update(pos=rec.stream_pos, length=_warc_length(rec))
        if rtype == "warcinfo":
            _note_warcinfo(body, state)
            continue
        http = rec.http_headers
        yield RawRecord(
            record_id=rec.record_id or f"offset:{rec.stream_pos}",
            record_type=rtype,
            url=_clean_uri(rec.headers.get("WARC-Target-URI")),
            date=rec.record_date,
            headers=http if http is not None else rec.headers,
            status=http.status_code if http is not None else None,
            body=body,
            warc_truncated=bool(rec.headers.get("WARC-Truncated")),
            declared_payload=rec.content_length if not (http and http.get("Transfer-Encoding")) else None,
        )


def _warc_length(rec) -> int | None:
    try:
        return int(rec.headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None


def _warcio_arc_records(
    fh, gzipped: bool, wanted: set[str], skipped: Counter, state: dict, max_body_bytes: int
) -> Iterator[RawRecord]:
    """ARC through warcio, fed inflated bytes with a cap on line length (warcio reads header
    lines whole). A file that cannot be read further is counted as ``unreadable_rest_of_file``."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    fh.seek(0)
    stream = InflatingReader(fh, gzipped, max_line=max(ARC_MAX_LINE, max_body_bytes))
    it = ArchiveIterator(stream, arc2warc=True)
    while True:
        try:
            rec = next(it)
        except StopIteration:
            return
        except (ArchiveLoadFailed, OSError, ValueError, EOFError):
            skipped["unreadable_rest_of_file"] += 1
            return
        state["records"] += 1
        rtype = rec.rec_type
        if rtype not in wanted:
            continue
        url = _clean_uri(rec.rec_headers.get_header("WARC-Target-URI"))
        if (rec.length or 0) > max_body_bytes:
            skipped["too_large"] += 1  # warcio reads past it in blocks on the next step
            continue
        try:
            body = rec.content_stream().read()
        except Exception:  # noqa: BLE001 - a corrupt body of any kind
            skipped["bad_record"] += 1
            continue
        # arc2warc invents a random record id: name the record by its offset (read after the body)
        record_id = f"arc:{stream.member_offset(it.get_record_offset())}:{url}"
        if rtype == "warcinfo":
            _note_warcinfo(body, state)
            continue
        http = _HeaderDict(rec.http_headers.headers) if rec.http_headers else None
        if http is None:
            http = _HeaderDict(rec.rec_headers.headers)
        status = rec.http_headers.get_statuscode() if rec.http_headers else None
        yield RawRecord(
            record_id=record_id,
            record_type=rtype,
            url=url,
            date=_warc_date(rec.rec_headers.get_header("WARC-Date")),
            headers=http,
            status=int(status) if status and str(status).isdigit() else None,
            body=body,
            warc_truncated=bool(rec.rec_headers.get_header("WARC-Truncated")),
            declared_payload=None,  # warcio already decoded the body: lengths differ legitimately
        )


class _HeaderDict(dict):
    """Case-insensitive ``get`` over a list of (name, value) header pairs."""

    def __init__(self, pairs):
        super().__init__((k.strip().lower(), v) for k, v in pairs)

    def get(self, key, default=None):
        return super().get(key.lower(), default)


def _note_warcinfo(body: bytes, state: dict) -> None:
    """Take the crawl name from the warcinfo ``isPartOf`` field unless one is known."""
    if state.get("crawl"):
        return
    for line in body.splitlines():
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"ispartof" and value.strip():
            state["crawl"] = value.strip().decode("utf-8", "replace")
            return


def _clean_uri(uri: str | None) -> str | None:
    if not uri:
        return None
    uri = uri.strip()
    if uri.startswith("<") and uri.endswith(">"):  # WARC/1.0 drafts wrapped URIs in <>
        uri = uri[1:-1]
    return uri


def _warc_date(value: str | None):
    import datetime as dt

    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)
    except ValueError:
        return None
