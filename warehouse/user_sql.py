"""SQL that comes from a user: reads on a locked, read-only lake; writes on a separate, recorded path.

``dataengine sql`` (and the coming web UI) run :func:`user_query`: a fresh DuckDB instance
with the lake attached READ_ONLY, the statements checked by
:mod:`dataengine.core.sql_guard` (reads only, no function that runs SQL from text or
changes files), and the configuration locked; ``sandbox`` also confines file access to
the warehouse's own catalog and data. A deliberate change goes through
:func:`user_write` instead: the same checks for writing statements, one transaction that
becomes one snapshot with the user's commit message, and a row in
``dataengine.sql_writes`` saying who ran what.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import tempfile

import duckdb
import pyarrow as pa

from dataengine.core.duck import catalog_extension, load_extension
from dataengine.core.errors import WarehouseError, one_line
from dataengine.core.sql_guard import LOCKED_CONFIG, check_sql, lock_down
from dataengine.core.schema import META_SCHEMA
from dataengine.warehouse.commits import LAKE, run_transaction
from dataengine.warehouse.time_travel import rewrite_time_travel

SQL_WRITES = f"{META_SCHEMA}.sql_writes"


def _locked_connection(wh, read_only: bool, sandbox: bool, scratch: str) -> duckdb.DuckDBPyConnection:
    """A new DuckDB instance: lake attached (read-only unless a write), then locked."""
    cfg = wh.config
    con = duckdb.connect(config=dict(LOCKED_CONFIG))
    try:
        load_extension(con, "ducklake")
        ext = catalog_extension(cfg.catalog)
        if ext:
            load_extension(con, ext)
        con.execute(f"SET temp_directory = '{scratch}'")
        opts = [f"DATA_PATH '{cfg.data_path}'"] + (["READ_ONLY"] if read_only else [])
        con.execute(f"ATTACH 'ducklake:{cfg.catalog}' AS {LAKE} ({', '.join(opts)})")
        con.execute(f"USE {LAKE}")
        lock_down(con, allowed_directories=_allowed_directories(cfg, scratch), allowed_paths=_catalog_files(cfg),
                  sandbox=sandbox)
    except duckdb.Error as exc:
        con.close()
        raise WarehouseError(f"cannot open warehouse {cfg.root}: {one_line(exc)}") from None
    return con


def _allowed_directories(cfg, scratch: str) -> list[str]:
    dirs = [scratch.rstrip("/") + "/"]
    if "://" not in cfg.data_path:
        dirs.append(cfg.data_path.rstrip("/") + "/")
    return dirs


def _catalog_files(cfg) -> list[str]:
    path = cfg.catalog[len("sqlite:"):] if cfg.catalog.startswith("sqlite:") else cfg.catalog
    if path.startswith("postgres:"):
        return []
    return [path, path + "-journal", path + "-wal", path + ".wal"]


def user_query(wh, query: str, sandbox: bool = False) -> pa.Table:
    """Run a user's read-only SQL (``table@N`` = table at snapshot N); returns the last statement's rows."""
    query = rewrite_time_travel(query)
    check_sql(query, write=False)
    scratch = tempfile.mkdtemp(prefix="dataengine-sql-")
    try:
        con = _locked_connection(wh, read_only=True, sandbox=sandbox, scratch=scratch)
        try:
            return con.execute(query).to_arrow_table()
        except duckdb.Error as exc:
            raise WarehouseError(one_line(exc)) from None
        finally:
            con.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def user_write(wh, query: str, message: str, sandbox: bool = False, author: str | None = None) -> tuple[int, pa.Table]:
    """Run a user's writing SQL as ONE snapshot with ``message``, recorded in ``dataengine.sql_writes``.

    Returns (the new snapshot id, the last statement's result, e.g. the count of inserted rows).
    """
    if not message or not message.strip():
        raise WarehouseError("a write needs a commit message (-m MESSAGE): it is kept with the snapshot")
    query = rewrite_time_travel(query)
    check_sql(query, write=True)
    author = author or _user()
    wh.ensure_commit_lock()
    scratch = tempfile.mkdtemp(prefix="dataengine-sql-")
    result: dict = {}

    def work(con):
        try:
            out = con.execute(query)
            result["table"] = out.to_arrow_table() if out.description else pa.table({})
        except duckdb.Error as exc:
            raise WarehouseError(f"the write failed, nothing was committed: {one_line(exc)}") from None
        record = {"query": query, "message": message, "author": author,
                  "executed_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        values = ", ".join(_literal(record[k]) for k in ("query", "message", "author"))
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {LAKE}.{SQL_WRITES} "
            "(query VARCHAR, message VARCHAR, author VARCHAR, executed_at TIMESTAMPTZ)"
        )
        con.execute(f"INSERT INTO {LAKE}.{SQL_WRITES} VALUES ({values}, {_literal(record['executed_at'])}::TIMESTAMPTZ)")
        con.execute(f"CALL {LAKE}.set_commit_message({_literal(author)}, {_literal(message)})")

    try:
        _, snapshot = run_transaction(
            lambda: _locked_connection(wh, read_only=False, sandbox=sandbox, scratch=scratch), work, "sql --write"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return snapshot, result.get("table", pa.table({}))


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
