"""One WARC/ARC record as both WARC libraries give it to us, before any decision."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass
class RawRecord:
    """What both WARC libraries give us for one record, before any decision."""

    record_id: str
    record_type: str
    url: str | None
    date: dt.datetime | None
    headers: dict | None  # HTTP headers (any mapping with .get), None if not HTTP
    status: int | None
    body: bytes
    warc_truncated: bool
    declared_payload: int | None  # payload bytes the WARC Content-Length promises
