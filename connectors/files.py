"""JSONL and Parquet readers: the simplest way in for a user's own corpus."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from dataengine.core.reader import Reader, ReaderOptions, open_input
from dataengine.core.schema import CORE_COLUMNS, DOCUMENT_SCHEMA, conform, make_doc_id


class FileOptions(ReaderOptions):
    text_field: str = Field("text", description="field holding the document text")
    id_field: str | None = Field("id", description="field with the record id; the line/row number if absent")
    source: str | None = Field(None, description="value of the source column; default: the file name")
    keep_fields: bool = Field(True, description="keep non-core fields as a JSON `meta` column")


def _source_name(path: str, options: FileOptions) -> str:
    return options.source or os.path.basename(path.rstrip("/"))


def parse_timestamp(value) -> dt.datetime | None:
    """ISO-8601 text or epoch seconds -> aware UTC datetime; naive times are taken as UTC.

    Unparseable values become None (the document is kept; the field is simply unknown).
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.timezone.utc)
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _records_to_table(records: list[dict], offsets: list[int], path: str, options: FileOptions) -> pa.Table:
    source = _source_name(path, options)
    cols: dict[str, list] = {name: [] for name in CORE_COLUMNS}
    meta: list[str | None] = []
    for rec, offset in zip(records, offsets):
        rid = rec.get(options.id_field) if options.id_field else None
        rid = str(rid) if rid is not None else f"#{offset}"
        cols["id"].append(make_doc_id(source, rid))
        cols["text"].append(rec.get(options.text_field))
        cols["source"].append(rec.get("source", source))
        for name in ("url", "crawl", "content_type", "title", "language"):
            value = rec.get(name)
            cols[name].append(None if value is None else str(value))
        cols["fetched_at"].append(parse_timestamp(rec.get("fetched_at")))
        cols["language_score"].append(rec.get("language_score"))
        if options.keep_fields:
            extra = {k: v for k, v in rec.items() if k not in CORE_COLUMNS and k != options.text_field}
            meta.append(json.dumps(extra, ensure_ascii=False, default=str) if extra else None)
    arrays = {}
    for field in DOCUMENT_SCHEMA:
        values = cols[field.name]
        if field.name == "language_score":
            values = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values]
            arrays[field.name] = pa.array(values, type=pa.float64())
        else:
            arrays[field.name] = pa.array(values, type=field.type)
    table = pa.table(arrays)
    if options.keep_fields:
        table = table.append_column("meta", pa.array(meta, type=pa.string()))
    return conform(table)


class JsonlReader(Reader):
    """One JSON object a line (optionally compressed); bad lines are counted and skipped."""

    format = "jsonl"
    Options = FileOptions

    def columns(self, path: str) -> list[str]:
        return list(CORE_COLUMNS) + (["meta"] if self.options.keep_fields else [])

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        records, offsets = [], []
        with open_input(path, "rb") as fh:
            for lineno, line in enumerate(fh):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.skipped["bad_json"] += 1
                    continue
                if not isinstance(rec, dict):
                    self.skipped["not_an_object"] += 1
                    continue
                if not isinstance(rec.get(self.options.text_field), str):
                    self.skipped["missing_text"] += 1
                    continue
                records.append(rec)
                offsets.append(lineno)
                if len(records) >= batch_size:
                    yield _records_to_table(records, offsets, path, self.options)
                    records, offsets = [], []
        if records:
            yield _records_to_table(records, offsets, path, self.options)


class ParquetReader(Reader):
    """Parquet files with a text column; other columns pass through unchanged."""

    format = "parquet"
    Options = FileOptions

    def columns(self, path: str) -> list[str]:
        with open_input(path, "rb") as fh:
            names = pq.ParquetFile(fh).schema_arrow.names
        names = ["text" if n == self.options.text_field else n for n in names]
        return sorted(set(names) | {"id", "source"})

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        source = _source_name(path, self.options)
        row = 0
        with open_input(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            for batch in pf.iter_batches(batch_size=batch_size):
                table = pa.Table.from_batches([batch])
                if self.options.text_field != "text":
                    if "text" in table.column_names:
                        table = table.drop_columns(["text"])
                    table = table.rename_columns(
                        ["text" if n == self.options.text_field else n for n in table.column_names]
                    )
                n = table.num_rows
                if self.options.id_field and self.options.id_field in table.column_names:
                    rids = [str(v) for v in table.column(self.options.id_field).to_pylist()]
                else:
                    rids = [f"#{row + i}" for i in range(n)]
                ids = pa.array([make_doc_id(source, r) for r in rids], type=pa.string())
                if "id" in table.column_names:
                    table = table.drop_columns(["id"])
                table = table.add_column(0, "id", ids)
                if "source" not in table.column_names:
                    table = table.append_column("source", pa.array([source] * n, type=pa.string()))
                row += n
                yield conform(table)
