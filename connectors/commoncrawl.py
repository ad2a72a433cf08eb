"""Common Crawl ``warc.paths.gz`` listings -> the WARC URLs to ingest, one shard each.

A listing names every WARC file of a crawl, relative to the crawl bucket
(``crawl-data/CC-MAIN-2024-22/segments/.../warc/....warc.gz``). Joined with a mirror
prefix (``https://data.commoncrawl.org/``, ``s3://commoncrawl/`` or a local folder) they
become the input files of an ordinary ``warc`` pipeline: the executor already runs one
shard per file, resumes per file, and the reader fills the ``crawl`` and ``warc_file``
columns from the path.
"""

from __future__ import annotations

import os
import re

from dataengine.core.errors import PipelineConfigError
from dataengine.core.reader import open_input

DEFAULT_MIRROR = "https://data.commoncrawl.org/"
_CRAWL = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")


def listing_for_crawl(crawl: str, mirror: str = DEFAULT_MIRROR) -> str:
    """Where a crawl's warc.paths.gz lives under a mirror."""
    if not _CRAWL.match(crawl):
        raise PipelineConfigError(f"{crawl!r} is not a crawl name like CC-MAIN-2024-22")
    return join_mirror(mirror, f"crawl-data/{crawl}/warc.paths.gz")


def join_mirror(mirror: str, relative: str) -> str:
    if mirror.startswith("file://"):
        mirror = mirror[len("file://"):]
    if "://" in mirror:
        return mirror.rstrip("/") + "/" + relative.lstrip("/")
    return os.path.join(os.path.abspath(os.path.expanduser(mirror)), relative.lstrip("/"))


def read_listing(listing: str, limit: int | None = None, skip: int = 0) -> list[str]:
    """Relative WARC paths from a (gzipped) listing, in order; blank lines ignored."""
    paths: list[str] = []
    with open_input(listing, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", "replace").strip()
            if not line or line.startswith("#"):
                continue
            if skip:
                skip -= 1
                continue
            paths.append(line)
            if limit is not None and len(paths) >= limit:
                break
    if not paths:
        raise PipelineConfigError(f"listing {listing!r} names no WARC file")
    return paths


def crawl_of(listing_or_path: str) -> str | None:
    match = re.search(r"(CC-MAIN-\d{4}-\d{2})", listing_or_path)
    return match.group(1) if match else None


def warc_urls(
    listing_or_crawl: str, mirror: str | None = None, limit: int | None = None, skip: int = 0
) -> tuple[list[str], str | None]:
    """(WARC file URLs, crawl name) for a listing file or a crawl name.

    The mirror defaults to the folder/URL the listing sits in, minus its
    ``crawl-data/CC-MAIN-.../`` part (a local mirror keeps the bucket layout), else the
    public HTTPS endpoint.
    """
    if _CRAWL.match(listing_or_crawl):
        mirror = mirror or DEFAULT_MIRROR
        listing = listing_for_crawl(listing_or_crawl, mirror)
        crawl = listing_or_crawl
    else:
        listing = listing_or_crawl
        crawl = crawl_of(listing)
        if mirror is None:
            idx = listing.find("crawl-data/")
            mirror = listing[:idx] if idx > 0 else DEFAULT_MIRROR
    relative = read_listing(listing, limit=limit, skip=skip)
    crawl = crawl or crawl_of(relative[0])
    return [join_mirror(mirror, rel) for rel in relative], crawl
