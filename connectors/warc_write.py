"""Write pages as WARC response records (warcio), e.g. to wrap saved pages for a benchmark.

Record ids are derived from the URL and position (uuid5), so writing the same pages
twice gives byte-identical record ids and therefore the same document ids on ingest.
"""

from __future__ import annotations

import uuid
from typing import Iterable

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def write_html_warc(
    path: str,
    pages: Iterable[tuple[str, bytes]],
    charset: str | None = None,
    date: str = "2024-05-18T00:00:00Z",
) -> int:
    """Write ``(url, html bytes)`` pairs as gzip-per-record WARC responses; returns the count.

    ``charset`` goes into the HTTP Content-Type when given; otherwise readers must find
    it in the page (``<meta>``) or detect it, as for many real crawls.
    """
    import io

    n = 0
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=str(path).endswith(".gz"))
        for n, (url, body) in enumerate(pages, start=1):
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", content_type), ("Content-Length", str(len(body)))],
                protocol="HTTP/1.1",
            )
            record_id = f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{n}:{url}')}>"
            record = writer.create_warc_record(
                url,
                "response",
                payload=io.BytesIO(body),
                length=len(body),
                http_headers=http,
                warc_headers_dict={
                    "WARC-Record-ID": record_id,
                    "WARC-Date": date,
                    # as Common Crawl writes it; readers (datatrove's) select HTML by it
                    "WARC-Identified-Payload-Type": "text/html",
                },
            )
            writer.write_record(record)
    return n
