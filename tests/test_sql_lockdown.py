"""The SQL surface a user reaches: reads on a locked read-only lake; writes only on the recorded path."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dataengine.core.errors import DataEngineError
from dataengine.core.sql_guard import UnsafeSQL, check_sql


@pytest.fixture
def docs(wh):
    wh.write_table("docs", pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    return wh


@pytest.fixture(scope="module")
def shared_docs(tmp_path_factory):
    """One warehouse for the attack cases (each checks it is unchanged afterwards)."""
    from dataengine.warehouse import Warehouse, init_warehouse

    root = tmp_path_factory.mktemp("attacked") / "wh"
    init_warehouse(root)
    wh = Warehouse(root)
    wh.write_table("docs", pa.table({"id": ["a", "b"], "text": ["x", "y"]}))
    return wh


ATTACKS = [
    # the attach trick: leave the read-only lake and attach the catalog again, writable
    "USE memory; DETACH lake; ATTACH 'ducklake:sqlite:{catalog}' AS w; DROP TABLE w.docs",
    "ATTACH 'ducklake:sqlite:{catalog}' AS w",
    "DETACH lake",
    "COPY (SELECT 1) TO '{outside}/written.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA threads = 1",
    "DROP TABLE docs",
    "DELETE FROM docs",
    "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)",
    # table functions that change files or the catalog, or run SQL given as text, inside a SELECT
    "SELECT * FROM ducklake_delete_orphaned_files('lake', cleanup_all => true)",
    "SELECT * FROM lake.merge_adjacent_files()",
    "SELECT count(*) FROM (SELECT * FROM query('SELECT 1'))",
    "SELECT * FROM sqlite_query('__ducklake_metadata_lake', 'DELETE FROM ducklake_snapshot RETURNING *')",
    'SELECT * FROM "sqlite_attach"(\'{catalog}\')',
    "SELECT * FROM duckdb_secrets()",
    "EXPLAIN ANALYZE SELECT * FROM query('DETACH lake')",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_are_refused_and_the_lake_is_untouched(shared_docs, tmp_path, attack):
    docs = shared_docs
    catalog = docs.config.catalog.removeprefix("sqlite:")
    before = docs.current_snapshot()
    with pytest.raises(DataEngineError):
        docs.query(attack.format(catalog=catalog, outside=tmp_path))
    assert docs.current_snapshot() == before
    assert docs.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 2
    assert not (tmp_path / "written.csv").exists()


@pytest.mark.slow
def test_reads_users_need_still_work(docs):
    snap = docs.current_snapshot()
    assert docs.query("SELECT count(*) AS n FROM docs").to_pylist() == [{"n": 2}]
    assert docs.query(f"SELECT count(*) AS n FROM docs@{snap}").to_pylist() == [{"n": 2}]
    assert docs.query("DESCRIBE docs").num_rows == 2
    assert docs.query("SUMMARIZE docs").num_rows == 2
    assert "docs" in docs.query("SHOW TABLES").column("name").to_pylist()
    assert docs.query("FROM lake.snapshots()").num_rows >= 1
    assert docs.query("WITH x AS (SELECT * FROM docs) SELECT id FROM x, range(2) ORDER BY id").num_rows == 4
    assert docs.query("EXPLAIN SELECT * FROM docs").num_rows == 1


def test_sandbox_reads_only_the_warehouse(docs, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    assert docs.query(f"SELECT content FROM read_text('{secret}')").column(0).to_pylist() == ["s3cret"]
    with pytest.raises(DataEngineError, match="disabled by configuration"):
        docs.query(f"SELECT content FROM read_text('{secret}')", sandbox=True)
    with pytest.raises(DataEngineError, match="disabled by configuration"):
        docs.query("SELECT * FROM read_csv('/etc/passwd')", sandbox=True)
    # the lake itself (catalog + data files) stays readable, including time travel
    assert docs.query("SELECT count(*) FROM docs", sandbox=True).column(0)[0].as_py() == 2
    big = pa.table({"id": [str(i) for i in range(5000)], "text": ["t"] * 5000})  # large: Parquet files, not inlined
    docs.write_table("big", big)
    assert docs.query("SELECT count(*) FROM big", sandbox=True).column(0)[0].as_py() == 5000


def test_deliberate_write_is_one_snapshot_with_its_message_and_a_record(docs):
    before = docs.current_snapshot()
    snapshot, result = docs.write_sql("INSERT INTO docs VALUES ('c', 'z'); DELETE FROM docs WHERE id = 'a'",
                                      "replace a by c")
    assert snapshot == before + 1 and docs.current_snapshot() == snapshot
    assert sorted(docs.sql("SELECT id FROM docs").column(0).to_pylist()) == ["b", "c"]
    snap = docs.sql(f"SELECT commit_message FROM lake.snapshots() WHERE snapshot_id = {snapshot}").to_pylist()
    assert snap == [{"commit_message": "replace a by c"}]
    rec = docs.sql("SELECT query, message, snapshot_id FROM dataengine.sql_writes").to_pylist()
    assert rec[0]["message"] == "replace a by c" and rec[0]["snapshot_id"] == snapshot
    assert result.column(0).to_pylist() == [1]  # the last statement: one row deleted


def test_a_failing_write_commits_nothing(docs):
    before = docs.current_snapshot()
    with pytest.raises(DataEngineError, match="nothing was committed"):
        docs.write_sql("INSERT INTO docs VALUES ('c', 'z'); INSERT INTO nosuch VALUES (1)", "two inserts")
    assert docs.current_snapshot() == before
    assert docs.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 2


def test_writes_need_a_message_and_refuse_side_doors(docs):
    with pytest.raises(DataEngineError, match="commit message"):
        docs.write_sql("DELETE FROM docs", "")
    for attack in ("ATTACH 'x.db' AS y", "COPY docs TO '/tmp/x.csv'", "SET threads = 1",
                   "INSERT INTO docs SELECT * FROM query('SELECT 1, 2')"):
        with pytest.raises(UnsafeSQL):
            docs.write_sql(attack, "m")


def test_blend_components_and_filter_predicates_are_user_sql_too(docs):
    from dataengine.core.errors import StageError
    from dataengine.filters.basic import SqlFilter
    from dataengine.warehouse.blends import Blends

    bad = {"name": "b", "components": [
        {"name": "c", "sql": "SELECT * FROM ducklake_delete_orphaned_files('lake', cleanup_all => true)", "weight": 1}]}
    with pytest.raises(DataEngineError, match="not allowed"):
        Blends(docs).create(bad)
    stage = SqlFilter({"where": "true; COPY (SELECT 1) TO '/tmp/x.csv'"})
    with pytest.raises(StageError, match="COPY"):
        stage.ensure_setup()
    ok = SqlFilter({"where": "length(text) = 1"})
    ok.ensure_setup()
    assert ok.process(pa.table({"text": ["a", "bb"]})).num_rows == 1


def test_statement_kinds_are_named_in_the_refusal():
    with pytest.raises(UnsafeSQL, match="ATTACH statements are not allowed"):
        check_sql("ATTACH 'x' AS y")
    assert [s.kind for s in check_sql("SELECT 1; FROM range(2)")] == ["select", "select"]


@pytest.mark.slow
def test_cli_sql_refuses_the_attach_trick_and_records_deliberate_writes(docs):
    from conftest import run_cli

    catalog = docs.config.catalog.removeprefix("sqlite:")
    attack = run_cli("sql", f"USE memory; DETACH lake; ATTACH 'ducklake:sqlite:{catalog}' AS w; DROP TABLE w.docs",
                     warehouse=docs.config.root)
    assert attack.returncode == 1 and "SET statements are not allowed" in attack.stderr
    assert "Traceback" not in attack.stderr
    read = run_cli("sql", "SELECT count(*) AS n FROM docs", "--sandbox", "-f", "csv", warehouse=docs.config.root,
                   check=True)
    assert read.stdout.strip().splitlines()[-1] == "2"
    no_message = run_cli("sql", "DELETE FROM docs WHERE id = 'a'", "--write", warehouse=docs.config.root)
    assert no_message.returncode == 1 and "commit message" in no_message.stderr
    write = run_cli("sql", "DELETE FROM docs WHERE id = 'a'", "--write", "-m", "drop a", warehouse=docs.config.root,
                    check=True)
    assert "committed snapshot" in write.stdout and "drop a" in write.stdout
    assert docs.sql("SELECT id FROM docs").column(0).to_pylist() == ["b"]
