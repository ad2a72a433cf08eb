"""Commits with concurrent writers: DuckLake's conflict detection plus our in-transaction checks."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataengine.core.duck import load_extension, new_connection
from dataengine.core.errors import CommitConflict, RunAlreadyCommitted
from dataengine.warehouse import Warehouse, init_warehouse
from dataengine.warehouse.commits import (
    check_run_not_committed,
    create_commit_lock,
    remove_stale_scratch,
    run_transaction,
)


def _staged(tmp_path, name: str, ids: list[str]) -> str:
    path = tmp_path / f"{name}.parquet"
    pq.write_table(pa.table({"id": ids, "text": [f"text {i}" for i in ids]}), path)
    return str(path)


def _run_record(run_id: str) -> dict:
    return {"run_id": run_id, "pipeline": "t", "output_table": "t", "mode": "append", "rows_out": 1}


def test_overlapping_transactions_conflict_and_the_loser_rechecks(tmp_path):
    """Two writers in one DuckDB instance (as on a PostgreSQL catalog): only DuckLake's own
    conflict detection separates them. The loser's retry sees the winner's run record."""
    db = new_connection()
    load_extension(db, "ducklake")
    db.execute(f"ATTACH 'ducklake:{tmp_path / 'cat.ducklake'}' AS lake (DATA_PATH '{tmp_path / 'data'}/')")
    db.execute("CREATE SCHEMA lake.dataengine")
    db.execute("CREATE TABLE lake.dataengine.runs (run_id VARCHAR)")
    create_commit_lock(db)

    def connect():
        cur = db.cursor()
        cur.execute("USE lake")
        return cur

    attempts = []

    def work(con):
        attempts.append(1)
        check_run_not_committed(con, "r1")
        if len(attempts) == 1:  # another writer commits the same run while this transaction is open
            run_transaction(connect, lambda other: other.execute("INSERT INTO dataengine.runs VALUES ('r1')"), "other")
        con.execute("INSERT INTO dataengine.runs VALUES ('r1')")

    with pytest.raises(RunAlreadyCommitted):
        run_transaction(connect, work, "this")
    assert len(attempts) == 2  # the first COMMIT conflicted; the retry's check found the run
    assert db.execute("SELECT count(*) FROM lake.dataengine.runs").fetchone()[0] == 1


def test_overwrite_refuses_a_table_changed_since_the_snapshot_it_read(wh, tmp_path):
    read = wh.write_table("t", pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    appended = wh.write_table("t", pa.table({"id": ["c"], "text": ["z"]}))  # another writer, after the read
    with pytest.raises(CommitConflict, match=f"changed since snapshot {read}.*snapshot {appended}"):
        wh.commit_files("t", [_staged(tmp_path, "f", ["a", "b"])], pa.schema([("id", pa.string()), ("text", pa.string())]),
                        mode="overwrite", expect={"t": read})
    assert wh.current_snapshot() == appended
    assert sorted(wh.sql("SELECT id FROM t").column(0).to_pylist()) == ["a", "b", "c"]
    # unchanged since the snapshot read: the overwrite commits
    wh.commit_files("t", [_staged(tmp_path, "g", ["a"])], pa.schema([("id", pa.string()), ("text", pa.string())]),
                    mode="overwrite", expect={"t": appended})
    assert wh.sql("SELECT id FROM t").column(0).to_pylist() == ["a"]


def test_overwrite_of_a_table_that_was_absent_refuses_one_created_meanwhile(wh, tmp_path):
    wh.write_table("t", pa.table({"id": ["z"], "text": ["z"]}))
    with pytest.raises(CommitConflict, match="was created by another writer"):
        wh.commit_files("t", [_staged(tmp_path, "f", ["a"])], pa.schema([("id", pa.string()), ("text", pa.string())]),
                        mode="overwrite", expect={"t": None})


def _commit_same_run(root: str, path: str, start_at: float, queue) -> None:
    wh = Warehouse(root)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        snap = wh.commit_files("docs", [path], pq.read_schema(path), meta_rows=[("dataengine.runs", _run_record("same"))])
        queue.put(("committed", snap))
    except RunAlreadyCommitted as exc:
        queue.put(("already", exc.snapshot_id))


@pytest.mark.slow
def test_one_run_id_is_committed_once_by_racing_processes(wh, tmp_path):
    path = _staged(tmp_path, "f", [str(i) for i in range(10)])
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 4  # spawned interpreters need a moment; then all commit at once
    procs = [ctx.Process(target=_commit_same_run, args=(wh.config.root, path, start_at, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(kind for kind, _ in results) == ["already", "already", "committed"], results
    assert len({snap for _, snap in results}) == 1  # the losers name the winner's snapshot
    assert wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 10
    assert wh.sql("SELECT count(*) FROM dataengine.runs WHERE run_id = 'same'").column(0)[0].as_py() == 1


def test_commit_folders_of_dead_processes_are_removed(tmp_path):
    base = tmp_path / "_commit"
    host = socket.gethostname().replace("-", "_")
    dead = subprocess_pid_that_exited()
    for name in (f"commit-{host}-{dead}-abc", f"commit-{host}-{os.getpid()}-def", f"commit-otherhost-{dead}-ghi"):
        (base / name).mkdir(parents=True)
    assert remove_stale_scratch(str(base)) == 1
    assert sorted(p.name for p in base.iterdir()) == sorted([f"commit-{host}-{os.getpid()}-def", f"commit-otherhost-{dead}-ghi"])


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_a_commit_leaves_no_scratch_behind(wh, tmp_path):
    path = _staged(tmp_path, "f", ["a"])
    wh.commit_files("docs", [path], pq.read_schema(path))
    assert os.listdir(os.path.join(wh.config.runs_path, "_commit")) == []


def test_blend_revisions_and_versions_are_taken_inside_the_transaction(wh):
    from dataengine.warehouse.blends import Blends

    wh.write_table("docs", pa.table({"id": ["a", "b"], "text": ["one two", "three four"]}))
    blends = Blends(wh)
    definition = {"name": "b", "components": [{"name": "all", "sql": "SELECT id, text FROM docs", "weight": 1.0}]}
    assert blends.create(definition) == 1
    with pytest.raises(Exception, match="exists"):
        blends.create(definition)
    assert blends.create(definition, replace=True) == 2
    rows = wh.sql("SELECT revision, count(*) AS n FROM dataengine.blend_components GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"revision": 1, "n": 1}, {"revision": 2, "n": 1}]


def test_init_creates_the_commit_lock_and_old_warehouses_get_it(tmp_path):
    init_warehouse(tmp_path / "w")
    wh = Warehouse(tmp_path / "w")
    assert wh.sql("SELECT commits FROM dataengine.commit_lock").column(0).to_pylist() == [0]
    wh.write_table("t", pa.table({"a": [1]}))
    assert wh.sql("SELECT commits FROM dataengine.commit_lock").column(0).to_pylist() == [1]
