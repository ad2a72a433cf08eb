"""Shared DuckDB instances per process (warehouse/lake.py): reuse must not change what a
connection sees (latest commits, pinned snapshots) nor what a commit does (one transaction)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dataengine.warehouse.lake as lake
from dataengine.core.errors import WarehouseError
from dataengine.warehouse import Warehouse, init_warehouse

ROOT = Path(__file__).resolve().parents[1]


def _count(wh: Warehouse, table: str = "t") -> int:
    return wh.sql(f"SELECT count(*) FROM {table}").column(0)[0].as_py()


def test_connections_reuse_one_instance_per_mode(wh):
    lake.release_connections()
    wh.write_table("t", pa.table({"id": ["a"]}))
    for _ in range(5):
        wh.current_snapshot()
        _count(wh)
        wh.table_exists("t")
    # one read-write and one read-only instance, whatever the number of calls
    assert len(lake._SHARED) == 2
    # a second Warehouse object for the same folder shares them
    Warehouse(wh.config.root).current_snapshot()
    assert len(lake._SHARED) == 2


@pytest.mark.slow
def test_shared_connection_sees_commits_of_another_process(wh):
    wh.write_table("t", pa.table({"id": ["a"]}))
    before = wh.current_snapshot()
    assert _count(wh) == 1
    code = (
        "import pyarrow as pa, sys; from warehouse import Warehouse;"
        "Warehouse(sys.argv[1]).write_table('t', pa.table({'id': ['b', 'c']}))"
    )
    subprocess.run([sys.executable, "-c", code, wh.config.root], check=True, cwd=ROOT)
    assert wh.current_snapshot() == before + 1
    assert _count(wh) == 3
    # and this process can still commit on top of the other process's snapshot
    assert wh.write_table("t", pa.table({"id": ["d"]})) == before + 2
    assert _count(wh) == 4


def test_pinned_snapshot_stays_pinned_while_the_lake_moves_on(wh):
    first = wh.write_table("t", pa.table({"id": ["a"]}))
    with wh.connect(snapshot=first) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    second = wh.write_table("t", pa.table({"id": ["b"]}))
    with wh.connect(snapshot=first) as con:  # the cached pinned instance
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    with wh.connect(snapshot=second) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    assert wh.sql("SELECT count(*) FROM t", snapshot=first).column(0)[0].as_py() == 1
    with pytest.raises(WarehouseError):
        wh.sql("INSERT INTO t VALUES ('x')", snapshot=first)  # pinned means read-only


def test_uncommitted_transaction_is_private_and_dropped_on_close(wh):
    wh.write_table("t", pa.table({"id": ["a"]}))
    before = wh.current_snapshot()
    con = wh.connect()
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES ('x')")
    other = wh.connect()  # same shared instance, its own transaction
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 1
    other.close()
    con.close()  # never committed
    assert wh.current_snapshot() == before
    assert _count(wh) == 1
    assert wh.write_table("t", pa.table({"id": ["b"]})) == before + 1


def test_failed_commit_leaves_the_shared_instance_usable(wh, tmp_path):
    wh.write_table("t", pa.table({"id": ["a"], "n": [1]}))
    before = wh.current_snapshot()
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": ["b"], "n": [2]}), good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(WarehouseError):
        wh.commit_files("t", [str(good), str(bad)], pq.read_schema(good))
    assert wh.current_snapshot() == before  # nothing of the failed commit is visible
    snap = wh.commit_files("t", [str(good)], pq.read_schema(good), message="retry")
    assert snap == before + 1
    assert sorted(wh.sql("SELECT id FROM t").column(0).to_pylist()) == ["a", "b"]


@pytest.mark.slow
def test_recreated_warehouse_at_same_path_gets_a_fresh_instance(tmp_path):
    root = tmp_path / "wh"
    init_warehouse(root)
    wh = Warehouse(root)
    wh.write_table("t", pa.table({"id": ["a", "b"]}))
    assert _count(wh) == 2
    shutil.rmtree(root)
    init_warehouse(root)
    fresh = Warehouse(root)
    assert not fresh.table_exists("t")
    fresh.write_table("t", pa.table({"id": ["z"]}))
    assert _count(fresh) == 1


def test_duckdb_file_catalog_is_not_shared(tmp_path):
    init_warehouse(tmp_path / "wh", catalog="duckdb")
    wh = Warehouse(tmp_path / "wh")
    lake.release_connections()
    wh.write_table("t", pa.table({"id": ["a"]}))
    assert _count(wh) == 1
    assert len(lake._SHARED) == 0  # an attached DuckDB file stays locked: never kept open


def test_forked_child_opens_its_own_instance(wh):
    import os

    wh.write_table("t", pa.table({"id": ["a"]}))
    assert _count(wh) == 1  # the parent now holds shared instances
    pid = os.fork()
    if pid == 0:  # child: must not use (or destroy) the parent's DuckDB instances
        code = 1
        try:
            code = 0 if _count(Warehouse(wh.config.root)) == 1 and len(lake._SHARED) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _count(wh) == 1
