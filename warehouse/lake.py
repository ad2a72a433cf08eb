"""The DuckLake warehouse: one folder (or a catalog URL) holding versioned tables.

Layout of a warehouse folder::

    <root>/dataengine.yaml   catalog URL and data path (written by `dataengine init`)
    <root>/catalog.sqlite    the DuckLake catalog (default; SQLite lets readers query while a run writes)
    <root>/data/             Parquet files DuckLake manages, and staged run output under data/_runs/

Every change is one DuckLake snapshot. Executors never write the catalog while they work:
they stage Parquet files and call :meth:`Warehouse.commit_files` once, which registers all
files in ONE transaction, so a crash never leaves a half-written table version.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import pyarrow as pa
import yaml

from dataengine.core.duck import catalog_extension, extension_file, load_extension, new_connection
from dataengine.core.errors import WarehouseError, one_line
from dataengine.core.schema import META_SCHEMA
from dataengine.warehouse.commits import (
    check_run_not_committed,
    check_unchanged,
    commit_scratch,
    create_commit_lock,
    is_conflict,
    run_transaction,
    storage_problem,
)
from dataengine.warehouse.models import register_model, resolve_model
from dataengine.warehouse.time_travel import rewrite_time_travel

LAKE = "lake"  # the alias the lake is attached under in every connection
CONFIG_FILE = "dataengine.yaml"
_EXTENSIONS = ("ducklake", "sqlite_scanner", "postgres_scanner")


@dataclass(frozen=True)
class WarehouseConfig:
    """Everything a worker process needs to open the same warehouse (picklable)."""

    root: str
    catalog: str  # DuckLake catalog spec after 'ducklake:' (e.g. 'sqlite:/abs/catalog.sqlite')
    data_path: str

    @property
    def runs_path(self) -> str:
        return os.path.join(self.data_path, "_runs")


def init_warehouse(root: str | os.PathLike, catalog: str = "sqlite", data_path: str | None = None) -> WarehouseConfig:
    """Create a warehouse folder (idempotent). ``catalog``: sqlite | duckdb | postgres:<dsn>."""
    root_path = Path(root).absolute()
    root_path.mkdir(parents=True, exist_ok=True)
    cfg_file = root_path / CONFIG_FILE
    if cfg_file.exists():
        return read_config(root_path)
    if catalog == "sqlite":
        spec = f"sqlite:{root_path / 'catalog.sqlite'}"
    elif catalog == "duckdb":
        spec = str(root_path / "catalog.ducklake")
    elif catalog.startswith("postgres:"):
        spec = catalog
    else:
        raise WarehouseError(f"unknown catalog {catalog!r}: use sqlite, duckdb or postgres:<dsn>")
    data = data_path or str(root_path / "data")
    if "://" not in data:
        Path(data).mkdir(parents=True, exist_ok=True)
        data = str(Path(data).absolute())
    data = data.rstrip("/") + "/"
    cfg_file.write_text(yaml.safe_dump({"catalog": spec, "data_path": data}))
    config = WarehouseConfig(str(root_path), spec, data)
    wh = Warehouse(config)
    with wh.connect() as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{META_SCHEMA}")
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {LAKE}.{META_SCHEMA}.runs (
                run_id VARCHAR, pipeline VARCHAR, output_table VARCHAR, mode VARCHAR,
                executor VARCHAR, source VARCHAR, rows_out BIGINT,
                started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, config VARCHAR, stats VARCHAR)"""
        )
        create_commit_lock(con)
    _LOCK_READY.add(_instance_key(config, False, None))
    return config


def read_config(root: str | os.PathLike) -> WarehouseConfig:
    root_path = Path(root).absolute()
    cfg_file = root_path / CONFIG_FILE
    if not cfg_file.exists():
        raise WarehouseError(
            f"no warehouse at {root_path}: run `dataengine init --warehouse {root}` first"
        )
    try:
        raw = yaml.safe_load(cfg_file.read_text())
        return WarehouseConfig(str(root_path), raw["catalog"], raw["data_path"])
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise WarehouseError(f"{cfg_file} is not a valid warehouse config: {exc}") from None


_is_conflict = is_conflict

# Warehouses whose commit-lock table is known to exist (made by init, or by the first commit
# of this process on a warehouse created before the table was introduced).
_LOCK_READY: set = set()


def _shareable(catalog: str) -> bool:
    return catalog.startswith(("sqlite:", "postgres:")) and not os.environ.get("DATAENGINE_NO_SHARED_DUCKDB")


def _instance_key(config: WarehouseConfig, read_only: bool, snapshot: int | None) -> tuple:
    """Which shared instance serves a connection. The SQLite file's inode is part of the
    key, so a warehouse deleted and re-created at the same path gets a fresh instance."""
    ident = None
    if config.catalog.startswith("sqlite:"):
        try:
            st = os.stat(config.catalog[len("sqlite:"):])
            ident = (st.st_dev, st.st_ino)
        except OSError:
            pass
    return (config.catalog, config.data_path, ident, read_only, snapshot)


class _SharedInstances:
    """DuckDB instances with the lake attached, kept per process (a small LRU).

    Connections handed out are cursors; an evicted instance is only dropped, never
    closed, so cursors still in use keep working until they are closed. After a fork
    the child starts with an empty cache (a DuckDB instance does not survive fork); the
    parent's instances are kept referenced there, never destroyed: their destructors
    would join threads that only exist in the parent.
    """

    MAX = 4  # each instance keeps its own thread pool

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._dbs: OrderedDict[tuple, duckdb.DuckDBPyConnection] = OrderedDict()
        self._inherited: list = []

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._inherited.extend(self._dbs.values())
        self._dbs, self._pid = OrderedDict(), os.getpid()

    def cursor(self, key: tuple, open_db) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
        """(instance, a new cursor on it); opens the instance with ``open_db`` if needed."""
        with self._lock:
            if self._pid != os.getpid():  # forked without the at-fork hook (should not happen)
                self._inherited.extend(self._dbs.values())
                self._dbs, self._pid = OrderedDict(), os.getpid()
            db = self._dbs.get(key)
            if db is None:
                db = open_db()
                self._dbs[key] = db
                while len(self._dbs) > self.MAX:
                    self._dbs.popitem(last=False)
            else:
                self._dbs.move_to_end(key)
            return db, db.cursor()

    def drop(self, key: tuple, db=None) -> None:
        with self._lock:
            if key in self._dbs and (db is None or self._dbs[key] is db):
                del self._dbs[key]

    def clear(self) -> None:
        with self._lock:
            self._dbs.clear()

    def __len__(self) -> int:
        return len(self._dbs)


_SHARED = _SharedInstances()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED.after_fork_in_child)


def release_connections() -> None:
    """Forget this process's shared DuckDB instances (open cursors keep theirs alive)."""
    _SHARED.clear()


class Warehouse:
    """A DuckLake lake. Cheap to construct; each call takes a short-lived connection
    (a cursor on this process's shared DuckDB instance, see :meth:`connect`)."""

    def __init__(self, config: WarehouseConfig | str | os.PathLike):
        self.config = config if isinstance(config, WarehouseConfig) else read_config(config)

    # -- connections -------------------------------------------------------------
    def connect(
        self, read_only: bool = False, retries: int = 20, snapshot: int | None = None
    ) -> duckdb.DuckDBPyConnection:
        """Connection with the lake attached as ``lake`` and selected (USE lake).

        ``snapshot`` pins every table of the lake at that snapshot (read-only), so any
        query (a blend component, say) sees exactly the data of that version.

        For SQLite and PostgreSQL catalogs the connection is a cursor on a DuckDB instance
        this process keeps per (warehouse, mode, snapshot): loading the signed DuckLake and
        SQLite extensions costs ~0.15 s per instance, paid once instead of on every call.
        Each cursor has its own transaction, and DuckLake reads the catalog's latest
        snapshot at the start of every transaction, so a cursor sees commits made by
        other processes. Close it (``with wh.connect() as con``) to end its transaction.
        A DuckDB-file catalog is opened fresh every time: an attached DuckDB file is
        locked for as long as it stays attached.
        """
        pinned = read_only or snapshot is not None
        if not _shareable(self.config.catalog):
            return self._open(pinned, snapshot, retries)
        key = _instance_key(self.config, pinned, snapshot)
        for attempt in range(2):
            db, con = _SHARED.cursor(key, lambda: self._open(pinned, snapshot, retries, shared=True))
            try:
                con.execute(f"USE {LAKE}")
                return con
            except duckdb.Error:
                _SHARED.drop(key, db)  # an invalidated instance: open a fresh one once
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _open(
        self, pinned: bool, snapshot: int | None, retries: int, shared: bool = False
    ) -> duckdb.DuckDBPyConnection:
        """A new DuckDB instance with the extensions loaded and the lake attached and in use."""
        con = new_connection()
        if shared:
            # A kept instance must not keep file data cached between calls (memory a
            # short-lived connection used to give back when it closed).
            con.execute("SET enable_external_file_cache = false")
        load_extension(con, "ducklake")
        ext = catalog_extension(self.config.catalog)
        if ext:
            load_extension(con, ext)
        opts = [f"DATA_PATH '{self.config.data_path}'"]
        if pinned:
            opts.append("READ_ONLY")
        if snapshot is not None:
            opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        stmt = f"ATTACH 'ducklake:{self.config.catalog}' AS {LAKE} ({', '.join(opts)})"
        for attempt in range(retries):
            try:
                con.execute(stmt)
                break
            except duckdb.Error as exc:
                if attempt + 1 < retries and _is_conflict(exc):
                    time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
                    continue
                con.close()
                raise WarehouseError(f"cannot open warehouse {self.config.root}: {one_line(exc)}") from None
        con.execute(f"USE {LAKE}")
        return con

    # -- queries -----------------------------------------------------------------
    def sql(self, query: str, params: Sequence | None = None, snapshot: int | None = None) -> pa.Table:
        """Run SQL against the lake and return Arrow; ``table@N`` means table at snapshot N.

        ``snapshot`` runs the whole query against the lake as it was at that snapshot.
        """
        with self.connect(read_only=True, snapshot=snapshot) as con:
            try:
                return con.execute(rewrite_time_travel(query), params or []).to_arrow_table()
            except duckdb.Error as exc:
                raise WarehouseError(one_line(exc)) from None

    def relation(self, query: str, snapshot: int | None = None) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over the lake (``table@N`` time travel allowed).

        Compose it further (``.filter()``, ``.aggregate()``, ``.join()``) and materialise
        with ``.arrow()``, ``.df()`` or ``.fetchall()``. It keeps its own read-only
        connection (one read transaction) alive for as long as the relation lives.
        """
        con = self.connect(read_only=True, snapshot=snapshot)
        try:
            return con.sql(rewrite_time_travel(query))
        except duckdb.Error as exc:
            con.close()
            raise WarehouseError(one_line(exc)) from None

    def query(self, query: str, sandbox: bool = False) -> pa.Table:
        """Run a USER's read-only SQL: checked, lake read-only, configuration locked (see
        :mod:`dataengine.warehouse.user_sql`); ``sandbox`` confines file access to the warehouse."""
        from dataengine.warehouse.user_sql import user_query

        return user_query(self, query, sandbox=sandbox)

    def write_sql(self, query: str, message: str, sandbox: bool = False) -> tuple[int, pa.Table]:
        """Run a USER's deliberate write as one snapshot with ``message``; returns (snapshot, result)."""
        from dataengine.warehouse.user_sql import user_write

        return user_write(self, query, message, sandbox=sandbox)

    def execute(self, query: str, params: Sequence | None = None) -> None:
        """Run a writing statement in its own transaction (becomes one snapshot)."""
        with self.connect() as con:
            try:
                con.execute(rewrite_time_travel(query), params or [])
            except duckdb.Error as exc:
                raise WarehouseError(one_line(exc)) from None

    def write_table(self, table: str, data: pa.Table, mode: str = "append") -> int:
        """Write a small Arrow table (through DuckDB, one snapshot). Returns the snapshot id."""

        def work(con):
            con.register("_incoming", data)
            if not self.has_table(con, table):
                con.execute(f"CREATE TABLE {qualify(table)} AS SELECT * FROM _incoming")
            else:
                self._evolve_schema(con, table, data.schema)
                if mode == "overwrite":
                    con.execute(f"DELETE FROM {qualify(table)}")
                con.execute(f"INSERT INTO {qualify(table)} BY NAME SELECT * FROM _incoming")

        return self.transaction(work, f"write to {table!r}")[1]

    def transaction(self, work, what: str, retries: int = 30):
        """Run ``work(con)`` in one catalog transaction, retried after a concurrent writer's
        commit; returns (its result, the new snapshot id). See :mod:`dataengine.warehouse.commits`."""
        self.ensure_commit_lock()
        return run_transaction(self.connect, work, what, retries, diagnose=self.storage_problem)

    def storage_problem(self) -> str | None:
        """A full disk under the catalog or the data folder, in words (None if there is room)."""
        catalog = self.config.catalog.removeprefix("sqlite:")
        return storage_problem([catalog if not catalog.startswith("postgres:") else "", self.config.data_path])

    def ensure_commit_lock(self) -> None:
        """Create ``dataengine.commit_lock`` in a warehouse made before it existed (once per process)."""
        key = _instance_key(self.config, False, None)
        if key in _LOCK_READY:
            return
        with self.connect() as con:
            try:
                create_commit_lock(con)
            except duckdb.Error as exc:
                if not is_conflict(exc):  # a concurrent first commit made it: fine
                    raise WarehouseError(f"cannot prepare {self.config.root} for commits: {one_line(exc)}") from None
        _LOCK_READY.add(key)

    # -- metadata ----------------------------------------------------------------
    def current_snapshot(self) -> int:
        with self.connect(read_only=True) as con:
            return self.snapshot_of(con)

    def tables(self, include_meta: bool = False) -> list[dict]:
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY 1, 2",
                [LAKE],
            ).fetchall()
            out = []
            for schema, name in rows:
                if schema == META_SCHEMA and not include_meta:
                    continue
                full = name if schema == "main" else f"{schema}.{name}"
                count = con.execute(f"SELECT count(*) FROM {qualify(full)}").fetchone()[0]
                cols = con.execute(
                    "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
                    [LAKE, schema, name],
                ).fetchone()[0]
                out.append({"table": full, "rows": count, "columns": cols})
            return out

    def table_exists(self, table: str) -> bool:
        with self.connect(read_only=True) as con:
            return self.has_table(con, table)

    def schema(self, table: str, version: int | None = None) -> pa.Schema:
        """Arrow schema of ``table`` (at snapshot ``version`` if given)."""
        at = f" AT (VERSION => {int(version)})" if version is not None else ""
        with self.connect(read_only=True) as con:
            try:
                return con.execute(f"SELECT * FROM {qualify(table)}{at} LIMIT 0").to_arrow_table().schema
            except duckdb.Error as exc:
                raise WarehouseError(one_line(exc)) from None

    def history(self, table: str) -> pa.Table:
        """Snapshots that changed ``table``: id, time, what changed, commit message."""
        with self.connect(read_only=True) as con:
            if not self.has_table(con, table):
                raise WarehouseError(f"Table {table!r} does not exist in the warehouse")
            schema, name = _split(table)
            table_id = con.execute(
                f"""SELECT t.table_id FROM __ducklake_metadata_{LAKE}.ducklake_table t
                    JOIN __ducklake_metadata_{LAKE}.ducklake_schema s USING (schema_id)
                    WHERE t.table_name = ? AND s.schema_name = ? AND t.end_snapshot IS NULL""",
                [name, schema],
            ).fetchone()[0]
            cur = con.execute(f"SELECT * FROM {LAKE}.snapshots() ORDER BY snapshot_id")
            names = [d[0] for d in cur.description]
            snaps = [dict(zip(names, r)) for r in cur.fetchall()]
        keep = []
        for row in snaps:
            changes = row.get("changes") or {}
            touched = False
            for kind, items in changes.items():
                for item in items or []:
                    if str(item) in (str(table_id), f"{schema}.{name}", name):
                        touched = True
            if touched:
                keep.append(
                    {
                        "snapshot_id": row["snapshot_id"],
                        "snapshot_time": row["snapshot_time"],
                        "changes": json.dumps({k: v for k, v in changes.items() if v}),
                        "commit_message": row.get("commit_message"),
                    }
                )
        return pa.Table.from_pylist(
            keep,
            schema=pa.schema(
                [
                    ("snapshot_id", pa.int64()),
                    ("snapshot_time", pa.timestamp("us", tz="UTC")),
                    ("changes", pa.string()),
                    ("commit_message", pa.string()),
                ]
            ),
        )

    # -- committing staged files ---------------------------------------------------
    def commit_files(
        self,
        table: str,
        files: Sequence[str],
        schema: pa.Schema,
        mode: str = "append",
        message: str | None = None,
        meta_rows: Iterable[tuple[str, dict]] = (),
        retries: int = 30,
        expect: dict[str, int | None] | None = None,
    ) -> int:
        """Register staged Parquet files as ONE new snapshot of ``table``.

        Creates the table if needed, adds new columns (schema evolution), deletes the old
        rows for ``mode='overwrite'``, adds the files, and inserts ``meta_rows`` (catalog
        records such as the run record) in the same transaction. Returns the snapshot id.

        Safe with concurrent writers (see :mod:`dataengine.warehouse.commits`): inside the
        transaction, each table in ``expect`` must be unchanged since the snapshot given for
        it (None: must still not exist), else :class:`CommitConflict`; a run record's
        ``run_id`` must not be in ``dataengine.runs`` yet, else :class:`RunAlreadyCommitted`.
        A concurrent commit that wins the race makes this one retry its checks and writes.
        """
        if mode not in ("append", "overwrite"):
            raise WarehouseError(f"unknown write mode {mode!r}: use append or overwrite")
        import pyarrow.parquet as pq

        meta_rows = list(meta_rows)
        run_ids = [rec["run_id"] for tbl, rec in meta_rows if tbl == f"{META_SCHEMA}.runs" and rec.get("run_id")]
        # Everything below is plain SQL: no bound parameters and no registered Arrow
        # tables, because either makes the duckdb module import pandas (~0.2 s per CLI
        # call). The table schema and the catalog records go in as small Parquet files,
        # which is also what the staged files are, so the table's types are read the
        # same way as the data's.
        with commit_scratch(self.config.runs_path) as tmp:
            schema_file = os.path.join(tmp, "schema.parquet")
            pq.write_table(schema.empty_table(), schema_file)
            meta_files = []
            for i, (meta_table, record) in enumerate(meta_rows):
                path = os.path.join(tmp, f"meta-{i}.parquet")
                pq.write_table(pa.Table.from_pylist([record]), path)
                meta_files.append((meta_table, path))

            def work(con):
                for run_id in run_ids:
                    check_run_not_committed(con, run_id)
                for checked, snapshot in (expect or {}).items():
                    check_unchanged(con, checked, snapshot, self.has_table(con, checked))
                if not self.has_table(con, table):
                    schema_name, _ = _split(table)
                    if schema_name != "main":
                        con.execute(f"CREATE SCHEMA IF NOT EXISTS {LAKE}.{_quote(schema_name)}")
                    con.execute(f"CREATE TABLE {qualify(table)} AS SELECT * FROM {_parquet(schema_file)}")
                else:
                    self._evolve_schema(con, table, schema, source=_parquet(schema_file))
                    if mode == "overwrite":
                        con.execute(f"DELETE FROM {qualify(table)}")
                schema_name, name = _split(table)
                for path in files:
                    con.execute(
                        f"CALL ducklake_add_data_files('{LAKE}', {_literal(name)}, {_literal(path)}, "
                        f"schema => {_literal(schema_name)}, allow_missing => true)"
                    )
                for meta_table, path in meta_files:
                    con.execute(f"INSERT INTO {qualify(meta_table)} BY NAME SELECT * FROM {_parquet(path)}")
                if message:
                    con.execute(f"CALL {LAKE}.set_commit_message('dataengine', {_literal(message)})")

            return self.transaction(work, f"commit to {table!r}", retries)[1]

    # -- helpers -------------------------------------------------------------------
    # -- models (files under models/ + dataengine.models; see warehouse/models.py) ----------
    def resolve_model(self, ref: str):
        """``name`` / ``name@N`` -> its :class:`~dataengine.core.models.ModelRecord`."""
        return resolve_model(self, ref)

    def register_model(self, name: str, source, kind: str, labels: list[str], metrics: dict, training_sql: str = ""):
        """Copy a trained model into the warehouse as a new version of ``name``."""
        return register_model(self, name, source, kind, labels, metrics, training_sql)

    @staticmethod
    def qualify(table: str) -> str:
        """TABLE or SCHEMA.TABLE as the SQL name of the attached lake table."""
        return qualify(table)

    @staticmethod
    def snapshot_of(con) -> int:
        return con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()[0]

    @staticmethod
    def has_table(con, table: str) -> bool:
        schema, name = _split(table)
        return bool(
            con.execute(
                f"SELECT count(*) FROM duckdb_tables() WHERE database_name = {_literal(LAKE)} "
                f"AND schema_name = {_literal(schema)} AND table_name = {_literal(name)}"
            ).fetchone()[0]
        )

    @classmethod
    def add_missing_columns(cls, con, table: str, schema: pa.Schema) -> None:
        """Add the columns of ``schema`` that ``table`` lacks, inside the caller's transaction."""
        cls._evolve_schema(con, table, schema)

    @staticmethod
    def _evolve_schema(con, table: str, schema: pa.Schema, source: str | None = None) -> None:
        """Add the columns of ``schema`` the table lacks (annotations add columns).

        ``source``: a SQL relation with those columns to take the DuckDB types from
        (default: ``schema`` registered as an empty Arrow table).
        """
        existing = {
            r[0]
            for r in con.execute(f"SELECT * FROM {qualify(table)} LIMIT 0").description
        }
        for field in schema:
            if field.name in existing:
                continue
            if source is not None:
                sql_type = con.execute(f"DESCRIBE SELECT {_quote(field.name)} FROM {source}").fetchone()[1]
            else:
                con.register("_probe", pa.schema([field]).empty_table())
                sql_type = con.execute("DESCRIBE SELECT * FROM _probe").fetchone()[1]
                con.unregister("_probe")
            con.execute(f"ALTER TABLE {qualify(table)} ADD COLUMN {_quote(field.name)} {sql_type}")


def _literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _parquet(path: str) -> str:
    return f"read_parquet({_literal(path)})"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(table: str) -> tuple[str, str]:
    parts = table.split(".")
    if len(parts) == 1:
        return "main", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise WarehouseError(f"bad table name {table!r}: use TABLE or SCHEMA.TABLE")


def qualify(table: str) -> str:
    schema, name = _split(table)
    return f"{LAKE}.{_quote(schema)}.{_quote(name)}"
