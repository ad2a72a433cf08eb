"""Opening a warehouse and querying it: the first thing every user does.

    import dataengine as de
    wh = de.open_warehouse("./warehouse", create=True)
    wh.sql("SELECT language, count(*) FROM raw@3 GROUP BY 1")   # Arrow, with time travel
    wh.relation("SELECT * FROM raw").filter("text_words > 50")  # a lazy DuckDB relation
    de.query(wh, user_sql, sandbox=True)       # SQL typed by a user: read-only and locked down
    de.write_sql(wh, "DELETE FROM raw WHERE ...", message="drop spam")  # a deliberate, recorded write
"""

from __future__ import annotations

import os
from pathlib import Path

from dataengine.core.errors import DataEngineError
from dataengine.warehouse import Warehouse, WarehouseConfig, init_warehouse

DEFAULT_WAREHOUSE = "./warehouse"
CATALOGS = ("sqlite", "duckdb", "postgres:<dsn>")


def warehouse_path(path: str | os.PathLike | None = None) -> str:
    """The warehouse a call means: ``path``, else ``$DATAENGINE_WAREHOUSE``, else ``./warehouse``."""
    return str(path or os.environ.get("DATAENGINE_WAREHOUSE") or DEFAULT_WAREHOUSE)


def create_warehouse(path: str | os.PathLike | None = None, catalog: str = "sqlite",
                     data_path: str | None = None) -> WarehouseConfig:
    """Create a warehouse folder (idempotent). ``catalog``: sqlite (default), duckdb or postgres:<dsn>."""
    return init_warehouse(warehouse_path(path), catalog=catalog, data_path=data_path)


def open_warehouse(path: str | os.PathLike | Warehouse | None = None, create: bool = False, **create_options) -> Warehouse:
    """The warehouse at ``path`` (see :func:`warehouse_path`); ``create=True`` makes it first if missing."""
    if isinstance(path, Warehouse):
        return path
    root = warehouse_path(path)
    if create and not (Path(root) / "dataengine.yaml").exists():
        create_warehouse(root, **create_options)
    return Warehouse(root)


def as_warehouse(wh: Warehouse | str | os.PathLike | None) -> Warehouse:
    """Accept a Warehouse or a path wherever the API takes a warehouse."""
    if wh is None:
        raise DataEngineError("no warehouse given: pass dataengine.open_warehouse(PATH) or a path")
    return open_warehouse(wh)


def query(wh, sql: str, sandbox: bool = False):
    """Run SQL a user typed, as Arrow: reads only (SELECT, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE), the
    lake read-only and DuckDB's configuration locked; ``sandbox`` also allows no file outside the
    warehouse. See :mod:`dataengine.warehouse.user_sql`."""
    return as_warehouse(wh).query(sql, sandbox=sandbox)


def write_sql(wh, sql: str, message: str, sandbox: bool = False):
    """Run a user's deliberate change (INSERT, UPDATE, DELETE, CREATE, ALTER, DROP) as ONE snapshot
    with ``message``, recorded in ``dataengine.sql_writes``; returns (snapshot id, result)."""
    return as_warehouse(wh).write_sql(sql, message, sandbox=sandbox)
