"""The CLI as a new user meets it: usage errors, time travel with aliases, output modes,
JSONL fields, output formats, the stage listing, quiet runs."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from conftest import run_cli


def _usage_error(proc, needle: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert 1 <= len(lines) <= 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_usage_errors_are_two_lines_with_the_usage_hint_and_exit_2():
    _usage_error(run_cli("blend", "frezee"), "No such command 'frezee'")
    _usage_error(run_cli("run", "--no-such-flag"), "No such option: --no-such-flag")
    _usage_error(run_cli("sql"), "Missing argument")
    assert "try 'dataengine blend --help'" in run_cli("blend", "frezee").stderr
    bare = run_cli()
    assert bare.returncode == 2 and "Traceback" not in bare.stdout + bare.stderr
    assert "Commands" in bare.stdout + bare.stderr  # a bare command shows its help


@pytest.mark.slow
def test_time_travel_with_an_alias(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": f"d{i}", "text": f"doc {i}"}) + "\n" for i in range(3)))
    run_cli("ingest", "jsonl", str(data), "-t", "docs", "-q", warehouse=w, check=True)
    snap = json.loads(run_cli("sql", "SELECT max(snapshot_id) AS s FROM dataengine.runs", "-f", "json",
                              warehouse=w, check=True).stdout)[0]["s"]
    for query in (f"SELECT count(*) AS n FROM docs@{snap} a WHERE a.id <> 'x'",
                  f"SELECT count(*) AS n FROM docs@{snap} AS a JOIN docs@{snap} b ON a.id = b.id"):
        out = run_cli("sql", query, "-f", "json", warehouse=w, check=True).stdout
        assert json.loads(out) == [{"n": 3}], query


@pytest.mark.slow
def test_run_into_an_existing_other_table_needs_a_mode(tmp_path, corpus_files):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    first, second = str(corpus_files[0]), str(corpus_files[1])
    run_cli("run", "--from", first, "--to", "docs", "-q", warehouse=w, check=True)
    again = run_cli("run", "--from", first, "--to", "docs", "-q", warehouse=w, check=True)
    assert "already committed" in again.stderr  # the same run is never repeated
    other = run_cli("run", "--from", second, "--to", "docs", "-q", warehouse=w)
    assert other.returncode == 1 and "--mode append" in other.stderr and "already exists" in other.stderr
    count = lambda: json.loads(run_cli("sql", "SELECT count(*) AS n FROM docs", "-f", "json", warehouse=w,
                                       check=True).stdout)[0]["n"]
    assert count() == 50  # nothing was written by the refused run
    run_cli("run", "--from", second, "--to", "docs", "--mode", "append", "-q", warehouse=w, check=True)
    assert count() == 100
    run_cli("run", "--from", second, "--to", "docs", "--mode", "overwrite", "-q", warehouse=w, check=True)
    assert count() == 50


@pytest.mark.slow
def test_jsonl_keeps_the_users_id_and_fields_as_typed_columns(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    data = tmp_path / "records.jsonl.gz"
    records = [
        {"id": 17, "text": "first", "score": 3, "weight": 0.5, "ok": True, "tags": ["a", "b"], "meta": {"k": 1}},
        {"id": "b-2", "text": "second", "score": 4, "weight": 1, "ok": False},
        {"text": "third, no id", "score": None},
    ]
    with gzip.open(data, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records) + "{broken\n")
    proc = run_cli("ingest", "jsonl", str(data), "-t", "recs", "-q", warehouse=w, check=True)
    assert "bad_json: 1" in proc.stderr
    rows = json.loads(run_cli("sql", "SELECT id, text, score, weight, ok, tags, meta FROM recs ORDER BY text",
                              "-f", "json", warehouse=w, check=True).stdout)
    assert [r["id"] for r in rows[:2]] == ["17", "b-2"] and len(rows[2]["id"]) == 32
    assert rows[0]["score"] == 3 and rows[1]["weight"] == 1.0 and rows[0]["ok"] is True
    assert json.loads(rows[0]["tags"]) == ["a", "b"] and json.loads(rows[0]["meta"]) == {"k": 1}
    types = {r["column_name"]: r["column_type"] for r in json.loads(
        run_cli("sql", "DESCRIBE recs", "-f", "json", warehouse=w, check=True).stdout)}
    assert types["score"] == "BIGINT" and types["weight"] == "DOUBLE" and types["ok"] == "BOOLEAN"


@pytest.mark.slow
def test_jsonl_without_the_text_field_is_an_error_naming_it(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    data = tmp_path / "notext.jsonl"
    data.write_text(json.dumps({"id": 1, "body": "hello"}) + "\n")
    proc = run_cli("ingest", "jsonl", str(data), "-t", "x", "-q", warehouse=w)
    assert proc.returncode == 1 and "no `text` column" in proc.stderr and "body" in proc.stderr
    assert "Traceback" not in proc.stderr
    ok = run_cli("ingest", "jsonl", str(data), "-t", "x", "--text-field", "body", "-q", warehouse=w, check=True)
    assert "committed 1 rows" in ok.stderr


@pytest.mark.slow
def test_math_extract_runs_on_jsonl_with_an_html_field(tmp_path):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    page = ("<html><body><article><p>The identity <script type=\"math/tex\">e^{i\\pi}+1=0</script> is famous "
            "and worth a long paragraph of explanation for readers.</p></article></body></html>")
    data = tmp_path / "pages.jsonl"
    data.write_text(json.dumps({"id": "p1", "html": page, "url": "http://example.org/e"}) + "\n")
    run_cli("run", "--from", str(data), "--stage", "math_extract", "--to", "math", "-q", warehouse=w, check=True)
    rows = json.loads(run_cli("sql", "SELECT id, text FROM math", "-f", "json", warehouse=w, check=True).stdout)
    assert rows[0]["id"] == "p1" and "e^{i\\pi}+1=0" in rows[0]["text"]


@pytest.mark.parametrize("width", [80, 200])
def test_stage_listing_reads_at_80_and_200_columns(width):
    env = dict(os.environ, COLUMNS=str(width))
    listing = run_cli("stages", check=True, env=env).stdout
    lines = listing.splitlines()
    assert "PydanticUndefined" not in listing and "fuzzy_dedup" in listing and "langid" in listing
    assert max(len(line) for line in lines) <= width
    assert "backend: str = 'transformers'" in listing  # types as a person writes them, defaults shown


@pytest.mark.slow
def test_quiet_runs_print_no_engine_chatter_on_spark_and_dask(tmp_path, corpus_files):
    w = tmp_path / "w"
    run_cli("init", warehouse=w, check=True)
    run_cli("run", "--from", str(corpus_files[0]), "--to", "docs", "-q", warehouse=w, check=True)
    for executor in ("spark", "dask"):
        proc = run_cli("run", "--from", "docs", "--stage", "text_stats", "--to", f"docs_{executor}", "-q",
                       "--executor", executor, "--workers", "1", warehouse=w, check=True)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("committed"), proc.stderr
