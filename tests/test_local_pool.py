"""Local executor with several workers: the driver process works on shards next to the pool."""

from __future__ import annotations

import pytest

from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict


def _pipeline(files, workers, table):
    return pipeline_from_dict(
        {
            "name": f"pool-{table}",
            "source": {"files": [str(f) for f in files], "format": "jsonl"},
            "stages": [],
            "output": {"table": table},
            "executor": {"workers": workers, "batch_size": 16},
        }
    )


@pytest.mark.slow
def test_driver_and_pool_give_the_same_rows_as_one_worker_in_one_snapshot(wh, corpus_files):
    one = run_pipeline(_pipeline(corpus_files[:5], 1, "one"), wh, progress=False)
    before = wh.current_snapshot()
    three = run_pipeline(_pipeline(corpus_files[:5], 3, "three"), wh, progress=False)  # driver + 2 children
    assert three.snapshot_id == before + 1 and three.shards == 5
    assert three.rows_out == one.rows_out == 250
    rows = "SELECT id, text FROM {} ORDER BY id"
    assert wh.sql(rows.format("three")).to_pylist() == wh.sql(rows.format("one")).to_pylist()


def test_committed_run_with_a_pool_is_skipped(wh, corpus_files):
    first = run_pipeline(_pipeline(corpus_files[:3], 2, "t"), wh, progress=False)
    again = run_pipeline(_pipeline(corpus_files[:3], 2, "t"), wh, progress=False)
    assert again.already_committed and again.snapshot_id == first.snapshot_id
    assert wh.sql("SELECT count(*) FROM t").column(0)[0].as_py() == first.rows_out
