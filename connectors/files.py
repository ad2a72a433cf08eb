"""JSONL and Parquet readers: the simplest way in for a user's own corpus.

A user's record keeps its shape: its ``id`` stays the document id (a stable hash of the
file name and line/row number only when the record has none), and every top-level field
becomes a typed column (numbers, booleans, strings; nested objects and lists as JSON text)
next to the document schema's columns (null where the record has no such field).

JSONL has no schema, and every shard of a run must write the same columns, so the
reader infers one when the run is planned, from the first ``infer_rows`` records of the
input files (widening within the sample: int + float -> float, mixed kinds -> string).
A later value that does not fit its column becomes null and a field the sample never saw
is left out; both are counted per field in the run's skipped records, never silently.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from dataengine.core.errors import PipelineConfigError
from dataengine.core.reader import Reader, ReaderOptions, open_input
from dataengine.core.schema import DOCUMENT_SCHEMA, conform, make_doc_id


class FileOptions(ReaderOptions):
    text_field: str | None = Field("text", description="field holding the document text (None: rows without text, "
                                                        "e.g. chat or preference data)")
    id_field: str | None = Field("id", description="field with the record id; a hash of file and line if absent")
    source: str | None = Field(None, description="value of the source column; default: the file name")
    infer_rows: int = Field(10_000, ge=1, description="records sampled (over all files) to infer the JSONL columns")
    max_line_bytes: int = Field(64 * 2**20, ge=1024, description="JSONL: longer lines are skipped (too_long_line) "
                                                                 "without being held in memory")


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


# -- JSON value kinds -> Arrow types ----------------------------------------------------

_KIND_TYPES = {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "string": pa.string(), "json": pa.string()}


def _kind(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "string"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "json"  # dict / list


def _widen(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    return "string"  # anything else mixed: keep it as text (JSON for non-strings)


def _as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _convert(value, kind: str):
    """``value`` as a column of ``kind`` holds it, or raise ValueError when it cannot."""
    if value is None:
        return None
    if kind == "string":
        return _as_text(value)
    if kind == "json":
        return json.dumps(value, ensure_ascii=False, default=str)
    have = _kind(value)
    if have == kind or (kind == "float" and have == "int"):
        return value
    raise ValueError(have)


#: Core columns a record may carry under its own name, with how to read them.
_CORE_PARSERS = {
    "fetched_at": parse_timestamp,
    "language_score": lambda v: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None,
}


class JsonlReader(Reader):
    """One JSON object a line (optionally compressed); bad lines are counted and skipped."""

    format = "jsonl"
    Options = FileOptions

    # -- planning: one schema for every shard --------------------------------------
    def plan(self, files: list[str]) -> list[str]:
        kinds: dict[str, str | None] = {}
        seen = 0
        per_file = max(100, self.options.infer_rows // max(1, len(files)))
        for path in files:
            if seen >= self.options.infer_rows:
                break
            for rec in self._sample(path, min(per_file, self.options.infer_rows - seen)):
                seen += 1
                for key, value in rec.items():
                    kinds[key] = _widen(kinds.get(key), _kind(value))
        if not seen:
            raise PipelineConfigError(f"no JSON object found in the first lines of {files[0]}")
        text_field, id_field = self.options.text_field, self.options.id_field
        columns = {"id": "string"}
        for key, kind in kinds.items():
            name = "text" if key == text_field else key
            if key == id_field or name == "id" or (text_field and key == "text" and text_field != "text"):
                continue  # the id is ours to fill; a second `text` would be overwritten by the text field
            core = DOCUMENT_SCHEMA.get_field_index(name)
            if core >= 0 and pa.types.is_string(DOCUMENT_SCHEMA.field(core).type):
                kind = "string"  # url, title, language, ...: text whatever the record holds
            columns[name] = kind or "string"
        for name in DOCUMENT_SCHEMA.names:  # the document schema every connector produces (null when absent)
            if name != "text":  # ... but no text column when the records have none (html rows, chat rows)
                columns.setdefault(name, "string")
        self.planned = {"columns": columns, "fields": sorted(kinds)}
        return list(columns)

    def _sample(self, path: str, limit: int) -> Iterator[dict]:
        with open_input(path, "rb") as fh:
            for _, line in bounded_lines(fh, self.options.max_line_bytes, Counter()):
                if limit <= 0:
                    return
                try:
                    rec = json.loads(line) if line is not None else None
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(rec, dict):
                    limit -= 1
                    yield rec

    def columns(self, path: str) -> list[str]:
        return self.plan([path])

    # -- reading ---------------------------------------------------------------------
    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        if getattr(self, "planned", None) is None:
            self.plan([path])
        records, lines = [], []
        text_field = self.options.text_field
        with open_input(path, "rb") as fh:
            for lineno, line in bounded_lines(fh, self.options.max_line_bytes, self.skipped):
                if line is None or not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    self.skipped["bad_json"] += 1
                    continue
                if not isinstance(rec, dict):
                    self.skipped["not_an_object"] += 1
                    continue
                if b"\\ud" in line or b"\\uD" in line:  # an escaped surrogate: maybe a lone one
                    rec, fixed = replace_lone_surrogates(rec)
                    if fixed:
                        self.skipped["invalid_unicode"] += 1
                if text_field and not isinstance(rec.get(text_field), str) and "text" in self.planned["columns"]:
                    self.skipped["missing_text"] += 1
                    continue
                records.append(rec)
                lines.append(lineno)
                if len(records) >= batch_size:
                    yield self._to_table(records, lines, path)
                    records, lines = [], []
        if records:
            yield self._to_table(records, lines, path)

    def _to_table(self, records: list[dict], lines: list[int], path: str) -> pa.Table:
        """The batch as a table; if it will not convert, record by record, counting the ones that fail."""
        try:
            return self._convert_batch(records, lines, path)
        except (pa.ArrowException, ValueError, TypeError, OverflowError, UnicodeError):
            pass
        good = []
        for rec, lineno in zip(records, lines):
            try:
                good.append(self._convert_batch([rec], [lineno], path))
            except (pa.ArrowException, ValueError, TypeError, OverflowError, UnicodeError):
                self.skipped["bad_value"] += 1
        return pa.concat_tables(good) if good else self._convert_batch([], [], path)

    def _convert_batch(self, records: list[dict], lines: list[int], path: str) -> pa.Table:
        columns: dict[str, str] = self.planned["columns"]
        known = set(self.planned["fields"])
        opts = self.options
        source = _source_name(path, opts)
        values: dict[str, list] = {name: [] for name in columns}
        problems: Counter[str] = Counter()
        for rec, lineno in zip(records, lines):
            rid = rec.get(opts.id_field) if opts.id_field else None
            values["id"].append(str(rid) if rid is not None else make_doc_id(source, f"#{lineno}"))
            for key in rec.keys() - known:
                problems[f"unknown_field:{key}"] += 1
            for name, kind in columns.items():
                if name == "id":
                    continue
                key = opts.text_field if name == "text" and opts.text_field else name
                value = rec.get(key)
                if name == "source" and value is None:
                    value = source
                if name in _CORE_PARSERS:
                    values[name].append(_CORE_PARSERS[name](value))
                    continue
                try:
                    values[name].append(_convert(value, kind))
                except ValueError:
                    problems[f"type_mismatch:{name}"] += 1
                    values[name].append(None)
        self.skipped.update(problems)
        arrays = {}
        for name, kind in columns.items():
            core = DOCUMENT_SCHEMA.get_field_index(name)
            target = DOCUMENT_SCHEMA.field(core).type if core >= 0 else _KIND_TYPES[kind]
            if name == "language_score":
                target = pa.float64()
            arrays[name] = pa.array(values[name], type=target)
        return conform(pa.table(arrays))


class ParquetReader(Reader):
    """Parquet files: every column passes through; the user's id column stays the id."""

    format = "parquet"
    Options = FileOptions

    def columns(self, path: str) -> list[str]:
        with open_input(path, "rb") as fh:
            names = pq.ParquetFile(fh).schema_arrow.names
        tf, idf = self.options.text_field, self.options.id_field
        names = [n for n in names if not (tf and tf != "text" and n == "text") and not (idf and idf != "id" and n == "id")]
        names = ["text" if tf and n == tf else n for n in names]
        names = [n for n in names if n != idf]
        return ["id"] + [n for n in names if n != "id"] + ([] if "source" in names else ["source"])

    def read(self, path: str, batch_size: int) -> Iterator[pa.Table]:
        source = _source_name(path, self.options)
        tf, idf = self.options.text_field, self.options.id_field
        row = 0
        with open_input(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            for batch in self._batches(pf, path, batch_size):
                table = repair_invalid_utf8(pa.Table.from_batches([batch]), self.skipped)
                n = table.num_rows
                if idf and idf in table.column_names:
                    ids = pa.array([None if v is None else str(v) for v in table.column(idf).to_pylist()], pa.string())
                    if ids.null_count:
                        fill = [make_doc_id(source, f"#{row + i}") for i in range(n)]
                        ids = pa.array([v if v is not None else fill[i] for i, v in enumerate(ids.to_pylist())])
                    table = table.drop_columns([idf])
                else:
                    ids = pa.array([make_doc_id(source, f"#{row + i}") for i in range(n)], type=pa.string())
                if "id" in table.column_names:
                    table = table.drop_columns(["id"])
                if tf and tf != "text" and tf in table.column_names:
                    if "text" in table.column_names:
                        table = table.drop_columns(["text"])
                    table = table.rename_columns(["text" if c == tf else c for c in table.column_names])
                table = table.add_column(0, "id", ids)
                if "source" not in table.column_names:
                    table = table.append_column("source", pa.array([source] * n, type=pa.string()))
                row += n
                yield conform(table)

    def _batches(self, pf: pq.ParquetFile, path: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Every row group that reads; one that does not is counted (its rows as bad_row_group)
        and named in one line, and reading goes on with the next."""
        failed = []
        for i in range(pf.metadata.num_row_groups):
            try:
                batches = list(pf.iter_batches(batch_size=batch_size, row_groups=[i]))
            except (OSError, pa.ArrowException) as exc:
                self.skipped["bad_row_group"] += pf.metadata.row_group(i).num_rows
                failed.append(f"row group {i}: {' '.join(str(exc).split())}")
                continue
            yield from batches
        if failed:
            self.file_errors.append(f"{path}: {len(failed)} of {pf.metadata.num_row_groups} row groups unreadable "
                                    f"({failed[0]})")


# -- bad input, row by row -------------------------------------------------------------

def bounded_lines(fh, max_bytes: int, skipped: Counter) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) for every line of a binary stream, never holding more than
    ``max_bytes`` of one line: a longer one is read past in 1 MiB steps, counted as
    ``too_long_line`` and given as None (its number still counts, so ids stay stable)."""
    lineno = 0
    while True:
        line = fh.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            skipped["too_long_line"] += 1
            while True:
                rest = fh.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            line = None
        yield lineno, line
        lineno += 1


_SURROGATE = None


def replace_lone_surrogates(value):
    """``value`` with every lone UTF-16 surrogate (``"\\ud83d"`` alone in JSON) replaced by
    U+FFFD, as a UTF-8 decoder replaces a bad byte; returns (value, whether anything changed)."""
    global _SURROGATE
    if _SURROGATE is None:
        import re

        _SURROGATE = re.compile("[\ud800-\udfff]")
    if isinstance(value, str):
        fixed = _SURROGATE.sub("\ufffd", value)
        return fixed, fixed != value
    if isinstance(value, dict):
        changed = False
        out = {}
        for k, v in value.items():
            k2, c1 = replace_lone_surrogates(k)
            v2, c2 = replace_lone_surrogates(v)
            out[k2] = v2
            changed = changed or c1 or c2
        return out, changed
    if isinstance(value, list):
        pairs = [replace_lone_surrogates(v) for v in value]
        return [v for v, _ in pairs], any(c for _, c in pairs)
    return value, False


def repair_invalid_utf8(table: pa.Table, skipped: Counter) -> pa.Table:
    """String columns holding bytes that are not UTF-8 (Parquet does not check) get U+FFFD for the
    bad bytes, counted per column as ``invalid_unicode:<column>``; they would break every query."""
    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(i)
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        raw = column.cast(pa.large_binary() if pa.types.is_large_string(field.type) else pa.binary()).to_pylist()
        bad = 0
        values = []
        for v in raw:
            if v is None:
                values.append(None)
                continue
            try:
                values.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                bad += 1
                values.append(v.decode("utf-8", "replace"))
        skipped[f"invalid_unicode:{field.name}"] += bad
        table = table.set_column(i, field, pa.array(values, type=field.type))
    return table
