"""Concurrent writers on one warehouse: nothing lost, nothing duplicated, the loser says why.

Every case runs the real CLI in separate processes against one SQLite-catalog warehouse
(and the DuckDB-file catalog where it differs), as two users at two terminals would.
"""

from __future__ import annotations

import pytest

from conftest import demo_records, run_cli
from faults import done_markers, finish, split_corpus, start_cli, wait_for

pytestmark = pytest.mark.slow  # real processes racing or failing: see docs/reliability.md


def _count(wh, sql: str) -> int:
    return wh.sql(sql).column(0)[0].as_py()


@pytest.fixture
def batches(tmp_path):
    return split_corpus(tmp_path / "corpus", demo_records())


SLOW_ANNOTATE = ["run", "--from", "raw", "--stage", "text_stats", "--stage", "throttle:seconds=0.8",
                 "--to", "raw", "--partitions", "4", "--workers", "1", "-q"]


def test_annotation_racing_an_append_fails_clearly_and_the_append_is_kept(wh, batches):
    run_cli("run", "--from", batches[0], "--to", "raw", "-q", warehouse=wh.config.root, check=True)
    annotate = start_cli(wh.config.root, *SLOW_ANNOTATE)
    wait_for(lambda: len(done_markers(wh.config.root)) >= 1, annotate, what="the annotation's first shard")
    run_cli("run", "--from", batches[1], "--to", "raw", "--mode", "append", "-q", warehouse=wh.config.root, check=True)
    rc, out = finish(annotate)
    assert rc == 1, out
    assert "changed since snapshot" in out and "Nothing was committed" in out
    # the appended rows are there, each once; the annotation left no trace
    assert _count(wh, "SELECT count(*) FROM raw") == 400
    assert _count(wh, "SELECT count(DISTINCT id) FROM raw") == 400
    assert "text_words" not in wh.schema("raw").names
    # a re-run annotates the table as it is now
    run_cli(*SLOW_ANNOTATE, warehouse=wh.config.root, check=True)
    assert _count(wh, "SELECT count(*) FROM raw WHERE text_words IS NOT NULL") == 400


def test_two_annotations_at_once_one_wins_the_other_reruns(wh, batches):
    run_cli("run", "--from", batches[0], "--to", "raw", "-q", warehouse=wh.config.root, check=True)
    first = start_cli(wh.config.root, *SLOW_ANNOTATE)
    second = start_cli(wh.config.root, "run", "--from", "raw", "--stage", "heuristics", "--stage",
                       "throttle:seconds=0.8", "--to", "raw", "--partitions", "4", "--workers", "1", "-q")
    results = [finish(first), finish(second)]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 1], results
    loser_out = next(out for rc, out in results if rc == 1)
    assert "changed since snapshot" in loser_out
    assert _count(wh, "SELECT count(*) FROM raw") == 200
    # whichever lost: its re-run completes and then both annotations are complete
    loser = first if first.returncode == 1 else second
    run_cli(*loser.args[loser.args.index("run"):], warehouse=wh.config.root, check=True)
    cols = wh.schema("raw").names
    assert "text_words" in cols
    heuristic = next(c for c in cols if c not in ("text_words",) and c.startswith(("heur", "gopher", "c4", "fineweb")))
    assert _count(wh, "SELECT count(*) FROM raw WHERE text_words IS NULL") == 0
    assert _count(wh, f'SELECT count(*) FROM raw WHERE "{heuristic}" IS NULL') == 0


@pytest.mark.parametrize("catalog", ["sqlite", "duckdb"])
def test_the_same_command_twice_at_once_commits_once(tmp_path, batches, catalog):
    from dataengine.warehouse import Warehouse, init_warehouse

    init_warehouse(tmp_path / "wh", catalog=catalog)
    wh = Warehouse(tmp_path / "wh")
    args = ["run", "--from", batches[0], "--stage", "throttle:seconds=0.3", "--to", "raw", "--workers", "1", "-q"]
    procs = [start_cli(wh.config.root, *args) for _ in range(2)]
    results = [finish(p) for p in procs]
    outs = " ".join(out for _, out in results)
    # one commits; the other stops at once ("already running") or finds it committed
    assert sorted(rc for rc, _ in results) in ([0, 1], [0, 0]), results
    assert "already running" in outs or "already committed" in outs
    assert _count(wh, "SELECT count(*) FROM raw") == 200
    assert _count(wh, "SELECT count(DISTINCT id) FROM raw") == 200
    assert _count(wh, "SELECT count(*) FROM dataengine.runs") == 1


def test_concurrent_appends_from_different_sources_all_commit(wh, batches):
    wh.write_table("raw", __import__("pyarrow").table({"id": ["seed"], "text": ["an existing row"]}))
    procs = [start_cli(wh.config.root, "run", "--from", g, "--to", "raw", "--mode", "append", "--workers", "1", "-q")
             for g in batches]
    results = [finish(p) for p in procs]
    assert [rc for rc, _ in results] == [0, 0], results
    assert _count(wh, "SELECT count(*) FROM raw") == 401
    assert _count(wh, "SELECT count(DISTINCT id) FROM raw") == 401
    runs = wh.sql("SELECT snapshot_id FROM dataengine.runs ORDER BY snapshot_id").column(0).to_pylist()
    assert len(runs) == 2 and runs[0] != runs[1]
