"""The one class an executor implements, and the run loop that drives every executor.

An executor only decides *where* shard work and global reduces run. Everything else
(planning, the "already committed?" check, segments, resume, the single commit) is the
same for all of them and lives here and in :mod:`dataengine.engine.driver`::

    class MyExecutor(Executor):
        kind = "mine"                        # entry point in ``dataengine.executors``

        def run_shards(self, pending, stages, reader, run_dir, bar): ...
        # optional: session() to start/stop resources, reduce() for an engine reduce,
        # supports_gpu / prepare_gpu_stages() for --gpu, where() for --dry-run.
"""

from __future__ import annotations

import contextlib
import time
from typing import ClassVar, Iterator

from dataengine.core.errors import PipelineConfigError
from dataengine.core.global_stage import GlobalStage
from dataengine.core.pipeline import ExecutorConfig, PipelineConfig
from dataengine.core.registry import executors
from dataengine.core.stage import Stage
from dataengine.engine.base import Plan, RunResult, committed_snapshot, plan_run
from dataengine.engine.driver import execute_plan, executor_config
from dataengine.engine.reduce_plan import reduce_on_driver


class Executor:
    """Runs shard tasks and global reduces somewhere. See the module docstring."""

    #: The registry name (entry point in ``dataengine.executors``).
    kind: ClassVar[str] = ""
    #: Whether ``--gpu`` is supported at all (stages' own GPU paths run in its workers).
    supports_gpu: ClassVar[bool] = True

    def __init__(self, config: ExecutorConfig, warehouse, progress: bool = True, **resources):
        self.config = config
        self.warehouse = warehouse
        self.progress = progress  # False: no progress bars and no engine chatter (-q)
        self.resources = resources  # e.g. an existing Dask client or Spark session

    # -- to override -------------------------------------------------------------------
    def where(self) -> str:
        """One line for ``--dry-run``: what runs the shards."""
        return f"{self.config.workers} workers"

    @contextlib.contextmanager
    def session(self, plan: Plan) -> Iterator[None]:
        """Start what the run needs (a pool, a cluster, a Spark session) and stop it after."""
        yield

    def prepare_gpu_stages(self, stages: list[Stage]) -> list[Stage]:
        """Under ``--gpu``: the stages as this executor runs them (e.g. cuDF batches on dask)."""
        return stages

    def run_shards(self, pending, stages, reader, run_dir: str, bar) -> None:
        """Run :func:`dataengine.engine.base.process_shard` on every pending shard, ``bar.advance(rows)`` each."""
        raise NotImplementedError

    def reduce(self, stage: GlobalStage, mapped_files: list[str], out_dir: str) -> dict:
        """A global stage's reduce; DuckDB on the driver unless the executor has an engine reduce."""
        return reduce_on_driver(stage, mapped_files, out_dir, progress=self.progress)

    def reduce_place(self) -> str:
        return "DuckDB on the driver"


def check_output_mode(pipeline: PipelineConfig, warehouse) -> None:
    """Writing into an existing table that is not the source must say append or overwrite.

    Without it a slightly different second run would silently add a second copy of every
    row. Annotating a table in place (source = output) overwrites by definition, and a run
    that already committed is skipped before this check.
    """
    out = pipeline.output.table
    in_place = pipeline.source.table is not None and pipeline.source.table == out
    if pipeline.output.mode is None and not in_place and warehouse.table_exists(out):
        raise PipelineConfigError(
            f"table {out!r} already exists: say --mode append to add these rows to it or --mode overwrite to "
            "replace it (to annotate a table in place, give the same table to --from and --to)"
        )


def executor_class(kind: str) -> type[Executor]:
    return executors.get(kind)


def run_pipeline(
    pipeline: PipelineConfig,
    warehouse,
    executor: str | None = None,
    progress: bool = True,
    new_run: bool = False,
    **options,
) -> RunResult:
    """Run ``pipeline`` on its executor (or ``executor``): plan, skip if committed, run, commit once.

    ``options``: ExecutorConfig fields (workers, threads, gpu, reduce, ...) and executor
    resources (``client=`` a Dask client, ``spark=`` a SparkSession) to reuse.
    """
    started = time.time()
    resources = {k: options.pop(k) for k in ("client", "spark") if k in options}
    cfg = executor_config(pipeline, kind=executor, **options)
    pipeline.executor = cfg
    cls = executor_class(cfg.kind)
    if cfg.gpu and not cls.supports_gpu:
        raise PipelineConfigError(f"--gpu is not supported on the {cfg.kind} executor; use --executor dask or local")
    plan = plan_run(pipeline, warehouse)
    if not new_run:
        snap = committed_snapshot(warehouse, plan.run_id)
        if snap is not None:
            n = len(plan.shards)
            return RunResult(plan.run_id, plan.output_table, snap, 0, n, n, {}, already_committed=True)
    check_output_mode(pipeline, warehouse)
    runner = cls(cfg, warehouse, progress=progress, **resources)
    if cfg.gpu:
        plan.stages = runner.prepare_gpu_stages(plan.stages)
    with runner.session(plan):
        return execute_plan(plan, warehouse, cfg.kind, runner.run_shards, runner.reduce, progress=progress,
                            started=started)
