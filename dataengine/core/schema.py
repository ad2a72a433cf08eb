"""The document schema every connector produces and every stage reads.

See docs/schema.md for the naming rules of annotation columns.
"""

from __future__ import annotations

import re

import pyarrow as pa
import xxhash

#: Core document columns. Connectors fill what they know; the rest stays null.
DOCUMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string()),
        pa.field("crawl", pa.string()),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC")),
        pa.field("content_type", pa.string()),
        pa.field("text", pa.string()),
        pa.field("title", pa.string()),
        pa.field("language", pa.string()),
        pa.field("language_score", pa.float32()),
    ]
)

CORE_COLUMNS = tuple(DOCUMENT_SCHEMA.names)

#: The catalog schema of the product's own tables (runs, blends, models, thresholds, ...).
META_SCHEMA = "dataengine"

_COLUMN_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def make_doc_id(source: str, record_id: str) -> str:
    """Stable document id: 128-bit xxh3 of (source, record id), hex.

    Re-ingesting the same record from the same source gives the same id, so ingest is
    idempotent and ids can be joined across tables and snapshots.
    """
    return xxhash.xxh3_128_hexdigest(f"{source}\x00{record_id}".encode("utf-8"))


def annotation_column(namespace: str, field: str) -> str:
    """Name of an annotation column: ``<namespace>_<field>`` (e.g. ``gopher_pass``)."""
    name = f"{namespace}_{field}" if namespace else field
    if not _COLUMN_NAME.match(name):
        raise ValueError(f"invalid column name {name!r}: use lower-case letters, digits and _")
    return name


def conform(table: pa.Table) -> pa.Table:
    """Cast core columns that are present to their schema types, leave others alone.

    Connectors may produce a subset of the core columns; annotation columns pass through.
    """
    columns = []
    fields = []
    for name in table.column_names:
        column = table.column(name)
        idx = DOCUMENT_SCHEMA.get_field_index(name)
        if idx >= 0:
            target = DOCUMENT_SCHEMA.field(idx).type
            if column.type != target:
                column = column.cast(target)
            fields.append(pa.field(name, target))
        else:
            fields.append(table.schema.field(name))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def empty_documents() -> pa.Table:
    return DOCUMENT_SCHEMA.empty_table()
