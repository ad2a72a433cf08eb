"""The Dask executor: shards as dask.distributed tasks, global reduces as a Dask shuffle.

Each task is :func:`process_shard` for one shard: the worker reads its partition through
DuckDB (``AT (VERSION => v) WHERE hash(id) % parts = i``, lake attached READ_ONLY) or
its input file, runs the stages and stages one Parquet file; the driver commits once.
A worker that dies mid-task is replaced by its nanny and the scheduler re-runs the task
elsewhere (``distributed.scheduler.allowed-failures``); :func:`process_shard` is
idempotent, so a re-run task overwrites its own file and the table gets each row once.

With ``reduce: engine`` each step of a global stage's reduce is a Dask P2P shuffle
(:class:`DaskShuffle`; the steps themselves are :mod:`dataengine.engine.shuffle_plan`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import uuid
from typing import Iterator

import pyarrow as pa

from dataengine.core.pipeline import ExecutorConfig
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
            return reduce_on_driver(stage, mapped_files, out_dir, progress=self.progress)
        partitions = self.config.reduce_partitions or self.partitions
        return reduce_on_engine(DaskShuffle(self.client), stage, mapped_files, out_dir, partitions, self.progress)

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


# -- global reduce steps as Dask shuffles ----------------------------------------------

def arrow_frame(table: pa.Table):
    """``table`` as pandas with Arrow-backed columns (types kept exactly), except nested
    ones: P2P cannot rebuild a ``list<...>[pyarrow]`` dtype from its name, so lists travel
    as object columns of NumPy arrays and are cast back in the partition."""
    import pandas as pd

    return table.to_pandas(types_mapper=lambda t: None if pa.types.is_nested(t) else pd.ArrowDtype(t))


def _map_side_frame(paths: list[str], spec, tag: int):
    return arrow_frame(map_side_table(paths, spec, tag))


def _partition_task(frame, spec, partition_info=None):
    import os

    import pandas as pd

    # P2P hands back Arrow buffers with 8-byte alignment; DuckDB scans registered tables
    # through Acero, which would warn on each: let Acero realign them (read once per process).
    os.environ.setdefault("ACERO_ALIGNMENT_HANDLING", "reallocate")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    record = run_partition(table, spec, partition_info["number"] if partition_info else 0)
    return pd.DataFrame({"record": [json.dumps(record)]})


class DaskShuffle(ShuffleBackend):
    """A reduce step as ``from_map`` (map side) -> ``DataFrame.shuffle(on=_key)`` (P2P) ->
    ``map_partitions`` (the step's SQL in DuckDB per partition)."""

    where = "dask shuffle"

    def __init__(self, client):
        self.client = client

    def run(self, spec, partitions: int) -> list[dict]:
        import dask
        import dask.dataframe as dd
        import pandas as pd

        # object columns (lists) must stay objects: Dask would turn them into strings
        with dask.config.set({"dataframe.convert-string": False}):
            frames = []
            for tag, inp in enumerate(spec.inputs):
                meta = arrow_frame(shuffled_schema(spec, tag).empty_table())
                if inp.tasks:
                    frames.append(dd.from_map(_map_side_frame, inp.tasks, spec=spec, tag=tag, meta=meta,
                                              enforce_metadata=False))
            frame = frames[0] if len(frames) == 1 else dd.concat(frames)
            frame = frame.shuffle(on=shuffle_column(spec), npartitions=partitions)
            out_meta = pd.DataFrame({"record": pd.Series([], dtype=object)})
            records = frame.map_partitions(_partition_task, spec, meta=out_meta)
            result = self.client.compute(records).result()
        return [json.loads(r) for r in result["record"]]

    def physical_shuffle_bytes(self) -> int | None:
        """Bytes of the P2P shuffles' shards so far (the scheduler's fine performance metrics)."""

        def shard_bytes(dask_scheduler):
            return dask_scheduler.cumulative_worker_metrics.get(("p2p", "foreground", "shards", "bytes"), 0)

        try:
            return int(self.client.run_on_scheduler(shard_bytes))
        except Exception:  # a scheduler without the metrics: report none rather than fail the run
            return None
