"""Versioned models in the warehouse: files under ``models/`` plus a catalog table.

Layout::

    <root>/models/<name>/v<N>/model.bin      the model (fastText .bin, or a folder for HF)
    <root>/models/<name>/v<N>/metrics.json   held-out metrics and the training recipe

and one row per version in ``dataengine.models`` (name, version, path relative to the
warehouse root, kind, labels, metrics JSON, created_at, training SQL). A version is never
overwritten: training again with the same name adds ``v<N+1>``.

References used by stages and the CLI: ``name`` (latest version), ``name@N``, or a file path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from dataengine.core.errors import WarehouseError
from dataengine.core.schema import META_SCHEMA
from dataengine.core.models import MODEL_REFERENCE, ModelRecord, validate_model_name

if TYPE_CHECKING:  # duck-typed: lake.py imports this module to give Warehouse its model methods
    from dataengine.warehouse.lake import Warehouse

MODELS_TABLE = f"{META_SCHEMA}.models"

MODELS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("version", pa.int32()),
        ("path", pa.string()),
        ("kind", pa.string()),
        ("labels", pa.string()),
        ("metrics", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("training_sql", pa.string()),
    ]
)


def models_root(wh: "Warehouse") -> Path:
    return Path(wh.config.root) / "models"


def _rows(wh: "Warehouse", where: str = "", params=None) -> list[dict]:
    if not wh.table_exists(MODELS_TABLE):
        return []
    return wh.sql(f"SELECT * FROM {MODELS_TABLE} {where} ORDER BY name, version", params).to_pylist()


def _record(wh: "Warehouse", row: dict) -> ModelRecord:
    path = row["path"] if os.path.isabs(row["path"]) else str(Path(wh.config.root) / row["path"])
    return ModelRecord(row["name"], row["version"], path, row["kind"], tuple(json.loads(row["labels"] or "[]")),
                       json.loads(row["metrics"] or "{}"))


def list_models(wh: "Warehouse") -> list[dict]:
    return _rows(wh)


def next_version(wh: "Warehouse", name: str) -> int:
    rows = _rows(wh, "WHERE name = ?", [name])
    used = {r["version"] for r in rows}
    folder = models_root(wh) / name
    if folder.exists():  # a crashed registration may have left files: never reuse its number
        used |= {int(p.name[1:]) for p in folder.iterdir() if re.match(r"^v\d+$", p.name)}
    return max(used, default=0) + 1


def register_model(
    wh: "Warehouse",
    name: str,
    source: str | os.PathLike,
    kind: str,
    labels: list[str],
    metrics: dict,
    training_sql: str = "",
) -> ModelRecord:
    """Copy a trained model into ``models/<name>/v<N>/`` and record it. Returns the new version."""
    validate_model_name(name)
    version = next_version(wh, name)
    folder = models_root(wh) / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=False)
    source = Path(source)
    target = folder / ("model.bin" if source.is_file() else "model")
    if source.is_file():
        shutil.copyfile(source, target)
    else:
        shutil.copytree(source, target)
    (folder / "metrics.json").write_text(json.dumps({"name": name, "version": version, **metrics}, indent=2))
    rel = str(target.relative_to(Path(wh.config.root)))
    row = {
        "name": name,
        "version": version,
        "path": rel,
        "kind": kind,
        "labels": json.dumps(list(labels)),
        "metrics": json.dumps(metrics),
        "created_at": dt.datetime.now(dt.timezone.utc),
        "training_sql": training_sql,
    }
    wh.write_table(MODELS_TABLE, pa.Table.from_pylist([row], schema=MODELS_SCHEMA))
    return _record(wh, row)


def resolve_model(wh: "Warehouse", ref: str) -> ModelRecord:
    """``name`` (latest) or ``name@N`` -> its record; a clear error when it is not there."""
    m = MODEL_REFERENCE.match(ref)
    if not m:
        raise WarehouseError(f"bad model reference {ref!r}: use NAME, NAME@VERSION or a file path")
    name, version = m.group(1), m.group(2)
    rows = _rows(wh, "WHERE name = ?", [name])
    if not rows:
        known = sorted({r["name"] for r in _rows(wh)})
        raise WarehouseError(
            f"no model named {name!r} in the warehouse (known: {', '.join(known) or 'none'}); "
            "train one with `dataengine classifier train`"
        )
    if version is not None:
        rows = [r for r in rows if r["version"] == int(version)]
        if not rows:
            raise WarehouseError(f"model {name!r} has no version {version}")
    record = _record(wh, rows[-1])
    if not os.path.exists(record.path):
        raise WarehouseError(f"model {record.ref}: file {record.path} is missing")
    return record
