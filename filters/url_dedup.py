"""URL deduplication: documents whose normalised URL is the same form one cluster.

Normalisation: scheme and host lower-cased (http and https count as one), default ports
dropped, fragment dropped, tracking parameters (utm_*, fbclid, gclid, ...) removed, the
remaining query parameters sorted, trailing slash removed. Columns ``<prefix>_cluster``
(the normalised URL's hash), ``<prefix>_cluster_size`` and ``<prefix>_keep``; the keep rule
is the same as exact dedup (first by ``order_by``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import xxhash
from pydantic import Field

from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.stage import StageParams

TRACKING = re.compile(
    r"^(utm_[a-z0-9_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|yclid|_ga|_gl|igshid|ref_src|spm)$", re.I
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str | None, merge_schemes: bool = True) -> str | None:
    """Canonical form of a URL for duplicate detection (None stays None)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:  # malformed (bad port, brackets): compare it as written
        return url.strip()
    netloc = host
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc = f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k))
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    if path == "/":
        path = ""
    if merge_schemes and scheme in ("http", "https"):
        scheme = "http"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


class UrlDedup(GlobalStage):
    name = "url_dedup"
    version = "1"
    description = "duplicates by normalised URL: <prefix>_cluster, _cluster_size, _keep (global)"
    reduce_key = None  # set per instance below

    class Params(StageParams):
        url_column: str = "url"
        merge_schemes: bool = Field(True, description="treat http:// and https:// as the same URL")
        prefix: str = Field("url_dup", pattern=r"^[a-z][a-z0-9_]*$")
        order_by: list[str] = Field(["fetched_at", "id"], description="keep rule: first document by these columns")

    def __init__(self, params=None):
        super().__init__(params)
        self.reduce_key = f"{self.params.prefix}_cluster"

    def __setstate__(self, state):
        super().__setstate__(state)
        self.reduce_key = f"{self.params.prefix}_cluster"

    def required_columns(self):
        return tuple(dict.fromkeys([self.params.url_column, *self.params.order_by]))

    def map_columns(self):
        return {f"{self.params.prefix}_cluster": pa.string()}

    def map(self, batch: pa.Table) -> pa.Table:
        col = f"{self.params.prefix}_cluster"
        urls = batch.column(self.params.url_column).to_pylist()
        keys = []
        for url in urls:
            norm = normalise_url(url, self.params.merge_schemes)
            keys.append(None if norm is None else xxhash.xxh3_128_hexdigest(norm.encode("utf-8")))
        if col in batch.column_names:
            batch = batch.drop_columns([col])
        return batch.append_column(col, pa.array(keys, pa.string()))

    def reduce_inputs(self):
        return tuple(self.params.order_by)

    def reduce_output_columns(self):
        p = self.params.prefix
        return {f"{p}_cluster_size": pa.int64(), f"{p}_keep": pa.bool_()}

    def reduce_sql(self, rows: str) -> str:
        p = self.params.prefix
        key = quote_ident(f"{p}_cluster")
        order = ", ".join(f"{quote_ident(c)} ASC NULLS LAST" for c in self.params.order_by)
        return f"""
            SELECT {SHARD_COL}, {ROW_COL},
                   CASE WHEN {key} IS NULL THEN 1 ELSE count(*) OVER (PARTITION BY {key}) END AS {p}_cluster_size,
                   CASE WHEN {key} IS NULL THEN true
                        ELSE row_number() OVER (PARTITION BY {key} ORDER BY {order}, {SHARD_COL}, {ROW_COL}) = 1
                   END AS {p}_keep
            FROM {rows}"""
