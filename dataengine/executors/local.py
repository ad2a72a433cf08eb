"""The default executor: a process pool on this machine (or in-process with one worker)."""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from dataengine.executors.base import RunResult, committed_snapshot, plan_run, process_shard
from dataengine.executors.driver import execute_plan
from dataengine.executors.worker_cache import process_shard_in_worker


def run_local(pipeline, warehouse, progress: bool = True, workers: int | None = None, new_run: bool = False) -> RunResult:
    """Plan, process pending shards in parallel, then commit once.

    ``workers=1`` runs in this process (no pickling, no pool start-up). With more workers a
    ``spawn`` pool is used: DuckDB and threads do not survive ``fork`` reliably.
    """
    started = time.time()
    plan = plan_run(pipeline, warehouse)
    if not new_run:
        snap = committed_snapshot(warehouse, plan.run_id)
        if snap is not None:
            return RunResult(plan.run_id, plan.output_table, snap, 0, len(plan.shards), len(plan.shards), {}, already_committed=True)
    n_workers = workers or pipeline.executor.workers
    batch_size = pipeline.executor.batch_size

    def run_shards(pending, stages, reader, run_dir, bar):
        args = (stages, reader, run_dir, warehouse.config, batch_size)
        if min(n_workers, len(pending)) <= 1:
            for shard in pending:
                bar.advance(process_shard(shard, *args)["rows"])
            return
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(n_workers, len(pending)), mp_context=ctx) as pool:
            futures = {pool.submit(process_shard_in_worker, shard, *args) for shard in pending}
            while futures:
                done, futures = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    bar.advance(fut.result()["rows"])

    # Segments, global-stage reduces (DuckDB on this machine) and the single commit are
    # shared by every executor: see dataengine.executors.driver.
    return execute_plan(plan, warehouse, "local", run_shards, progress=progress, started=started)
