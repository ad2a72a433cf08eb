"""Executors run a pipeline's stages over shards: local (process pool), dask, spark."""

from __future__ import annotations

from dataengine.errors import PipelineConfigError


def run_pipeline(pipeline, warehouse, executor: str | None = None, progress: bool = True, **options):
    """Run ``pipeline`` on the named executor (default: the pipeline's own setting)."""
    kind = executor or pipeline.executor.kind
    if kind == "local":
        from dataengine.executors.local import run_local

        return run_local(pipeline, warehouse, progress=progress, **options)
    if kind == "dask":
        from dataengine.executors.dask_executor import run_dask

        return run_dask(pipeline, warehouse, progress=progress, **options)
    if kind == "spark":
        from dataengine.executors.spark_executor import run_spark

        return run_spark(pipeline, warehouse, progress=progress, **options)
    raise PipelineConfigError(f"unknown executor {kind!r}: available: local, dask, spark")
