"""Bytes of a web page -> UTF-8 bytes, recording which charset was used and why.

Order of evidence (as browsers do): the HTTP ``Content-Type`` charset, then a ``<meta>``
declaration in the first bytes of the page, then statistical detection
(charset-normalizer). Declared labels are mapped to the superset codec browsers really
use (WHATWG Encoding Standard: latin-1 means windows-1252, shift_jis means cp932...), so a
page that claims ISO-8859-1 but uses curly quotes still decodes correctly.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

import pyarrow as pa

#: How far into the page a <meta charset> may appear (the HTML spec says 1024 bytes;
#: real pages put long <script>s first, so look further).
META_SCAN_BYTES = 4096
#: Detection looks at this much of the page: enough for a stable guess, bounded cost.
DETECT_SCAN_BYTES = 64 * 1024

_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,512}?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.I)

#: WHATWG: labels whose real-world meaning is a superset codec.
_SUPERSETS = {
    "latin_1": "cp1252",
    "iso8859_1": "cp1252",
    "ascii": "cp1252",
    "iso8859_9": "cp1254",
    "iso8859_11": "cp874",
    "tis_620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
    "utf_16": "utf_8",  # a declared UTF-16 on an 8-bit page is always wrong (WHATWG)
    "utf_16_le": "utf_8",
    "utf_16_be": "utf_8",
}


class Decoded(NamedTuple):
    """A page as UTF-8 bytes (what Arrow stores; no Python str round trip for UTF-8 pages)."""

    data: bytes
    charset: str  #: Python codec name actually used
    source: str  #: "http", "meta", "bom", "utf-8" (valid UTF-8, nothing declared) or "detected"

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def is_utf8(data: bytes) -> bool:
    """Valid UTF-8? ASCII is checked by CPython, the rest by Arrow's vectorised validator
    (an order of magnitude faster than ``bytes.decode`` on large pages)."""
    if data.isascii():
        return True
    try:
        pa.array([data], type=pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _to_utf8(body: bytes, charset: str) -> bytes:
    if charset == "utf_8":
        return body if is_utf8(body) else body.decode("utf-8", "replace").encode("utf-8")
    return body.decode(charset, "replace").encode("utf-8")


def normalize_charset(label: str | None) -> str | None:
    """A declared label -> the Python codec browsers would use, or None if unknown."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'").lower()).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    return _SUPERSETS.get(name, name)


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset parameter of an HTTP Content-Type header value, normalized."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return normalize_charset(match.group(1)) if match else None


def charset_from_meta(body: bytes) -> str | None:
    """A ``<meta charset=...>`` or ``<meta http-equiv content="...; charset=...">`` label."""
    match = _META_CHARSET.search(body, 0, META_SCAN_BYTES)
    return normalize_charset(match.group(1).decode("ascii", "replace")) if match else None


def detect_charset(body: bytes) -> str:
    """Statistical guess (charset-normalizer) over the first bytes; cp1252 if hopeless."""
    from charset_normalizer import from_bytes

    best = from_bytes(body[:DETECT_SCAN_BYTES]).best()
    return normalize_charset(best.encoding if best else None) or "cp1252"


def decode_html(body: bytes, http_charset: str | None = None) -> Decoded:
    """Re-encode a page body to UTF-8 from its best-evidenced charset; never raises.

    ``http_charset`` is the label from the HTTP header (raw or already normalized).
    """
    if body.startswith(codecs.BOM_UTF8):
        return Decoded(_to_utf8(body[3:], "utf_8"), "utf_8", "bom")
    declared = normalize_charset(http_charset)
    if declared:
        return Decoded(_to_utf8(body, declared), declared, "http")
    declared = charset_from_meta(body)
    if declared:
        return Decoded(_to_utf8(body, declared), declared, "meta")
    if is_utf8(body):
        # Most undeclared pages are UTF-8, and valid UTF-8 is rarely anything else.
        return Decoded(body, "utf_8", "utf-8")
    guess = detect_charset(body)
    return Decoded(_to_utf8(body, guess), guess, "detected")
