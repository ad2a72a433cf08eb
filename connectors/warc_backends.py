"""Record iteration over fastwarc, with warcio taking over where fastwarc gives up.

Both backends yield :class:`dataengine.connectors.warc_record.RawRecord`; every decision about a record
(type, MIME, truncation, charset) is made once, in the reader, whatever the backend.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

from dataengine.connectors.warc_record import RawRecord

_GZIP_MAGIC = b"\x1f\x8b"


def iter_records(path: str, wanted: set[str], skipped: Counter, state: dict) -> Iterator[RawRecord]:
    """All records of the wanted types in ``path``; failures are counted in ``skipped``.

    fastwarc reads first. If it raises part-way (a corrupt header, an ARC file), warcio
    reads the file from the start and yields the records fastwarc had not reached.
    """
    seen: set[str] = set()
    kind, gzipped = _sniff(path)
    if kind != "warc":  # ARC, or not recognisable: only warcio knows ARC
        yield from _warcio_records(path, wanted, skipped, state, seen, is_arc=kind == "arc")
        return
    try:
        for raw in _fastwarc_records(path, wanted, skipped, state, gzipped):
            seen.add(raw.record_id)
            yield raw
        return
    except (OSError, ValueError):
        skipped["bad_record"] += 1  # the record fastwarc stumbled on
    yield from _warcio_records(path, wanted, skipped, state, seen, is_arc=False)


def _open_raw(path: str):
    import fsspec

    return fsspec.open(path, "rb", compression=None).open()


def _sniff(path: str) -> tuple[str, bool]:
    """("warc" | "arc" | "unknown", gzipped) from the file's first bytes."""
    import zlib

    with _open_raw(path) if "://" in path else open(path, "rb") as fh:
        head = fh.read(4096)
    gzipped = head[:2] == _GZIP_MAGIC
    if gzipped:
        try:
            head = zlib.decompressobj(31).decompress(head)
        except zlib.error:
            return "unknown", True
    head = head.lstrip()
    if head.startswith(b"WARC/"):
        return "warc", gzipped
    if head.startswith(b"filedesc://"):
        return "arc", gzipped
    return "unknown", gzipped


def _fastwarc_records(
    path: str, wanted: set[str], skipped: Counter, state: dict, gzipped: bool
) -> Iterator[RawRecord]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    mask = 0
    for name in wanted:
        mask |= int(getattr(WarcRecordType, name))
    stream = path if "://" not in path else _open_raw(path)
    last_pos, flagged = -1, False
    try:
        records = ArchiveIterator(
            stream,
            record_types=mask,
            parse_http=True,
            auto_decode="transfer",  # undo chunking; content decoding is checked in the reader
            quirks_mode=True,  # LF-only headers (ClueWeb, old crawlers)
            fsspec_args=False,
        )
        for rec in records:
            if gzipped and rec.stream_pos == last_pos and not flagged:
                # Several records in one gzip member: readable in sequence, but offsets
                # (as in a CDX/columnar index) cannot address them.
                skipped["gzip_not_per_record"] += 1
                flagged = True
            last_pos = rec.stream_pos
            rtype = str(rec.record_type)
            body = rec.reader.read()
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
    finally:
        if stream is not path:
            stream.close()


def _warcio_records(
    path: str, wanted: set[str], skipped: Counter, state: dict, seen: set[str], is_arc: bool
) -> Iterator[RawRecord]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    fh = _open_raw(path)
    try:
        it = ArchiveIterator(fh, arc2warc=True)
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except (ArchiveLoadFailed, OSError, ValueError, EOFError):
                skipped["unreadable_rest_of_file"] += 1
                return
            rtype = rec.rec_type
            if rtype not in wanted:
                continue
            url = _clean_uri(rec.rec_headers.get_header("WARC-Target-URI"))
            record_id = rec.rec_headers.get_header("WARC-Record-ID")
            if record_id in seen:
                continue
            try:
                body = rec.content_stream().read()
            except Exception:  # noqa: BLE001 - a corrupt body of any kind
                skipped["bad_record"] += 1
                continue
            if is_arc:  # arc2warc invents a random record id: use the offset (read after the body)
                record_id = f"arc:{it.get_record_offset()}:{url}"
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
    finally:
        fh.close()


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
