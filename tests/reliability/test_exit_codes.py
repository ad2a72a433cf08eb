"""Exit codes that tell the truth: all failed -> 1 and nothing committed; partial -> 0 with
the counts and the command that redoes the run; a re-run after the fix completes."""

from __future__ import annotations

import pytest

import hostile
from conftest import run_cli


@pytest.mark.slow
def test_a_run_whose_inputs_all_failed_exits_1_and_commits_nothing(wh, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    hostile.gzip_bomb(folder / "a.warc.gz", size=2**25)
    hostile.empty_warc(folder / "b.warc.gz")
    before = wh.current_snapshot()
    proc = run_cli("run", "--from", str(folder / "*.warc.gz"), "--to", "docs", "-q", warehouse=wh.config.root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "every input failed, nothing was committed" in err and "2 unreadable input file(s)" in err
    assert "a.warc.gz: gzip data that is not WARC or ARC" in err and "Traceback" not in err
    assert wh.current_snapshot() == before and not wh.table_exists("docs")
    # the cause fixed (a good file added), the same folder ingests
    hostile.good_warc(folder / "c.warc.gz", count=3)
    run_cli("run", "--from", str(folder / "*.warc.gz"), "--to", "docs", "-q", warehouse=wh.config.root, check=True)
    assert wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 3


@pytest.mark.slow
def test_a_partial_failure_exits_0_with_the_counts_and_the_rerun_command(wh, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"id": 1, "text": "one"}\nnot json\n{"id": 2, "text": "two"}\n')
    proc = run_cli("run", "--from", str(path), "--to", "docs", "-q", warehouse=wh.config.root)
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "bad_json: 1" in err and "partial failure: 1 input records or rows failed" in err
    assert f"run --from {path} --to docs -q --new-run" in err
    assert wh.sql("SELECT count(*) FROM docs").column(0)[0].as_py() == 2


@pytest.mark.slow
def test_a_filter_that_keeps_nothing_is_not_a_failure(wh, tmp_path):
    path = tmp_path / "few.jsonl"
    path.write_text('{"id": 1, "text": "one"}\n')
    proc = run_cli("run", "--from", str(path), "--stage", "text_stats", "--stage", "sql_filter:where=text_words > 5",
                   "--to", "docs", "-q", warehouse=wh.config.root)
    assert proc.returncode == 0 and "committed 0 rows" in proc.stderr, proc.stderr


@pytest.mark.slow
def test_a_stage_failing_on_every_row_commits_nothing_and_exits_1(wh, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": 1, "text": "one"}\n{"id": 2, "text": "two"}\n')
    run_cli("run", "--from", str(path), "--to", "docs", "-q", warehouse=wh.config.root, check=True)
    before = wh.current_snapshot()
    # a predicate that fails on every row (a cast of text to an integer)
    proc = run_cli("run", "--from", "docs", "--stage", "sql_filter:where=CAST(text AS INTEGER) > 0", "--to", "docs",
                   "-q", warehouse=wh.config.root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = " ".join(proc.stderr.split())
    assert "stage sql_filter failed on every row, nothing was committed" in err and "Conversion Error" in err
    assert wh.current_snapshot() == before
