"""Catalog transactions that are safe with concurrent writers.

Every write to the warehouse (a run's commit, a small table write, a blend record, a
deliberate ``sql --write``) runs through :func:`run_transaction`:

* The transaction bumps the single row of ``dataengine.commit_lock``. In DuckLake an
  UPDATE is a delete plus an insert, and two transactions that delete from the same table
  conflict at COMMIT; so any two writing transactions that overlap in time conflict, the
  first to commit wins and the other is rolled back, whatever tables they touch. DuckLake
  detects this itself, on every catalog kind (SQLite, PostgreSQL, a DuckDB file).
* The loser runs its whole transaction again, including its checks, now against what the
  winner committed. ``work(con)`` does those checks first: a table it replaces must still be
  at the snapshot the run read (:func:`check_unchanged`), its run id must not be committed
  yet (:func:`check_run_not_committed`). A failed check raises :class:`CommitConflict` or
  :class:`RunAlreadyCommitted` and is never retried; a pure append has nothing to check and
  so simply commits after the winner.

A transaction that fails leaves nothing behind: DuckLake writes the snapshot, the file
registrations and the catalog rows in one catalog transaction.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import tempfile
import time
from typing import Callable, Iterator, TypeVar

import duckdb

from dataengine.core.errors import CommitConflict, RunAlreadyCommitted, WarehouseError, one_line
from dataengine.core.schema import META_SCHEMA

T = TypeVar("T")

LAKE = "lake"
COMMIT_LOCK = f"{META_SCHEMA}.commit_lock"
RUNS = f"{META_SCHEMA}.runs"
_CONFLICT_WORDS = ("conflict", "database is locked", "busy")


def is_conflict(exc: BaseException) -> bool:
    """A concurrent writer got there first (retry), as opposed to an error in the work itself."""
    msg = str(exc).lower()
    return any(k in msg for k in _CONFLICT_WORDS)


def create_commit_lock(con) -> None:
    """The one-row table every writing transaction updates (see the module docstring)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {LAKE}.{COMMIT_LOCK} (commits BIGINT)")
    if con.execute(f"SELECT count(*) FROM {LAKE}.{COMMIT_LOCK}").fetchone()[0] == 0:
        con.execute(f"INSERT INTO {LAKE}.{COMMIT_LOCK} VALUES (0)")


def run_transaction(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    work: Callable[[duckdb.DuckDBPyConnection], T],
    what: str,
    retries: int = 30,
    diagnose: Callable[[], str | None] | None = None,
) -> tuple[T, int]:
    """Run ``work(con)`` in one catalog transaction; returns (its result, the new snapshot id).

    Retries the whole transaction (after a short random wait) when a concurrent writer
    committed first; any other exception raised by ``work`` (:class:`CommitConflict`,
    :class:`RunAlreadyCommitted`, the caller's own checks) rolls back and ends it at once. Any other failure becomes one :class:`WarehouseError` line
    naming ``what`` (and what ``diagnose()`` finds, e.g. a full disk: DuckDB's message after a
    failed catalog write is often only about the rollback that followed).
    """
    for attempt in range(retries):
        con = connect()
        try:
            con.execute("BEGIN")
            result = work(con)
            con.execute(f"UPDATE {LAKE}.{COMMIT_LOCK} SET commits = commits + 1")
            con.execute("COMMIT")
            # This connection's own commit, even if another writer committed right after it.
            snapshot = con.execute(f"FROM {LAKE}.last_committed_snapshot()").fetchone()[0]
            return result, snapshot
        except duckdb.Error as exc:
            _rollback(con)
            if attempt + 1 < retries and is_conflict(exc):
                time.sleep(min(2.0, 0.05 * (attempt + 1)) + random.random() * 0.1)
                continue
            found = diagnose() if diagnose is not None else None
            cause = f"{found}; " if found else ""
            raise WarehouseError(f"{what} failed, nothing was committed: {cause}{one_line(exc)}") from None
        except BaseException:  # CommitConflict, RunAlreadyCommitted, a check of the caller's, Ctrl-C
            _rollback(con)
            raise
        finally:
            con.close()
    raise AssertionError("unreachable")


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return (schema or "main"), name


def table_changes_since(con, table: str, snapshot: int) -> list[tuple[int, str | None]]:
    """(snapshot id, commit message) of every snapshot after ``snapshot`` that changed ``table``
    (inserted, deleted, altered, dropped or re-created it), as seen by ``con``'s transaction."""
    schema, name = _split(table)
    meta = f"__ducklake_metadata_{LAKE}"
    ids = {
        str(r[0])
        for r in con.execute(
            f"SELECT t.table_id FROM {meta}.ducklake_table t JOIN {meta}.ducklake_schema s USING (schema_id) "
            f"WHERE t.table_name = {_literal(name)} AND s.schema_name = {_literal(schema)}"
        ).fetchall()
    }
    keys = ids | {f"{schema}.{name}"} | ({name} if schema == "main" else set())
    rows = con.execute(
        f"SELECT snapshot_id, changes, commit_message FROM {LAKE}.snapshots() "
        f"WHERE snapshot_id > {int(snapshot)} ORDER BY snapshot_id"
    ).fetchall()
    return [
        (snap, message)
        for snap, changes, message in rows
        if any(str(item) in keys for items in (changes or {}).values() for item in items or [])
    ]


def check_unchanged(con, table: str, snapshot: int | None, exists: bool) -> None:
    """Raise CommitConflict unless ``table`` is as the run saw it: unchanged since ``snapshot``,
    or still absent when ``snapshot`` is None."""
    if snapshot is None:
        if exists:
            raise CommitConflict(
                f"table {table!r} was created by another writer while this run worked; nothing was "
                "committed. Re-run to work on the table as it is now"
            )
        return
    if not exists:
        raise CommitConflict(
            f"table {table!r} was dropped by another writer since snapshot {snapshot}, which this run "
            "read; nothing was committed"
        )
    changed = table_changes_since(con, table, snapshot)
    if changed:
        snap, message = changed[0]
        by = f" ({message})" if message else ""
        raise CommitConflict(
            f"table {table!r} changed since snapshot {snapshot}, which this run read and would replace: "
            f"snapshot {snap}{by} and {len(changed) - 1} more. Nothing was committed, so those changes "
            "are kept; re-run to work on the table as it is now"
        )


def check_run_not_committed(con, run_id: str) -> None:
    """Raise RunAlreadyCommitted if ``dataengine.runs`` holds ``run_id`` (seen inside the transaction)."""
    row = con.execute(
        f"SELECT snapshot_id FROM {LAKE}.{RUNS} WHERE run_id = {_literal(run_id)} LIMIT 1"
    ).fetchone()
    if row is not None:
        raise RunAlreadyCommitted(run_id, row[0])


def storage_problem(paths: list[str], min_free: int = 1 << 20) -> str | None:
    """'no space left on device at PATH' for the first local path whose disk is (nearly) full."""
    for path in paths:
        if not path or "://" in path:
            continue
        folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        if free < min_free:
            return f"no space left on device at {folder} ({free:,} bytes free)"
    return None


# -- scratch space for a commit ------------------------------------------------------------

_SCRATCH_PREFIX = "commit-"


@contextlib.contextmanager
def commit_scratch(runs_path: str) -> Iterator[str]:
    """A temporary folder for the small files a commit registers (schema, catalog rows).

    It lives under ``<data>/_runs/_commit/`` named by host and pid, so a folder left by a
    killed process is found and removed by the next commit on the same host.
    """
    base = None
    if "://" not in runs_path:
        base = os.path.join(runs_path, "_commit")
        os.makedirs(base, exist_ok=True)
        remove_stale_scratch(base)
    host = socket.gethostname().replace("-", "_")
    path = tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{host}-{os.getpid()}-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_scratch(base: str) -> int:
    """Remove commit folders of dead processes on this host; returns how many."""
    host = socket.gethostname().replace("-", "_")
    removed = 0
    for entry in os.listdir(base):
        parts = entry.split("-")
        if len(parts) < 4 or not entry.startswith(_SCRATCH_PREFIX) or parts[1] != host:
            continue
        try:
            pid = int(parts[2])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
            removed += 1
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
