"""The Spark executor: shards as Spark tasks running the stages inside ``mapInArrow``.

The job is ``spark.range(n, numPartitions=n).mapInArrow(...)``: task ``i`` runs
:func:`process_shard` for pending shard ``i`` in a Spark Python worker, which reads the
shard through DuckDB (table partition ``hash(id) % parts = i`` at the snapshot, lake
attached READ_ONLY) or its input file, runs the stages on Arrow batches and stages one
Parquet file; only the run record comes back to the driver, which commits once. Rows never
cross into the JVM, so there is no Arrow -> Spark row -> Arrow round trip and no schema to
declare before the stages ran. Spark re-runs a failed task (``spark.task.maxFailures``;
``local[N,F]`` by default); :func:`process_shard` is idempotent.

Global reduces run in DuckDB on the driver, or with ``reduce: engine`` as Spark shuffles:
each step of the stage's reduce is ``repartition(n, _key)`` then its SQL in DuckDB per
partition (:class:`SparkShuffle`; the steps are :mod:`dataengine.engine.shuffle_plan`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import uuid
import warnings
from typing import Iterator

import pyarrow as pa

from dataengine.engine.base import Plan
from dataengine.engine.executor import Executor
from dataengine.engine.reduce_plan import reduce_on_driver
from dataengine.engine.shuffle_plan import (
    ShuffleBackend,
    map_side_table,
    reduce_on_engine,
    run_partition,
    shuffle_column,
    shuffled_schema,
)
from dataengine.engine.worker_cache import process_shard_in_worker


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
            return reduce_on_driver(stage, mapped_files, out_dir, progress=self.progress)
        partitions = self.config.reduce_partitions or self.partitions
        return reduce_on_engine(SparkShuffle(self.spark), stage, mapped_files, out_dir, partitions, self.progress)

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


# -- global reduce steps as Spark shuffles ---------------------------------------------

def _map_side_task(batches, tasks, spec, tag):
    """mapInArrow body: each input row is the index of a map task (its files) of input ``tag``."""
    for batch in batches:
        for index in batch.column(0).to_pylist():
            yield from map_side_table(tasks[index], spec, tag).to_batches()


def _partition_task(batches, spec):
    """mapInArrow body after the shuffle: the whole partition is one step partition."""
    from pyspark import TaskContext

    batches = [b for b in batches if b.num_rows]
    table = pa.Table.from_batches(batches) if batches else _empty_union(spec)
    record = run_partition(table, spec, TaskContext.get().partitionId())
    yield pa.RecordBatch.from_pydict({"record": [json.dumps(record)]})


def _empty_union(spec) -> pa.Table:
    fields = {}
    for tag in range(len(spec.inputs)):
        for f in shuffled_schema(spec, tag):
            fields.setdefault(f.name, f)
    return pa.schema(list(fields.values())).empty_table()


class SparkShuffle(ShuffleBackend):
    """A reduce step as ``mapInArrow`` (map side, one task per file) -> ``repartition(n, _key)``
    -> ``mapInArrow`` (the step's SQL in DuckDB per partition). Rows cross the JVM only for
    the shuffle itself."""

    where = "spark shuffle"

    def __init__(self, session):
        self.session = session
        self._group = f"dataengine-reduce-{uuid.uuid4().hex[:8]}"
        self._jobs_seen: set[int] = set()
        self._bytes = 0

    def run(self, spec, partitions: int) -> list[dict]:
        from pyspark.sql.pandas.types import from_arrow_schema

        session = self.session
        frames = []
        for tag, inp in enumerate(spec.inputs):
            schema = from_arrow_schema(shuffled_schema(spec, tag))
            if not inp.tasks:
                continue
            tasks = list(inp.tasks)
            frames.append(session.range(len(tasks), numPartitions=len(tasks)).mapInArrow(
                functools.partial(_map_side_task, tasks=tasks, spec=spec, tag=tag), schema))
        frame = frames[0]
        for other in frames[1:]:
            frame = frame.unionByName(other, allowMissingColumns=True)
        records = frame.repartition(partitions, shuffle_column(spec)).mapInArrow(
            functools.partial(_partition_task, spec=spec), "record string")
        session.sparkContext.setJobGroup(self._group, f"dataengine reduce step {spec.label}")
        # The step fixes its partition count, so adaptive execution has nothing to adapt and
        # only adds a job per stage (~1 s a step, measured): off for these jobs only.
        adaptive = session.conf.get("spark.sql.adaptive.enabled", "true")
        session.conf.set("spark.sql.adaptive.enabled", "false")
        try:
            rows = records.collect()
        finally:
            session.conf.set("spark.sql.adaptive.enabled", adaptive)
            session.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        return [json.loads(r.record) for r in rows]

    def physical_shuffle_bytes(self) -> int | None:
        """Shuffle bytes written by this reduce's jobs so far (Spark's status store)."""
        try:
            context = self.session.sparkContext
            tracker = context.statusTracker()
            store = context._jsc.sc().statusStore()
            for job in tracker.getJobIdsForGroup(self._group):
                if job in self._jobs_seen:
                    continue
                info = tracker.getJobInfo(job)
                if info is None or info.status != "SUCCEEDED":
                    continue
                self._jobs_seen.add(job)
                for stage_id in info.stageIds:
                    try:
                        self._bytes += int(store.lastStageAttempt(stage_id).shuffleWriteBytes())
                    except Exception:  # a skipped stage has no attempt
                        pass
            return self._bytes
        except Exception:  # a Spark Connect session has no status store: report none
            return None
