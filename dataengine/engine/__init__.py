"""The engine: executors (local, dask, spark) behind one class, the driver loop, global reduces."""

from dataengine.engine.executor import Executor, run_pipeline

__all__ = ["Executor", "run_pipeline"]
