"""Dask: snapshot reads equal DuckDB's, a killed worker loses and duplicates nothing, the CLI."""

from __future__ import annotations

import glob
import os
import signal
import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import run_cli
from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from distributed_fixtures import build_versioned_table, dask_client, first_difference, sorted_rows
from dataengine.warehouse.distributed import dask_snapshot


pytestmark = pytest.mark.slow  # Spark/Dask sessions, torchrun, subprocess training: `make test` only


@pytest.fixture(scope="module")
def client():
    return dask_client()


def _duckdb_at(wh, table: str, version: int, columns: str = "*") -> list[dict]:
    return sorted_rows(wh.sql(f"SELECT {columns} FROM {table} AT (VERSION => {version})"))


def _rows(frame: pd.DataFrame) -> list[dict]:
    """Back to Arrow, then Python values: compares values, not pandas dtype flavours."""
    return sorted_rows(pa.Table.from_pandas(frame, preserve_index=False))


def test_dask_reads_every_snapshot_exactly_as_duckdb(wh, client):
    versions = build_versioned_table(wh)
    # The traps are really there: globbing the data folder gives the wrong rows.
    on_disk = sum(pq.read_metadata(f).num_rows for f in glob.glob(f"{wh.config.data_path}main/snap/*.parquet") if "delete" not in f)
    assert on_disk != len(_duckdb_at(wh, "snap", versions["appended"]))
    frames = {name: dask_snapshot(wh, "snap", version, partitions=3) for name, version in versions.items()}
    assert all(f.npartitions == 3 for f in frames.values())
    computed = dict(zip(frames, client.gather(client.compute(list(frames.values())))))  # one graph, all versions
    for name, version in versions.items():
        got, expected = _rows(computed[name]), _duckdb_at(wh, "snap", version)
        assert len(got) == len(expected) and got == expected, f"snap@{name} ({version}): {first_difference(got, expected)}"
    subset = dask_snapshot(wh, "snap", versions["deleted"], partitions=2, columns=["id", "score"])
    assert subset.npartitions == 2 and list(subset.columns) == ["id", "score"]
    assert _rows(client.compute(subset).result()) == _duckdb_at(wh, "snap", versions["deleted"], "id, score")


def _worker_busy_with_a_shard(client) -> str | None:
    for address, keys in client.processing().items():
        if any("dataengine-shard" in str(k) for k in keys):
            return address
    return None


def test_killed_dask_worker_still_gives_every_row_exactly_once(wh, corpus_files, client):
    pipeline = pipeline_from_dict(
        {
            "name": "slow-ingest",
            "source": {"files": [str(f) for f in corpus_files], "format": "jsonl"},
            "stages": [{"name": "throttle", "params": {"seconds": 0.25}}, "text_stats"],
            "output": {"table": "docs"},
            "executor": {"batch_size": 10},  # 5 batches (1.25 s) per shard, 8 shards
        }
    )
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=run_pipeline(pipeline, wh, executor="dask", progress=False, client=client))
    )
    runner.start()
    killed = None
    deadline = time.time() + 60
    while killed is None and time.time() < deadline and runner.is_alive():
        address = _worker_busy_with_a_shard(client)
        if address is not None:
            time.sleep(0.4)  # well inside the shard's 1.25 s of work
            pid = client.run(os.getpid, workers=[address])[address]
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.05)
    runner.join(timeout=180)
    assert killed is not None, "no shard was running to kill a worker under"
    result = outcome["result"]
    assert result.rows_out == 400 and result.shards == 8
    ids = wh.sql("SELECT id FROM docs").column("id").to_pylist()
    assert len(ids) == 400 == len(set(ids))
    assert wh.sql("SELECT count(*) FROM docs WHERE text_words IS NULL").column(0)[0].as_py() == 0
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker for later tests
    assert killed not in client.run(os.getpid).values()


def test_cli_runs_on_dask_and_dry_run_prints_the_plan(wh, corpus_files, tmp_path):
    spec = {
        "name": "cli-dask",
        "source": {"files": [str(f) for f in corpus_files[:4]], "format": "jsonl"},
        "stages": ["text_stats", "exact_dedup"],
        "output": {"table": "cli_docs"},
        "executor": {"kind": "dask", "workers": 2},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    root = wh.config.root

    dry = run_cli("run", str(path), "--dry-run", "--executor", "spark", "--spark-master", "local[2]", warehouse=root, check=True)
    assert "spark master local[2]" in dry.stdout and "shards     4" in dry.stdout
    assert "exact_dedup reduce by dup_cluster: DuckDB on the driver" in dry.stdout
    assert not wh.table_exists("cli_docs") and not os.path.exists(wh.config.runs_path)

    bad = run_cli("run", str(path), "--executor", "flink", warehouse=root)
    assert bad.returncode == 1 and "executor" in bad.stderr and "Traceback" not in bad.stderr

    done = run_cli("run", str(path), "--quiet", "--threads", "1", "--reduce", "engine", warehouse=root, check=True)
    assert "committed 200 rows" in done.stderr.replace("\n", " ")
    runs = wh.sql("SELECT executor, rows_out FROM dataengine.runs WHERE output_table = 'cli_docs'").to_pylist()
    assert runs == [{"executor": "dask", "rows_out": 200}]


def test_run_stopped_after_the_global_map_resumes_from_the_reduce_on_rerun(wh, corpus_files, client):
    """The driver dies between segments: the re-run redoes nothing that was done."""
    from dataengine.core.errors import DataEngineError
    from dataengine.engine.base import plan_run
    from dataengine.engine.dask_executor import run_shards_on_dask
    from dataengine.engine.driver import execute_plan

    spec = {
        "name": "resume",
        "source": {"files": [str(f) for f in corpus_files], "format": "jsonl"},
        "stages": ["text_stats", "exact_dedup", {"name": "text_stats", "params": {"prefix": "again"}}],
        "output": {"table": "resumed"},
    }
    pipeline = pipeline_from_dict(spec)
    plan = plan_run(pipeline, wh)
    segments_run = []

    def run_first_segment_only(pending, stages, reader, run_dir, bar):
        if segments_run:
            raise DataEngineError("driver stopped")
        segments_run.append(run_dir)
        run_shards_on_dask(client, pending, stages, reader, run_dir, wh.config, pipeline.executor, bar)

    with pytest.raises(DataEngineError, match="driver stopped"):
        execute_plan(plan, wh, "dask", run_first_segment_only, progress=False)
    assert not wh.table_exists("resumed")
    markers = sorted(glob.glob(os.path.join(segments_run[0], "*.done.json")))
    assert len(markers) == 8

    # The re-run connects to the running scheduler by address, as `--dask-scheduler` does.
    address = client.scheduler.address
    result = run_pipeline(pipeline_from_dict(spec), wh, executor="dask", progress=False, dask_scheduler=address)
    # shards_resumed counts segment 0's shards found done before any work: none was redone
    assert result.shards_resumed == 8 and result.rows_out == 400
    assert not any(os.path.exists(m) for m in markers)  # committed: the map outputs are cleaned up
    rows = wh.sql("SELECT id, again_words, text_words, dup_keep FROM resumed").to_pylist()
    assert len({r["id"] for r in rows}) == 400
    assert all(r["again_words"] == r["text_words"] for r in rows)


def test_gpu_flag_without_rapids_fails_with_a_clear_error(wh, corpus_files):
    from dataengine.core.errors import DataEngineError

    pipeline = pipeline_from_dict(
        {"source": {"files": [str(corpus_files[0])], "format": "jsonl"}, "stages": ["text_stats"], "output": {"table": "g"}}
    )
    with pytest.raises(DataEngineError, match="dask_cuda|cudf"):
        run_pipeline(pipeline, wh, executor="dask", progress=False, gpu=True)
    assert not wh.table_exists("g")


def test_only_stages_with_a_gpu_path_get_cudf_batches():
    import pyarrow as pa

    from dataengine.filters.basic import TextStats
    from dataengine.core.errors import DataEngineError
    from dataengine.filters.exact_dedup import ExactDedup
    from dataengine.engine.gpu import GpuBatches, gpu_stages

    class UpperGpu(TextStats):
        def process_gpu(self, frame):  # cuDF path; the Arrow `process` stays the CPU reference
            return frame

    cpu, gpu, global_stage = TextStats(), UpperGpu(), ExactDedup()
    wrapped = gpu_stages([cpu, gpu, global_stage])
    assert wrapped[0] is cpu and wrapped[2] is global_stage
    assert isinstance(wrapped[1], GpuBatches) and wrapped[1].output_columns() == gpu.output_columns()
    with pytest.raises(DataEngineError, match="cudf"):
        wrapped[1](pa.table({"text": ["a b"]}))
