"""Finding WARC records in damaged or hostile files without reading more than a bounded amount.

* :func:`sniff` tells WARC from ARC from anything else by the first decompressed bytes,
  before any parser sees the stream (a 2 MB gzip bomb named ``.warc.gz`` is "not WARC"
  after inflating 64 KiB of it).
* :func:`find_next_record` scans forward for the next place a record starts (a gzip member
  that inflates to ``WARC/``, or a ``WARC/x.y`` line in a plain file), so reading resumes
  after garbage instead of dropping the rest of the file.
* :func:`record_end` says where the last good record ended, so the bytes skipped in between
  can be counted.
* :class:`InflatingReader` inflates gzip members for a parser that reads lines (warcio, for
  ARC): it hands out at most ``max_line`` bytes without a newline, then raises.
"""

from __future__ import annotations

import re
import zlib

GZIP_MAGIC = b"\x1f\x8b\x08"
_WARC_LINE = re.compile(rb"WARC/\d\.\d+\r?\n")
_CHUNK = 1 << 20
_PEEK = 1 << 16


def _inflate_head(data: bytes, limit: int = 256) -> bytes | None:
    """The first ``limit`` inflated bytes of a gzip member starting at ``data[0]``, or None."""
    try:
        return zlib.decompressobj(31).decompress(data, limit)
    except zlib.error:
        return None


def sniff(fh) -> tuple[str, bool, bytes]:
    """("warc" | "arc" | "empty" | "unknown", gzipped, the first inflated bytes) of the stream at 0."""
    fh.seek(0)
    head = fh.read(_PEEK)
    if not head:
        return "empty", False, b""
    gzipped = head.startswith(GZIP_MAGIC[:2])
    text = _inflate_head(head) if gzipped else head[:256]
    if text is None:
        return "unknown", True, head[:16]
    if gzipped and not text:
        return "empty", True, b""
    start = text.lstrip()
    if start.startswith(b"WARC/"):
        return "warc", gzipped, text
    if start.startswith(b"filedesc://"):
        return "arc", gzipped, text
    return "unknown", gzipped, text


def _starts_record(fh, pos: int, gzipped: bool) -> bool:
    fh.seek(pos)
    data = fh.read(_PEEK)
    if gzipped:
        text = _inflate_head(data, 64)
        return text is not None and _WARC_LINE.match(text.lstrip(b"\r\n")) is not None
    return _WARC_LINE.match(data) is not None


def find_next_record(fh, start: int, gzipped: bool) -> int | None:
    """Offset of the first record start at or after ``start``, or None: reads 1 MiB at a time."""
    needle = GZIP_MAGIC if gzipped else b"WARC/"
    pos = max(0, start)
    while True:
        fh.seek(pos)
        chunk = fh.read(_CHUNK + len(needle))
        if not chunk:
            return None
        i = chunk.find(needle)
        while 0 <= i < _CHUNK:
            cand = pos + i
            at_line_start = gzipped or cand == 0 or (chunk[i - 1:i] == b"\n" if i else _byte_before(fh, cand) == b"\n")
            if at_line_start and _starts_record(fh, cand, gzipped):
                return cand
            i = chunk.find(needle, i + 1)
        if len(chunk) <= _CHUNK:
            return None
        pos += _CHUNK


def _byte_before(fh, pos: int) -> bytes:
    fh.seek(pos - 1)
    return fh.read(1)


def record_end(fh, start: int, gzipped: bool, content_length: int | None) -> int:
    """Where the record (gzip member) that starts at ``start`` ends; ``start`` if unknown.

    gzip: the member is inflated and thrown away chunk by chunk (bounded memory). Plain: the
    header block's end plus the declared Content-Length plus the closing CRLF CRLF.
    """
    fh.seek(start)
    if gzipped:
        inflater = zlib.decompressobj(31)
        consumed = 0
        while not inflater.eof:
            chunk = fh.read(_CHUNK)
            if not chunk:
                return start
            try:
                inflater.decompress(chunk, 0)  # 0: no output limit; output is discarded at once
            except zlib.error:
                return start
            consumed += len(chunk)
        return start + consumed - len(inflater.unused_data)
    head = fh.read(_PEEK)
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = head.find(sep)
        if idx >= 0 and content_length is not None:
            return start + idx + len(sep) + content_length + len(sep)
    return start


class LineTooLong(ValueError):
    """More than the allowed bytes without a newline: not a text record format."""


class InflatingReader:
    """A read-only file over a (possibly multi-member gzip) file, inflated as it is read.

    Hands out at most ``max_line`` bytes between newlines, then raises :class:`LineTooLong`,
    so a line-oriented parser never buffers a bomb. ``member_offset(pos)`` maps an offset in
    the inflated stream to the compressed offset of the gzip member holding it (how ARC record
    ids name records).
    """

    def __init__(self, raw, gzipped: bool, max_line: int):
        self.raw = raw
        self.gzipped = gzipped
        self.max_line = max_line
        self._inflater = zlib.decompressobj(31) if gzipped else None
        self._pending = b""  # compressed input not yet inflated
        self._out = 0  # inflated bytes handed out
        self._since_newline = 0
        self._members: list[tuple[int, int]] = [(0, 0)]  # (inflated start, compressed start)
        self._compressed_pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size is None or size < 0 else min(size, _CHUNK)
        data = self._read_raw(size) if not self.gzipped else self._inflate(size)
        self._count_line(data)
        self._out += len(data)
        return data

    def _read_raw(self, size: int) -> bytes:
        return self.raw.read(size)

    def _inflate(self, size: int) -> bytes:
        out = b""
        while not out:
            if self._inflater.eof:
                rest = self._inflater.unused_data
                member_start = self._compressed_pos - len(rest) - len(self._pending)
                self._pending = rest + self._pending
                if not self._pending:
                    self._pending = self.raw.read(_CHUNK)
                    self._compressed_pos += len(self._pending)
                    member_start = self._compressed_pos - len(self._pending)
                if not self._pending:
                    return b""
                self._inflater = zlib.decompressobj(31)
                self._members.append((self._out, member_start))
            if not self._pending:
                self._pending = self.raw.read(_CHUNK)
                self._compressed_pos += len(self._pending)
                if not self._pending:
                    return b""  # cut off inside a member: the parser sees the end
            out = self._inflater.decompress(self._pending, size)
            self._pending = self._inflater.unconsumed_tail
        return out

    def _count_line(self, data: bytes) -> None:
        nl = data.rfind(b"\n")
        if nl < 0:
            self._since_newline += len(data)
        else:
            if self._since_newline + data.find(b"\n") > self.max_line:
                raise LineTooLong(f"a line longer than {self.max_line} bytes")
            self._since_newline = len(data) - nl - 1
        if self._since_newline > self.max_line:
            raise LineTooLong(f"a line longer than {self.max_line} bytes")

    def member_offset(self, inflated_pos: int) -> int:
        if not self.gzipped:
            return inflated_pos
        best = 0
        for start, compressed in self._members:
            if start <= inflated_pos:
                best = compressed
            else:
                break
        return best

    def close(self) -> None:
        self.raw.close()
