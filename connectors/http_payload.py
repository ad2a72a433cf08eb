"""HTTP payload checks and content decoding for archived responses.

Transfer-Encoding (chunked) is undone by fastwarc/warcio while reading; this module
undoes Content-Encoding (gzip, deflate, br) and tells a truncated body from a whole one.
Crawlers often store bodies already decoded but keep the ``Content-Encoding`` header
(ClueWeb09 does), so a body is only decompressed when its bytes say it is compressed.
"""

from __future__ import annotations

import io
import zlib

_GZIP_MAGIC = b"\x1f\x8b"


class PayloadError(ValueError):
    """A body that cannot be decoded; ``reason`` is the skip-count key."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def declared_length(headers) -> int | None:
    """The HTTP Content-Length if present and sane (ignored under Transfer-Encoding)."""
    if headers is None or headers.get("Transfer-Encoding"):
        return None
    raw = headers.get("Content-Length")
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def decode_content(body: bytes, encoding: str | None, max_bytes: int | None = None) -> bytes:
    """Undo HTTP Content-Encoding; raises PayloadError('bad_content_encoding') if corrupt and
    PayloadError('too_large') once the decoded body would pass ``max_bytes`` (a gzip bomb in
    a response is inflated no further than that)."""
    coding = (encoding or "").strip().lower()
    if not coding or coding in ("identity", "none", "utf-8"):
        return body
    if coding in ("gzip", "x-gzip", "deflate"):
        if coding != "deflate" and not body.startswith(_GZIP_MAGIC):
            return body  # stored already decoded
        return _inflate(body, max_bytes)
    if coding == "br":
        if body.lstrip()[:1] in (b"<", b""):
            return body
        from fastwarc.stream_io import BrotliReader

        try:
            limit = -1 if max_bytes is None else max_bytes + 1
            out = BrotliReader(io.BytesIO(body), fsspec_args=False).read(limit)
        except OSError:
            raise PayloadError("bad_content_encoding") from None
        if max_bytes is not None and len(out) > max_bytes:
            raise PayloadError("too_large")
        return out
    raise PayloadError("unsupported_content_encoding")


def _inflate(body: bytes, max_bytes: int | None = None) -> bytes:
    """gzip, zlib or raw deflate; a cut-off stream yields what is there, then is reported."""
    for wbits in (47, -15):  # 47: gzip or zlib header, auto-detected; -15: raw deflate
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, 0 if max_bytes is None else max_bytes + 1)
        except zlib.error:
            continue
        if max_bytes is not None and len(out) > max_bytes:
            raise PayloadError("too_large")
        if not inflater.eof:
            raise PayloadError("truncated")
        return out
    # Not compressed after all: a stale header on a plain body.
    if body.lstrip()[:1] == b"<":
        return body
    raise PayloadError("bad_content_encoding")
