"""The default executor: a process pool on this machine (or in-process with one worker)."""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from dataengine.executors.base import RunResult, committed_snapshot, plan_run, process_shard
from dataengine.executors.driver import execute_plan
from dataengine.executors.worker_cache import process_shard_in_worker, warm_up


def run_local(pipeline, warehouse, progress: bool = True, workers: int | None = None, new_run: bool = False) -> RunResult:
    """Plan, process pending shards in parallel, then commit once.

    ``workers=1`` runs in this process (no pickling, no pool start-up). With ``workers=N``
    this process works on shards too, next to N-1 ``spawn`` pool processes (DuckDB and
    threads do not survive ``fork`` reliably): a spawned worker costs ~0.7 s of interpreter
    start and imports, so N-1 of them instead of N, and they start (and set their stages
    up) while this process is still opening the warehouse.
    """
    started = time.time()
    plan = plan_run(pipeline, warehouse)
    n_workers = min(workers or pipeline.executor.workers, len(plan.shards))
    batch_size = pipeline.executor.batch_size
    pool = None
    if n_workers > 1:
        pool = ProcessPoolExecutor(max_workers=n_workers - 1, mp_context=mp.get_context("spawn"))
        for _ in range(n_workers - 1):
            pool.submit(warm_up, plan.stages)
    try:
        if not new_run:
            snap = committed_snapshot(warehouse, plan.run_id)
            if snap is not None:
                if pool is not None:  # nothing to do: don't wait for the warm-up
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = None
                return RunResult(plan.run_id, plan.output_table, snap, 0, len(plan.shards), len(plan.shards), {}, already_committed=True)

        def run_shards(pending, stages, reader, run_dir, bar):
            args = (stages, reader, run_dir, warehouse.config, batch_size)
            if pool is None or len(pending) <= 1:
                for shard in pending:
                    bar.advance(process_shard(shard, *args)["rows"])
                return
            _share_with_pool(pool, n_workers - 1, pending, args, bar)

        # Segments, global-stage reduces (DuckDB on this machine) and the single commit are
        # shared by every executor: see dataengine.executors.driver.
        return execute_plan(plan, warehouse, "local", run_shards, progress=progress, started=started)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _share_with_pool(pool: ProcessPoolExecutor, children: int, pending: list, args: tuple, bar) -> None:
    """Run ``pending`` shards on the pool's ``children`` processes and in this process.

    Each child gets one shard running and one waiting, so it never idles while this
    process is busy with a shard of its own; this process takes shards from the end of
    the queue and never leaves the pool without work it could start.
    """
    queue = list(pending)
    futures: set = set()
    while queue or futures:
        finished = {f for f in futures if f.done()}
        futures -= finished
        for fut in finished:
            bar.advance(fut.result()["rows"])
        while queue and len(futures) < 2 * children and (len(queue) > 1 or not futures):
            futures.add(pool.submit(process_shard_in_worker, queue.pop(0), *args))
        if queue:
            bar.advance(process_shard(queue.pop(), *args)["rows"])
        elif futures:
            done, futures = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                bar.advance(fut.result()["rows"])
