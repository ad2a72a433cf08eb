"""Exact deduplication: documents whose normalised text is identical form one cluster.

Annotates (never drops): ``dup_cluster`` (content hash), ``dup_cluster_size`` and
``dup_keep`` (true for exactly one document of each cluster). Select with
``WHERE dup_keep``. The keep rule is deterministic and executor-independent: the first
document by ``order_by`` (default: earliest ``fetched_at``, then ``id``), ties broken by
shard and row position.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field, field_validator

from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.stage import StageParams


NORMALISATIONS = ("none", "whitespace", "lower", "punctuation")


def normalise_text(text: pa.ChunkedArray | pa.Array, level: str = "lower") -> pa.Array:
    """Normalise before hashing so copies that differ only in form hash alike.

    ``none``: as is; ``whitespace``: runs of whitespace collapsed, trimmed; ``lower``: also
    lower-cased (default); ``punctuation``: also punctuation, symbols and digits removed.
    """
    if level == "none":
        return text
    if level in ("lower", "punctuation"):
        text = pc.utf8_lower(text)
    if level == "punctuation":
        text = pc.replace_substring_regex(text, r"[\p{P}\p{S}\p{N}]+", " ")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    return pc.utf8_trim_whitespace(text)


def content_hash(texts: list[str | None]) -> list[str | None]:
    """128-bit xxh3 (hex) of each text; stable across versions, processes and machines."""
    return [None if t is None else xxhash.xxh3_128_hexdigest(t.encode("utf-8")) for t in texts]


class ExactDedup(GlobalStage):
    name = "exact_dedup"
    version = "1"
    description = "exact duplicates of normalised text: dup_cluster, dup_cluster_size, dup_keep (global)"
    reduce_key = "dup_cluster"

    class Params(StageParams):
        text_column: str = Field("text", description="column holding the text to compare")
        normalize: Literal["none", "whitespace", "lower", "punctuation"] = Field(
            "lower", description="none | whitespace | lower (default) | punctuation (see normalise_text)"
        )
        order_by: list[str] = Field(
            ["fetched_at", "id"], description="keep rule: the first document by these columns (nulls last)"
        )

        @field_validator("order_by")
        @classmethod
        def _not_empty(cls, value):
            if not value:
                raise ValueError("order_by needs at least one column")
            return value

    def required_columns(self):
        cols = [self.params.text_column] + [c for c in self.params.order_by if c != self.params.text_column]
        return tuple(cols)

    def map_columns(self):
        return {"dup_cluster": pa.string()}

    def map(self, batch: pa.Table) -> pa.Table:
        text = batch.column(self.params.text_column)
        text = normalise_text(text, self.params.normalize)
        hashes = pa.array(content_hash(text.to_pylist()), pa.string())
        if "dup_cluster" in batch.column_names:
            batch = batch.drop_columns(["dup_cluster"])
        return batch.append_column("dup_cluster", hashes)

    def reduce_inputs(self):
        return tuple(self.params.order_by)

    def reduce_output_columns(self):
        return {"dup_cluster_size": pa.int64(), "dup_keep": pa.bool_()}

    def reduce_sql(self, rows: str) -> str:
        # Rows with NULL text are not duplicates of each other: each is its own cluster.
        order = ", ".join(f"{quote_ident(c)} ASC NULLS LAST" for c in self.params.order_by)
        return f"""
            SELECT {SHARD_COL}, {ROW_COL},
                   CASE WHEN dup_cluster IS NULL THEN 1
                        ELSE count(*) OVER (PARTITION BY dup_cluster) END AS dup_cluster_size,
                   CASE WHEN dup_cluster IS NULL THEN true
                        ELSE row_number() OVER (
                            PARTITION BY dup_cluster ORDER BY {order}, {SHARD_COL}, {ROW_COL}) = 1
                   END AS dup_keep
            FROM {rows}"""
