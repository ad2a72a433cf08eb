"""Spark: snapshot reads through the `ducklake` Python Data Source equal DuckDB's; killed
Python workers are retried by Spark and the table still has every row once."""

from __future__ import annotations

import glob
import os
import signal
import threading
import time

import psutil
import pyarrow.compute as pc
import pytest

from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from distributed_fixtures import build_versioned_table, first_difference, sorted_rows, spark_session
from dataengine.warehouse.distributed import spark_snapshot


pytestmark = pytest.mark.slow  # Spark/Dask sessions, torchrun, subprocess training: `make test` only


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def test_spark_reads_every_snapshot_exactly_as_duckdb(wh, spark):
    from pyspark.sql import functions as F

    versions = build_versioned_table(wh)
    frames = {name: spark_snapshot(spark, wh, "snap", version, partitions=3) for name, version in versions.items()}
    assert all(f.rdd.getNumPartitions() == 3 for f in frames.values())
    # One Spark job for all versions (a union tagged by version) keeps the test fast.
    tagged = [f.withColumn("_version", F.lit(name)) for name, f in frames.items()]
    everything = tagged[0]
    for frame in tagged[1:]:
        everything = everything.unionByName(frame)
    rows = everything.toArrow()
    for name, version in versions.items():
        mine = rows.filter(pc.equal(rows.column("_version"), name)).drop_columns(["_version"])
        got = sorted_rows(mine)
        expected = sorted_rows(wh.sql(f"SELECT * FROM snap AT (VERSION => {version})"))
        assert len(got) == len(expected) and got == expected, f"snap@{name} ({version}): {first_difference(got, expected)}"
    # Spark SQL on top works as usual, and still sees only the pinned snapshot.
    frame = spark_snapshot(spark, wh, "snap", versions["deleted"], partitions=2)
    assert frame.filter("n % 7 = 0").count() == 0
    assert frame.count() == wh.sql(f"SELECT count(*) FROM snap@{versions['deleted']}").column(0)[0].as_py()


def _spark_python_workers() -> list[psutil.Process]:
    """Python workers forked by the pyspark daemon(s) of this test process's Spark JVM."""
    workers = []
    for proc in psutil.Process().children(recursive=True):
        try:
            parent = proc.parent()
            if "pyspark.daemon" in " ".join(proc.cmdline()) and parent and "pyspark.daemon" in " ".join(parent.cmdline()):
                workers.append(proc)
        except psutil.Error:
            continue
    return workers


def test_spark_retries_shards_whose_python_worker_was_killed(wh, corpus_files, spark):
    pipeline = pipeline_from_dict(
        {
            "name": "slow-ingest-spark",
            "source": {"files": [str(f) for f in corpus_files], "format": "jsonl"},
            "stages": [{"name": "throttle", "params": {"seconds": 0.25}}, "text_stats"],
            "output": {"table": "docs"},
            "executor": {"batch_size": 10},
        }
    )
    outcome = {}

    def run():
        spark.sparkContext.setJobGroup("kill-test", "shards whose workers get killed")
        outcome["result"] = run_pipeline(pipeline, wh, executor="spark", progress=False, spark=spark)

    runner = threading.Thread(target=run)
    runner.start()
    run_dir_glob = os.path.join(wh.config.runs_path, "*", "*.done.json")
    killed = []
    deadline = time.time() + 90
    while not killed and time.time() < deadline and runner.is_alive():
        if glob.glob(run_dir_glob):  # shards are being processed: kill every busy worker once
            time.sleep(0.3)
            for proc in _spark_python_workers():
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed.append(proc.pid)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)
    runner.join(timeout=240)
    assert killed, "no Spark Python worker was running to kill"
    result = outcome["result"]
    assert result.rows_out == 400 and result.shards == 8
    ids = wh.sql("SELECT id FROM docs").column("id").to_pylist()
    assert len(ids) == 400 == len(set(ids))
    tracker = spark.sparkContext.statusTracker()
    stages = [st for job in tracker.getJobIdsForGroup("kill-test") for st in tracker.getJobInfo(job).stageIds]
    failed = sum(tracker.getStageInfo(st).numFailedTasks for st in stages if tracker.getStageInfo(st))
    assert failed >= 1, "killing the workers failed no task: the retry path was not exercised"
