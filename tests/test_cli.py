"""The CLI end to end in real subprocesses: clear one-line errors, no tracebacks."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

import pyarrow.parquet as pq

from conftest import run_cli


def _assert_one_line_error(proc, needle: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and needle in lines[0], lines[0]


def test_missing_warehouse_folder(tmp_path):
    proc = run_cli("tables", warehouse=tmp_path / "nowhere")
    _assert_one_line_error(proc, "no warehouse at")


@pytest.mark.slow
def test_bad_sql_and_missing_table(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    _assert_one_line_error(run_cli("sql", "SELEC 1", warehouse=w), "syntax error")
    _assert_one_line_error(run_cli("sql", "SELECT * FROM missing_table", warehouse=w), "missing_table")
    _assert_one_line_error(run_cli("history", "missing_table", warehouse=w), "does not exist")


@pytest.mark.slow
def test_malformed_yaml_and_unknown_stage(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("source: {table: raw\nstages: []\n")
    _assert_one_line_error(run_cli("run", str(bad_yaml), warehouse=w), "malformed YAML at line")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("source: {table: raw}\nstages: [no_such_stage]\noutput: {table: out}\n")
    _assert_one_line_error(run_cli("run", str(unknown), warehouse=w), "unknown stage 'no_such_stage'")
    _assert_one_line_error(run_cli("run", str(tmp_path / "absent.yaml"), warehouse=w), "does not exist")


@pytest.mark.slow
def test_inline_run_sql_formats_tables_history(tmp_path, corpus_files):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    files = str(corpus_files[0].parent / "*.jsonl")
    run_cli("run", "--from", files, "--to", "raw", "-q", warehouse=w, check=True)
    proc = run_cli(
        "run", "--from", "raw", "--stage", "text_stats:prefix=t", "--stage", "sql_filter:where=t_words > 300",
        "--to", "long_docs", "-q", warehouse=w, check=True,
    )
    assert "committed" in proc.stderr
    csv = run_cli("sql", "SELECT count(*) AS n, min(t_words) AS m FROM long_docs", "--format", "csv", warehouse=w, check=True)
    n, m = map(int, csv.stdout.splitlines()[1].split(","))
    assert 0 < n < 400 and m > 300
    js = run_cli("sql", "SELECT id FROM raw ORDER BY id LIMIT 3", "--format", "json", warehouse=w, check=True)
    ids = [r["id"] for r in json.loads(js.stdout)]  # --format json: one JSON array
    assert len(ids) == 3 and ids == sorted(ids)
    jl = run_cli("sql", "SELECT id FROM raw ORDER BY id LIMIT 3", "--format", "jsonl", warehouse=w, check=True)
    assert [json.loads(line)["id"] for line in jl.stdout.splitlines()] == ids  # --format jsonl: JSON lines
    out = tmp_path / "o.parquet"
    run_cli("sql", "SELECT * FROM long_docs", "--format", "parquet", "--output", str(out), warehouse=w, check=True)
    assert pq.read_table(out).num_rows == n
    tables = run_cli("tables", warehouse=w, check=True).stdout
    assert "long_docs" in tables and "raw" in tables and "dataengine.runs" not in tables
    hist = run_cli("history", "raw", warehouse=w, check=True).stdout
    assert "snapshot_id" in hist
    stages = run_cli("stages", check=True).stdout
    assert "text_stats" in stages and "sql_filter" in stages and "where" in stages


def test_environment_variable_selects_warehouse(tmp_path):
    import os

    env = dict(os.environ, DATAENGINE_WAREHOUSE=str(tmp_path / "envw"))
    run_cli("init", check=True, env=env)
    assert (tmp_path / "envw" / "dataengine.yaml").exists()


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    proc = run_cli("demo", "-q", warehouse=tmp_path / "demo", check=True, timeout=240)
    assert "demo finished" in proc.stdout
    import re

    report = Path(re.search(r"table report \(.*\): (\S+raw\.html)", proc.stdout).group(1))  # the demo's last step
    assert report.exists() and 'data-chart="documents per language"' in report.read_text()
    check = run_cli("sql", "SELECT count(*) FROM raw", "--format", "csv", warehouse=tmp_path / "demo", check=True)
    assert int(check.stdout.splitlines()[1]) > 0
