"""Hostile input files, written in a second or two whatever their inflated size.

A gzip member of gigabytes is built from one compressed block: after a full flush deflate
forgets its history, so the same input block compresses to the same bytes every time and
can be written N times (the CRC is computed over the real content). The files are what a
careless or hostile user hands to ``dataengine run``: a bomb named ``.warc.gz``, a 2 GiB
record, garbage between gzip members, a 2 GiB header line, a gzip bomb as an HTTP body, a
100,000-deep HTML page, and files that are not what their names say.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

GIB = 2**30
_UNIT = 1 << 24  # 16 MiB per repeated block


def write_gzip_member(fh, prefix: bytes, total: int, suffix: bytes = b"", fill: bytes = b"A") -> None:
    """One gzip member inflating to ``prefix + fill * total + suffix`` (``total`` a multiple of 16 MiB)."""
    assert total % _UNIT == 0 and total >= 2 * _UNIT, "total: a multiple of 16 MiB, at least 32 MiB"
    unit = fill * _UNIT
    repeats = total // _UNIT
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    fh.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
    fh.write(comp.compress(prefix) + comp.flush(zlib.Z_FULL_FLUSH))
    block = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
    assert block == comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH), "deflate kept state across a full flush"
    crc, size = zlib.crc32(prefix), len(prefix)
    for _ in range(repeats):
        fh.write(block)
        crc, size = zlib.crc32(unit, crc), size + len(unit)
    fh.write(comp.compress(suffix) + comp.flush(zlib.Z_FINISH))
    crc, size = zlib.crc32(suffix, crc), size + len(suffix)
    fh.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def warc_record(n: int, body: bytes, headers: str = "Content-Type: text/html") -> bytes:
    """A WARC response record (uncompressed) with an HTTP response around ``body``."""
    http = f"HTTP/1.1 200 OK\r\n{headers}\r\n\r\n".encode() + body
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
        f"WARC-Target-URI: http://hostile.example/{n}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
    ).encode()
    return head + http + b"\r\n\r\n"


def page(n: int) -> bytes:
    return (f"<html><head><title>page {n}</title></head><body><article><p>"
            + f"Readable text number {n} with enough words to be kept as a document. " * 8
            + "</p></article></body></html>").encode()


def good_warc(path: Path, first: int = 0, count: int = 4) -> Path:
    with open(path, "wb") as fh:
        for n in range(first, first + count):
            fh.write(gzip.compress(warc_record(n, page(n))))
    return path


def gzip_bomb(path: Path, size: int = 2 * GIB) -> Path:
    """A single gzip member of ``size`` bytes of 'A', named like a WARC."""
    with open(path, "wb") as fh:
        write_gzip_member(fh, b"", size)
    return path


def huge_record(path: Path, size: int = 2 * GIB) -> Path:
    """Good record, a record whose body is ``size`` bytes (one member), good record."""
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-999999999999>\r\n"
        "WARC-Target-URI: http://hostile.example/huge\r\nContent-Type: application/http; msgtype=response\r\n"
        f"Content-Length: {len(http) + size}\r\n\r\n"
    ).encode()
    with open(path, "wb") as fh:
        fh.write(gzip.compress(warc_record(100, page(100))))
        write_gzip_member(fh, head + http, size, b"\r\n\r\n", fill=b" ")
        fh.write(gzip.compress(warc_record(101, page(101))))
    return path


def garbage_between_members(path: Path, records: int = 16, garbage_at: int = 8, garbage: int = 5000) -> Path:
    with open(path, "wb") as fh:
        for n in range(200, 200 + records):
            if n - 200 == garbage_at:
                fh.write(os.urandom(garbage).replace(b"\x1f\x8b", b"\x00\x00"))
            fh.write(gzip.compress(warc_record(n, page(n))))
    return path


def header_line_bomb(path: Path, size: int = 2 * GIB) -> Path:
    """A good record, then a WARC header whose second line is ``size`` bytes long, then a good one."""
    with open(path, "wb") as fh:
        fh.write(gzip.compress(warc_record(300, page(300))))
        write_gzip_member(fh, b"WARC/1.0\r\nX-Long: ", size)
        fh.write(gzip.compress(warc_record(301, page(301))))
    return path


def content_encoding_bomb(path: Path, size: int = GIB) -> Path:
    """A response whose body is a gzip bomb of ``size`` bytes (Content-Encoding: gzip), between good ones."""
    import io

    buf = io.BytesIO()
    write_gzip_member(buf, b"<html>", size, b"</html>", fill=b" ")
    with open(path, "wb") as fh:
        fh.write(gzip.compress(warc_record(400, page(400))))
        fh.write(gzip.compress(warc_record(401, buf.getvalue(), "Content-Type: text/html\r\nContent-Encoding: gzip")))
        fh.write(gzip.compress(warc_record(402, page(402))))
    return path


def deep_html(path: Path, depth: int = 100_000) -> Path:
    """A page nested ``depth`` elements deep, between good pages."""
    body = b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth + b"</body></html>"
    with open(path, "wb") as fh:
        fh.write(gzip.compress(warc_record(500, page(500))))
        fh.write(gzip.compress(warc_record(501, body)))
        fh.write(gzip.compress(warc_record(502, page(502))))
    return path


def empty_warc(path: Path) -> Path:
    path.write_bytes(b"")
    return path
