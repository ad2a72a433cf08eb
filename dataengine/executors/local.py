"""The default executor: a process pool on this machine (or in-process with one worker)."""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from dataengine.executors.base import (
    RunResult,
    commit_run,
    committed_snapshot,
    plan_run,
    prepare_run_dir,
    process_shard,
)
from dataengine.progress import shard_progress


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
    pending = prepare_run_dir(plan)
    resumed = len(plan.shards) - len(pending)
    n_workers = min(workers or pipeline.executor.workers, max(1, len(pending)))
    batch_size = pipeline.executor.batch_size
    args = (plan.stages, plan.reader, plan.run_dir, warehouse.config, batch_size)
    with shard_progress(len(plan.shards), resumed, plan.pipeline.name, enabled=progress) as bar:
        if n_workers <= 1:
            for shard in pending:
                rec = process_shard(shard, *args)
                bar.advance(rec["rows"])
        else:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
                futures = {pool.submit(process_shard, shard, *args) for shard in pending}
                while futures:
                    done, futures = wait(futures, return_when=FIRST_COMPLETED)
                    for fut in done:
                        bar.advance(fut.result()["rows"])
    records = [process_shard(s, *args) for s in plan.shards]  # all done: reads the markers
    result = commit_run(plan, warehouse, records, "local", started)
    result.shards_resumed = resumed
    return result
