"""Reports without a browser: sections follow the columns, numbers are the table's, targets resolve,
the read-only query path refuses writes, the CLI writes the files (tests/test_reports_browser.py
renders them in Chromium)."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

import dataengine as de
from conftest import run_cli
from dataengine.reports.table import SECTIONS, table_report


def _docs(n: int = 300, seed: int = 0, **extra) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {"id": [f"d{i:04d}" for i in range(n)], "text": ["word " * int(k) for k in rng.integers(1, 400, n)]}
    cols.update(extra)
    return pa.table(cols)


def _sections(page) -> list[str]:
    return [s.title for s in page.sections]


def test_sections_appear_only_for_columns_that_exist(wh):
    wh.write_table("plain", _docs())
    page = table_report(wh, "plain")
    assert _sections(page) == ["Text length", "Snapshots", "Schema"]  # bytes per document from the text alone
    assert [f.title for f in page.figures] == ["bytes per document (log scale)"]
    rng = np.random.default_rng(1)
    n = 300
    wh.write_table("annotated", _docs(
        n, language=rng.choice(["en", "de", "fr"], n).tolist(), g_vendi=rng.random(n),
        translation_score=rng.random(n), gopher_pass=rng.random(n) > 0.3))
    page = table_report(wh, "annotated")
    assert _sections(page) == ["Language mix", "Text length", "Heuristic filters", "Diversity", "Other annotations",
                               "Snapshots", "Schema"]
    other = next(s for s in page.sections if s.title == "Other annotations").blocks[0]
    assert "translation_score" in other and "g_vendi" not in other  # a new annotation slots in by itself
    assert len(SECTIONS) >= 9


def test_the_numbers_drawn_are_the_tables(wh):
    n = 500
    langs = ["en"] * 300 + ["de"] * 150 + ["fr"] * 50
    buckets = [i % 20 for i in range(n)]
    wh.write_table("docs", _docs(n, language=langs, quality_bucket=pa.array(buckets, pa.int32()),
                                 dup_keep=[i % 10 != 0 for i in range(n)],
                                 dup_cluster=[f"c{i // 2 if i < 100 else i}" for i in range(n)]))
    page = table_report(wh, "docs")
    figs = {f.title: f for f in page.figures}
    langs_svg = figs["documents per language"].svg
    for count in ("300", "150", "50"):
        assert re.search(rf">{count}</text>", langs_svg), count
    assert figs["documents per language"].points == 3
    assert figs["documents per ensemble quality bucket (0-19)"].points == 20
    hist = figs["dup: documents by cluster size"]
    assert hist.points == 2  # sizes 1 and 2
    note = next(s for s in page.sections if s.title == "Duplicates").note
    assert "50 of 500 documents are duplicates (10.0%)" in note
    assert dict(page.facts)["documents"] == n


def test_table_at_a_snapshot_and_a_missing_one(wh):
    first = wh.write_table("grow", _docs(100))
    wh.write_table("grow", _docs(50, seed=3))
    now = table_report(wh, "grow")
    then = table_report(wh, "grow", version=first)
    assert dict(now.facts)["documents"] == 150 and dict(then.facts)["documents"] == 100
    assert then.title == f"table grow@{first}"
    with pytest.raises(de.DataEngineError, match="did not exist at snapshot"):
        table_report(wh, "grow", version=0)


@pytest.mark.slow
def test_targets_resolve_and_ambiguity_is_an_error(wh):
    wh.write_table("docs", _docs(50))
    de.create_blend(wh, "docs", {"all": ("SELECT id, text FROM docs", 1.0)})
    de.freeze_blend(wh, "docs")
    de.create_blend(wh, "web", {"all": ("SELECT id, text FROM docs", 1.0)})
    assert de.resolve_target(wh, "blend:docs") == de.ReportTarget("blend", "docs", 1)  # the latest version
    assert de.resolve_target(wh, "docs") == de.ReportTarget("table", "docs")
    with pytest.raises(de.DataEngineError, match="both a table and a blend"):
        de.resolve_target(wh, "docs@1")
    assert de.resolve_target(wh, "blend:docs@1") == de.ReportTarget("blend", "docs", 1)
    assert de.resolve_target(wh, "table:docs@1") == de.ReportTarget("table", "docs", 1)
    with pytest.raises(de.DataEngineError, match="no frozen version"):
        de.resolve_target(wh, "web")
    with pytest.raises(de.DataEngineError, match="no table, blend or run named 'nothing'"):
        de.resolve_target(wh, "nothing")


REFUSED = ["DELETE FROM docs", "UPDATE docs SET text = ''", "INSERT INTO docs (id) VALUES ('x')", "DROP TABLE docs",
           "CREATE TABLE x AS SELECT 1", "ATTACH ':memory:' AS m", "COPY docs TO '/tmp/x.csv'", "SET threads = 1",
           "SELECT 1; DROP TABLE docs", "CALL ducklake_expire_snapshots('lake', dry_run => true)"]


def test_read_only_query_refuses_everything_but_one_select(wh):
    wh.write_table("docs", _docs(20))
    for statement in REFUSED:
        with pytest.raises(de.DataEngineError, match="^refused: ") as refused:
            de.read_only_query(wh, statement)
        assert "SELECT" in str(refused.value), refused.value  # says what is allowed
    assert wh.sql("SELECT count(*) AS n FROM docs").to_pylist()[0]["n"] == 20


def test_read_only_query_pages_and_time_travels(wh):
    first = wh.write_table("docs", _docs(120))
    wh.write_table("docs", _docs(30, seed=2))
    page0 = de.read_only_query(wh, "SELECT id FROM docs ORDER BY id;", page=0, page_size=50)
    page2 = de.read_only_query(wh, "SELECT id FROM docs ORDER BY id", page=2, page_size=50)
    assert page0.rows.num_rows == 50 and page0.has_more and page0.offset == 0
    assert page2.rows.num_rows == 50 and not page2.has_more and page2.offset == 100
    old = de.read_only_query(wh, f"SELECT count(*) AS n FROM docs@{first} -- before the append")
    assert old.rows.to_pylist() == [{"n": 120}]
    with pytest.raises(de.DataEngineError, match="SQL error"):
        de.read_only_query(wh, "SELEC 1")


@pytest.mark.slow
def test_cli_report_quality_and_dedup_html(tmp_path):
    w = tmp_path / "w"
    wh = de.open_warehouse(w, create=True)
    n = 200
    rng = np.random.default_rng(4)
    wh.write_table("docs", _docs(n, language=rng.choice(["en", "de"], n).tolist(), text_tokens=rng.integers(1, 99, n),
                                 a_score=rng.random(n), gopher_pass=rng.random(n) > 0.25))
    de.fit_quality(wh, "docs", ["a"])
    de.apply_quality(wh, "docs", ["a"], progress=False)
    result = de.run(wh, de.pipeline("docs", [de.stage("exact_dedup", order_by=["id"])], to="docs"), progress=False)
    assert de.resolve_target(wh, result.run_id) == de.ReportTarget("run", result.run_id)
    quality = run_cli("quality", "report", "docs", "--html", str(tmp_path / "q.html"), warehouse=w, check=True)
    assert "report written to" in quality.stdout
    page = (tmp_path / "q.html").read_text()
    for chart in ("share of tokens per quality level, per language (%)", "documents per ensemble bucket (0-19)",
                  "documents passing each heuristic, per language (%)"):
        assert f'data-chart="{chart}"' in page, chart
    dedup = run_cli("dedup", "report", "docs", "--html", str(tmp_path / "d.html"), warehouse=w, check=True)
    assert 'data-chart="dup: documents by cluster size"' in (tmp_path / "d.html").read_text()
    assert "report written to" in dedup.stdout
    table = run_cli("report", "docs", "--html", str(tmp_path / "t.html"), warehouse=w, check=True)
    assert table.stdout.strip().endswith("t.html")
    assert 'data-chart="documents per ensemble quality bucket (0-19)"' in (tmp_path / "t.html").read_text()
    run_cli("report", result.run_id, "--html", str(tmp_path / "r.html"), warehouse=w, check=True)
    assert 'data-chart="rows in and out per stage"' in (tmp_path / "r.html").read_text()
    missing = run_cli("report", "nope", "--html", str(tmp_path / "x.html"), warehouse=w)
    assert missing.returncode == 1 and "no table, blend or run named 'nope'" in missing.stderr
    assert not (tmp_path / "x.html").exists()
