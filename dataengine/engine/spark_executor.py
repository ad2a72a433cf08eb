"""The Spark executor: shards as Spark tasks running the stages inside ``mapInArrow``.

The job is ``spark.range(n, numPartitions=n).mapInArrow(...)``: task ``i`` runs
:func:`process_shard` for pending shard ``i`` in a Spark Python worker, which reads the
shard through DuckDB (table partition ``hash(id) % parts = i`` at the snapshot, lake
attached READ_ONLY) or its input file, runs the stages on Arrow batches and stages one
Parquet file; only the run record comes back to the driver, which commits once. Rows never
cross into the JVM, so there is no Arrow -> Spark row -> Arrow round trip and no schema to
declare before the stages ran. Spark re-runs a failed task (``spark.task.maxFailures``;
``local[N,F]`` by default); :func:`process_shard` is idempotent.

Global reduces run in DuckDB on the driver, or with ``reduce: engine`` as a Spark shuffle
(``repartition(n, reduce_key)`` then the reduce SQL per partition in DuckDB).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from typing import Iterator

import pyarrow as pa

from dataengine.engine.base import Plan
from dataengine.engine.executor import Executor
from dataengine.engine.worker_cache import process_shard_in_worker
from dataengine.core.global_stage import GlobalStage
from dataengine.engine.reduce import (
    read_reduce_inputs,
    reduce_arrow,
    reduce_on_driver,
    run_reduce,
    write_reduce_partition,
)


def spark_session(master: str | None = None, workers: int = 2, retries: int = 3, memory: str | None = None,
                  quiet: bool = False, listen: str | None = None):
    """Get or create the SparkSession: ``local[workers,retries]`` unless a master URL is given.

    Workers run this interpreter (PYSPARK_PYTHON) and the driver binds to ``listen``
    (default: SPARK_LOCAL_IP, else 127.0.0.1); the Spark UI is off. ``quiet`` starts the JVM
    with errors-only logging (no start-up banner), for ``-q``.
    """
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if listen:
        os.environ["SPARK_LOCAL_IP"] = listen
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master or f"local[{workers},{retries}]")
        .appName("dataengine")
        .config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
        .config("spark.driver.bindAddress", os.environ["SPARK_LOCAL_IP"])
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.task.maxFailures", str(retries))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
    )
    if memory:
        builder = builder.config("spark.driver.memory", memory).config("spark.executor.memory", memory)
    with _jvm_stderr_silenced(quiet):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextlib.contextmanager
def _jvm_stderr_silenced(quiet: bool):
    """Start the JVM with its stderr on /dev/null (``-q``): no banner, no log4j warnings.

    The JVM inherits file descriptor 2 when it is launched; Python's own stderr is restored
    right after. Failures still reach the driver as Py4J exceptions with their messages.
    """
    if not quiet:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class SparkExecutor(Executor):
    """Shards as Spark tasks inside ``mapInArrow``; with ``reduce: engine`` reduces as a Spark shuffle."""

    kind = "spark"
    supports_gpu = False  # no RAPIDS accelerator wiring yet: --gpu runs on dask or local

    def where(self) -> str:
        cfg = self.config
        return f"spark master {cfg.spark_master or f'local[{cfg.workers},{cfg.retries}]'}"

    @contextlib.contextmanager
    def session(self, plan: Plan) -> Iterator[None]:
        self.partitions = len(plan.shards)
        given = self.resources.get("spark")
        cfg = self.config
        self.spark = given or spark_session(cfg.spark_master, cfg.workers, cfg.retries, cfg.memory_limit,
                                            quiet=not self.progress, listen=cfg.listen)
        try:
            yield
        finally:
            if given is None:
                self.spark.stop()

    def run_shards(self, pending, stages, reader, run_dir, bar) -> None:
        records = run_shards_on_spark(self.spark, pending, stages, reader, run_dir, self.warehouse.config,
                                      self.config.batch_size)
        for record in records:
            bar.advance(record["rows"])

    def reduce(self, stage, mapped_files, out_dir):
        if self.config.reduce == "driver":
            return reduce_on_driver(stage, mapped_files, out_dir)
        return reduce_with_spark(self.spark, stage, mapped_files, out_dir, partitions=self.partitions)

    def reduce_place(self) -> str:
        return "DuckDB on the driver" if self.config.reduce == "driver" else "spark shuffle"


def _shard_task(batches, pending, stages, reader, run_dir, warehouse_config, batch_size):
    """Body of the mapInArrow task: each input row is the index of a shard to process."""
    for batch in batches:
        for index in batch.column(0).to_pylist():
            record = process_shard_in_worker(pending[index], stages, reader, run_dir, warehouse_config, batch_size)
            yield pa.RecordBatch.from_pydict({"record": [json.dumps(record)]})


def run_shards_on_spark(session, pending, stages, reader, run_dir, warehouse_config, batch_size) -> list[dict]:
    """One Spark task per pending shard; returns their run records."""
    payload = (pending, stages, reader, run_dir, warehouse_config, batch_size)
    jobs = session.range(len(pending), numPartitions=len(pending))
    rows = jobs.mapInArrow(lambda batches: _shard_task(batches, *payload), "record string").collect()
    return [json.loads(row.record) for row in rows]


# -- global reduce as a Spark shuffle --------------------------------------------------

def _read_inputs_task(batches, files, stage):
    for batch in batches:
        for index in batch.column(0).to_pylist():
            yield from read_reduce_inputs(stage, files[index]).to_batches()


def _reduce_task(batches, stage: GlobalStage, out_dir: str):
    from pyspark import TaskContext

    batches = [b for b in batches if b.num_rows]
    written = 0
    if batches:  # a partition holds complete groups of reduce_key: reduce it on its own
        result = reduce_arrow(stage, pa.Table.from_batches(batches))
        written = write_reduce_partition(result, out_dir, f"part-{TaskContext.get().partitionId():05d}")
    yield pa.RecordBatch.from_pydict({"rows": pa.array([written], pa.int64())})


def reduce_with_spark(session, stage: GlobalStage, mapped_files: list[str], out_dir: str, partitions: int) -> dict:
    """Hash-partition the reduce inputs by ``stage.reduce_key`` (Spark shuffle), reduce each partition in DuckDB."""

    def shuffle_and_reduce(files: list[str], tmp: str) -> int:
        from pyspark.sql.pandas.types import from_arrow_schema

        arrow_schema = read_reduce_inputs(stage, files[0]).schema
        inputs = session.range(len(files), numPartitions=len(files)).mapInArrow(
            lambda batches: _read_inputs_task(batches, files, stage), from_arrow_schema(arrow_schema)
        )
        if stage.reduce_key:
            shuffled = inputs.repartition(max(1, partitions), stage.reduce_key)
        else:
            shuffled = inputs.coalesce(1)
        counts = shuffled.mapInArrow(lambda batches: _reduce_task(batches, stage, tmp), "rows long")
        return sum(r.rows for r in counts.collect())

    return run_reduce("spark shuffle", mapped_files, out_dir, shuffle_and_reduce)
