"""Row export of post-training blend components: normalized rows as Parquet, for the trainer.

Chat, preference and verifiable rows are not token streams: the trainer renders them with
the chat template of the model it fine-tunes, which is not known when a blend is frozen.
So a component of those shapes is exported as its rows in canonical form (one JSON text per
row, see dataengine/core/row_shapes.py) with the component's reasoning toggle applied:

    WAREHOUSE/exports/rows/<tokenizer hash>/<content hash>[-reasoning-<on|off>]/rows.parquet

with ``done.json`` (rows kept, rows that do not fit the shape with examples of why, and the
token count of the rows' text under the version's tokenizer, without any chat template: what
``--target-tokens`` budgets and effective epochs are computed from). Like token exports,
the files are content-addressed: re-exporting is instant and unchanged components are shared.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.core.row_shapes import (RowShapeError, canonical_json, normalize_row, row_texts, selected_columns,
                                        with_reasoning)
from dataengine.warehouse.components import component_columns, iter_component

ROW_EXPORT_SCHEMA = pa.schema([("id", pa.string()), ("row", pa.string())])
INVALID_SAMPLES = 5


def rows_dir(warehouse, tokenizer_hash: str, content_hash: str, reasoning: str | None) -> Path:
    suffix = f"-reasoning-{reasoning}" if reasoning else ""
    return Path(warehouse.config.root) / "exports" / "rows" / tokenizer_hash / f"{content_hash}{suffix}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(16 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_rows_component(blends, comp: dict, snapshot: int, tok) -> dict:
    """Normalized rows of one component (cached by tokenizer hash, content hash, reasoning)."""
    wh = blends.wh
    shape, reasoning = comp["shape"], comp.get("reasoning")
    folder = rows_dir(wh, tok.hash, comp["content_hash"], reasoning)
    done = folder / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    with wh.connect(read_only=True, snapshot=snapshot) as con:
        columns = selected_columns(shape, component_columns(con, comp["sql"]))
    target, tmp = folder / "rows.parquet", folder / ".rows.parquet.tmp"
    kept = invalid = tokens = 0
    samples: list[str] = []
    with pq.ParquetWriter(tmp, ROW_EXPORT_SCHEMA) as writer:
        for batch in iter_component(wh, comp["sql"], snapshot, batch_size=2_000, columns=columns):
            ids, rows, texts = [], [], []
            for raw in batch.to_pylist():
                try:
                    row = with_reasoning(shape, normalize_row(shape, raw), reasoning)
                except RowShapeError as exc:
                    invalid += 1
                    if len(samples) < INVALID_SAMPLES:
                        samples.append(f"{raw.get('id')}: {exc}")
                    continue
                ids.append(str(raw["id"]))
                rows.append(canonical_json(row))
                texts.append("\n".join(row_texts(shape, row)))
            if ids:
                writer.write_table(pa.table({"id": ids, "row": rows}, schema=ROW_EXPORT_SCHEMA))
                tokens += sum(len(ids_) for ids_ in tok.encode_batch(texts)) + len(texts)  # + one EOS each
                kept += len(ids)
    os.replace(tmp, target)
    record = {
        "rows_path": str(target),
        "documents": kept,
        "invalid": invalid,
        "invalid_samples": samples,
        "tokens": tokens,
        "rows_sha256": _sha256(target),
        "shape": shape,
        "reasoning": reasoning,
    }
    tmp_done = done.with_suffix(".tmp")
    tmp_done.write_text(json.dumps(record))
    os.replace(tmp_done, done)
    return record


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The normalized rows of an exported component (each with its ``id``), in id order."""
    table = pq.read_table(path)
    return [{**json.loads(r), "id": i} for i, r in zip(table.column("id").to_pylist(), table.column("row").to_pylist())]
