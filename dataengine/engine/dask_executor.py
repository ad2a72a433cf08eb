"""The Dask executor: shards as dask.distributed tasks, global reduces as a Dask shuffle.

Each task is :func:`process_shard` for one shard: the worker reads its partition through
DuckDB (``AT (VERSION => v) WHERE hash(id) % parts = i``, lake attached READ_ONLY) or
its input file, runs the stages and stages one Parquet file; the driver commits once.
A worker that dies mid-task is replaced by its nanny and the scheduler re-runs the task
elsewhere (``distributed.scheduler.allowed-failures``); :func:`process_shard` is
idempotent, so a re-run task overwrites its own file and the table gets each row once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
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
from dataengine.core.pipeline import ExecutorConfig


@contextlib.contextmanager
def dask_client(cfg: ExecutorConfig, client=None):
    """Yield a client: the given one, one connected to ``cfg.dask_scheduler``, or a new LocalCluster's."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if cfg.dask_scheduler:
        with Client(cfg.dask_scheduler) as remote:
            yield remote
        return
    # Every server of the cluster (scheduler, nannies, workers, dashboard) listens on
    # cfg.listen only: loopback unless the user opens it on purpose (docs/executors.md).
    options = dict(
        n_workers=cfg.workers,
        threads_per_worker=cfg.threads,
        memory_limit=cfg.memory_limit or "auto",
        host=cfg.listen,
        dashboard_address=f"{cfg.listen}:0",
        worker_dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    if cfg.gpu:
        from dataengine.engine.gpu import local_cuda_cluster

        options.pop("silence_logs")
        options.pop("n_workers")  # one worker per visible GPU (CUDA_VISIBLE_DEVICES)
        cluster = local_cuda_cluster(**options)
    else:
        import dask

        # The workers' statistical profiler costs ~20% CPU on Python-heavy stages (measured
        # in benchmarks/RESULTS.md); nobody reads its output here.
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(processes=True, **options)
    with cluster, Client(cluster) as local:
        yield local


class DaskExecutor(Executor):
    """Shards as dask.distributed tasks; with ``reduce: engine`` global reduces as a Dask shuffle."""

    kind = "dask"

    def where(self) -> str:
        cfg = self.config
        if cfg.dask_scheduler:
            return f"dask scheduler {cfg.dask_scheduler}"
        cluster = "LocalCUDACluster" if cfg.gpu else "LocalCluster"
        return f"dask {cluster}: {cfg.workers} workers x {cfg.threads} threads"

    def prepare_gpu_stages(self, stages):
        from dataengine.engine.gpu import gpu_stages

        return gpu_stages(stages)

    @contextlib.contextmanager
    def session(self, plan: Plan) -> Iterator[None]:
        self.partitions = len(plan.shards)
        with dask_client(self.config, self.resources.get("client")) as client:
            self.client = client
            yield

    def run_shards(self, pending, stages, reader, run_dir, bar) -> None:
        run_shards_on_dask(self.client, pending, stages, reader, run_dir, self.warehouse.config, self.config, bar)

    def reduce(self, stage, mapped_files, out_dir):
        if self.config.reduce == "driver":
            return reduce_on_driver(stage, mapped_files, out_dir)
        return reduce_with_dask(self.client, stage, mapped_files, out_dir, partitions=self.partitions)

    def reduce_place(self) -> str:
        return "DuckDB on the driver" if self.config.reduce == "driver" else "dask shuffle"


def run_shards_on_dask(client, pending, stages, reader, run_dir, warehouse_config, cfg: ExecutorConfig, bar) -> None:
    """One task per shard; ``retries`` covers exceptions, the scheduler covers dead workers."""
    from distributed import as_completed

    attempt = uuid.uuid4().hex[:8]  # fresh keys: never reuse a result cached from another run
    # A partial, not keyword arguments: client.map has a `batch_size` parameter of its own.
    task = functools.partial(
        process_shard_in_worker,
        stages=stages,
        reader=reader,
        run_dir=run_dir,
        warehouse_config=warehouse_config,
        batch_size=cfg.batch_size,
    )
    futures = client.map(task, pending, key=[f"dataengine-shard-{s.key}-{attempt}" for s in pending], retries=cfg.retries - 1)
    try:
        for future in as_completed(futures):
            bar.advance(future.result()["rows"])
    finally:
        for future in futures:
            future.release()


# -- global reduce as a Dask shuffle ---------------------------------------------------

def _inputs_frame(path: str, stage: GlobalStage):
    return read_reduce_inputs(stage, path).to_pandas()


def _reduce_and_write(frame, stage: GlobalStage, out_dir: str, partition_info=None):
    import pandas as pd

    rows = pa.Table.from_pandas(frame, preserve_index=False)
    number = partition_info["number"] if partition_info else 0
    written = write_reduce_partition(reduce_arrow(stage, rows), out_dir, f"part-{number:05d}")
    return pd.DataFrame({"rows": pd.Series([written], dtype="int64")})


def reduce_with_dask(client, stage: GlobalStage, mapped_files: list[str], out_dir: str, partitions: int) -> dict:
    """Hash-partition the reduce inputs by ``stage.reduce_key`` (Dask shuffle), reduce each partition in DuckDB."""

    def shuffle_and_reduce(files: list[str], tmp: str) -> int:
        import dask.dataframe as dd
        import pandas as pd

        meta = read_reduce_inputs(stage, files[0]).slice(0, 0).to_pandas()
        frame = dd.from_map(_inputs_frame, files, stage=stage, meta=meta, enforce_metadata=False)
        if stage.reduce_key:
            frame = frame.shuffle(on=stage.reduce_key, npartitions=max(1, partitions))
        else:
            frame = frame.repartition(npartitions=1)
        out_meta = pd.DataFrame({"rows": pd.Series([], dtype="int64")})
        counts = frame.map_partitions(_reduce_and_write, stage, tmp, meta=out_meta)
        return int(client.compute(counts).result()["rows"].sum())

    return run_reduce("dask shuffle", mapped_files, out_dir, shuffle_and_reduce)
