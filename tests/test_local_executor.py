"""Local executor: sharding, one-snapshot commits, idempotence, kill-and-resume, concurrent readers."""

from __future__ import annotations

import pytest

import glob
import os
import signal
import subprocess
import sys
import time

import yaml

from conftest import demo_records, run_cli
from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict


def _ingest(files, workers=2, stages=(), table="raw"):
    return pipeline_from_dict(
        {
            "name": "ingest",
            "source": {"files": [str(f) for f in files], "format": "jsonl"},
            "stages": list(stages),
            "output": {"table": table},
            "executor": {"workers": workers, "batch_size": 16},
        }
    )


@pytest.mark.slow
def test_ingest_and_annotate_in_place(wh, corpus_files):
    before = wh.current_snapshot()
    result = run_pipeline(_ingest(corpus_files), wh, progress=False)
    assert result.rows_out == 400 and result.snapshot_id == before + 1
    expected_ids = {r["id"] for r in demo_records()}  # the records' own ids stay the document ids
    got = wh.sql("SELECT id FROM raw").column("id").to_pylist()
    assert len(got) == 400 and set(got) == expected_ids

    annotate = pipeline_from_dict(
        {"source": {"table": "raw"}, "stages": ["text_stats"], "output": {"table": "raw"}, "executor": {"shards": 3}}
    )
    res2 = run_pipeline(annotate, wh, progress=False)
    assert res2.stats["text_stats"]["rows_in"] == 400 and res2.stats["text_stats"]["errors"] == 0
    rows = wh.sql("SELECT text, text_words FROM raw").to_pylist()
    assert len(rows) == 400
    assert all(r["text_words"] == len(r["text"].split()) for r in rows)
    # the ingest snapshot is untouched: time travel still gives the unannotated table
    old = wh.sql(f"SELECT * FROM raw@{result.snapshot_id}")
    assert "text_words" not in old.column_names and old.num_rows == 400
    runs = wh.sql("SELECT snapshot_id, output_table, rows_out FROM dataengine.runs ORDER BY snapshot_id").to_pylist()
    assert [r["snapshot_id"] for r in runs] == [result.snapshot_id, res2.snapshot_id]


@pytest.mark.slow
def test_rerun_of_committed_run_is_a_no_op(wh, corpus_files):
    first = run_pipeline(_ingest(corpus_files), wh, progress=False)
    again = run_pipeline(_ingest(corpus_files), wh, progress=False)
    assert again.already_committed and again.snapshot_id == first.snapshot_id
    assert wh.sql("SELECT count(*) FROM raw").column(0)[0].as_py() == 400


def test_filter_stage_and_bad_input_lines_are_counted(wh, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"id": 1, "text": "one two three"}\n'
        "this is not json\n"
        '{"id": 2, "text": "four"}\n'
        '{"id": 3}\n'
        '["a list"]\n'
        '{"id": 4, "text": "five six seven eight"}\n'
    )
    pipe = _ingest([path], stages=["text_stats", {"name": "sql_filter", "params": {"where": "text_words >= 3"}}])
    result = run_pipeline(pipe, wh, progress=False)
    assert result.source_skipped == {"bad_json": 1, "missing_text": 1, "not_an_object": 1}
    assert result.stats["sql_filter"]["rows_in"] == 3 and result.stats["sql_filter"]["rows_out"] == 2
    assert sorted(wh.sql("SELECT text FROM raw").column(0).to_pylist()) == ["five six seven eight", "one two three"]


def _write_pipeline(tmp_path, files, seconds) -> str:
    path = tmp_path / "slow.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "slow-ingest",
                "source": {"files": [str(f) for f in files], "format": "jsonl"},
                "stages": ["text_stats", {"name": "throttle", "params": {"seconds": seconds}}],
                "output": {"table": "slow"},
                "executor": {"workers": 1, "batch_size": 1000},
            }
        )
    )
    return str(path)


@pytest.mark.slow
def test_sigkill_then_rerun_resumes_with_exact_rows(wh, corpus_files, tmp_path):
    pipeline_file = _write_pipeline(tmp_path, corpus_files, seconds=0.6)
    before = wh.current_snapshot()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataengine.cli", "--warehouse", wh.config.root, "run", pipeline_file, "-q"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pattern = os.path.join(wh.config.runs_path, "*", "*.done.json")
    deadline = time.time() + 120
    while len(glob.glob(pattern)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before_kill = len(glob.glob(pattern))
    assert 3 <= done_before_kill < 8
    # nothing half-written is visible: no new snapshot, no table
    assert wh.current_snapshot() == before
    assert not wh.table_exists("slow")

    rerun = run_cli("run", pipeline_file, "-q", warehouse=wh.config.root, check=True)
    assert f"{done_before_kill} resumed" in rerun.stderr or f"{done_before_kill} resumed" in rerun.stdout
    ids = wh.sql("SELECT id FROM slow").column("id").to_pylist()
    assert len(ids) == 400 and len(set(ids)) == 400
    assert wh.current_snapshot() == before + 1

    # an uninterrupted run of the same pipeline into another warehouse gives the same rows
    from dataengine.warehouse import Warehouse, init_warehouse

    init_warehouse(tmp_path / "clean")
    clean = Warehouse(tmp_path / "clean")
    run_cli("run", _write_pipeline(tmp_path, corpus_files, seconds=0), "-q", warehouse=clean.config.root, check=True)
    q = "SELECT id, text_words FROM slow ORDER BY id"
    assert wh.sql(q).to_pylist() == clean.sql(q).to_pylist()


@pytest.mark.slow
def test_concurrent_reader_sees_last_committed_snapshot(wh, corpus_files, tmp_path):
    run_pipeline(_ingest(corpus_files[:4]), wh, progress=False)  # 200 rows committed
    writer_file = tmp_path / "writer.yaml"
    writer_file.write_text(
        yaml.safe_dump(
            {
                "source": {"files": [str(f) for f in corpus_files[4:]], "format": "jsonl"},
                "stages": [{"name": "throttle", "params": {"seconds": 0.3}}],
                "output": {"table": "raw", "mode": "append"},
                "executor": {"workers": 1},
            }
        )
    )
    writer = subprocess.Popen(
        [sys.executable, "-m", "dataengine.cli", "--warehouse", wh.config.root, "run", str(writer_file), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts = []
    while writer.poll() is None:
        proc = run_cli("sql", "SELECT count(*) AS n FROM raw", "--format", "csv", warehouse=wh.config.root)
        assert proc.returncode == 0, proc.stderr
        assert "lock" not in proc.stderr.lower()
        counts.append(int(proc.stdout.splitlines()[1]))
    assert writer.returncode == 0, writer.stderr
    assert counts, "the reader never ran while the writer was running"
    assert set(counts) <= {200, 400}, counts  # only ever a committed snapshot
    assert counts[0] == 200
    assert wh.sql("SELECT count(*) FROM raw").column(0)[0].as_py() == 400
