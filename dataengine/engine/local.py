"""The default executor: a process pool on this machine (or in-process with one worker)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Iterator

from dataengine.core.errors import DataEngineError
from dataengine.engine.base import Plan, process_shard
from dataengine.engine.executor import Executor
from dataengine.engine.worker_cache import process_shard_in_worker, warm_up


class LocalExecutor(Executor):
    """This process plus N-1 ``spawn`` pool processes; ``workers=1`` runs in this process.

    A spawned worker costs ~0.7 s of interpreter start and imports, so this process works on
    shards too (N-1 children instead of N), and the children start (and set their stages
    up) while this process is still planning. DuckDB and threads do not survive ``fork``.
    """

    kind = "local"

    def where(self) -> str:
        return f"local process pool: {self.config.workers} workers"

    @contextlib.contextmanager
    def session(self, plan: Plan) -> Iterator[None]:
        self.n_workers = min(self.config.workers, len(plan.shards))
        self.pool = None
        if self.n_workers > 1:
            self.pool = ProcessPoolExecutor(max_workers=self.n_workers - 1, mp_context=mp.get_context("spawn"))
            for _ in range(self.n_workers - 1):
                self.pool.submit(warm_up, plan.stages)
        try:
            yield
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)

    def run_shards(self, pending, stages, reader, run_dir, bar) -> None:
        args = (stages, reader, run_dir, self.warehouse.config, self.config.batch_size)
        if self.pool is None or len(pending) <= 1:
            for shard in pending:
                bar.advance(process_shard(shard, *args)["rows"])
            return
        try:
            _share_with_pool(self.pool, self.n_workers - 1, pending, args, bar)
        except BrokenProcessPool:
            raise DataEngineError(
                "a worker process died (killed, or out of memory); the shards it finished are kept: "
                "re-run the same command to resume"
            ) from None


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
