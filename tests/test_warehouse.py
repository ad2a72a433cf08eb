"""Warehouse: snapshots, time travel, schema evolution, one-snapshot commits."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.core.errors import WarehouseError
from dataengine.warehouse import Warehouse, init_warehouse, rewrite_time_travel


def test_time_travel_returns_old_rows_and_old_schema(wh):
    first = wh.write_table("docs", pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    second = wh.write_table("docs", pa.table({"id": ["c"], "text": ["z"], "score": [0.5]}))
    assert second > first
    old = wh.sql(f"SELECT * FROM docs@{first} ORDER BY id")
    assert old.column_names == ["id", "text"]
    assert old.column("id").to_pylist() == ["a", "b"]
    new = wh.sql("SELECT * FROM docs ORDER BY id")
    assert new.column_names == ["id", "text", "score"]
    assert new.column("score").to_pylist() == [None, None, 0.5]
    assert wh.schema("docs", first).names == ["id", "text"]
    hist = wh.history("docs").column("snapshot_id").to_pylist()
    assert hist == [first, second]


def test_commit_files_is_one_snapshot_with_overwrite_and_new_columns(wh, tmp_path):
    wh.write_table("t", pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    before = wh.current_snapshot()
    files = []
    for i in range(3):
        path = tmp_path / f"f{i}.parquet"
        pq.write_table(pa.table({"id": [f"n{i}"], "text": ["t"], "flag": [i % 2 == 0]}), path)
        files.append(str(path))
    schema = pq.read_schema(files[0])
    snap = wh.commit_files("t", files, schema, mode="overwrite", message="three files")
    assert snap == before + 1, "all files and the delete must land in ONE snapshot"
    rows = wh.sql("SELECT id, flag FROM t ORDER BY id").to_pylist()
    assert rows == [{"id": "n0", "flag": True}, {"id": "n1", "flag": False}, {"id": "n2", "flag": True}]
    assert wh.sql(f"SELECT count(*) FROM t@{before}").column(0)[0].as_py() == 2
    assert wh.history("t").column("commit_message").to_pylist()[-1] == "three files"


def test_failed_commit_leaves_no_snapshot(wh, tmp_path):
    wh.write_table("t", pa.table({"id": ["a"], "n": [1]}))
    before = wh.current_snapshot()
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"id": ["b"], "n": [2]}), good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(WarehouseError):
        wh.commit_files("t", [str(good), str(bad)], pq.read_schema(good))
    assert wh.current_snapshot() == before
    assert wh.sql("SELECT count(*) FROM t").column(0)[0].as_py() == 1


def test_bad_sql_and_missing_table_are_clear_errors(wh):
    with pytest.raises(WarehouseError, match="does not exist"):
        wh.sql("SELECT * FROM nope")
    with pytest.raises(WarehouseError, match="syntax error"):
        wh.sql("SELEC 1")


def test_missing_warehouse_folder(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at"):
        Warehouse(tmp_path / "missing")


def test_duckdb_file_catalog_works_too(tmp_path):
    init_warehouse(tmp_path / "w", catalog="duckdb")
    w = Warehouse(tmp_path / "w")
    snap = w.write_table("t", pa.table({"id": ["a"]}))
    assert w.sql(f"SELECT count(*) FROM t@{snap}").column(0)[0].as_py() == 1
    assert "catalog.ducklake" in w.config.catalog


def test_time_travel_rewrite_leaves_strings_alone():
    assert rewrite_time_travel("SELECT * FROM cc@12 WHERE a = 'x@3'") == (
        "SELECT * FROM cc AT (VERSION => 12) WHERE a = 'x@3'"
    )
    assert rewrite_time_travel("FROM s.t@4 JOIN u@5 USING (id)") == (
        "FROM s.t AT (VERSION => 4) JOIN u AT (VERSION => 5) USING (id)"
    )


def _postgres_bin() -> str | None:
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1].rsplit("/", 1)[0] if found else None


@pytest.fixture
def postgres_dsn(tmp_path):
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's binaries), stopped afterwards."""
    import os
    import shutil
    import socket
    import subprocess

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian package postgresql)")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    import tempfile
    from pathlib import Path

    # outside pytest's tmp_path: its parents are private to root, and the server runs as postgres
    folder = Path(tempfile.mkdtemp(prefix="dataengine-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"
    subprocess.run(as_user + [f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", str(data), "-o", opts, "-l", str(folder / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgres:dbname=postgres host=127.0.0.1 port={port} user=postgres"
    finally:
        subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", str(data), "stop", "-m", "immediate"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_postgresql_catalog(tmp_path, postgres_dsn):
    init_warehouse(tmp_path / "pgw", catalog=postgres_dsn)
    w = Warehouse(tmp_path / "pgw")
    first = w.write_table("t", pa.table({"id": ["a", "b"]}))
    w.write_table("t", pa.table({"id": ["c"]}))
    assert w.sql(f"SELECT count(*) FROM t@{first}").column(0)[0].as_py() == 2
    assert w.sql("SELECT count(*) FROM t").column(0)[0].as_py() == 3
    assert w.config.catalog.startswith("postgres:")
