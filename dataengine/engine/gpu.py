"""GPU batches for stages that have a GPU path (Dask executor with ``--gpu``).

A stage opts in by defining ``process_gpu(df: cudf.DataFrame) -> cudf.DataFrame``; its
``process`` (Arrow, CPU) stays the reference implementation and what every other executor
runs. Under ``--gpu`` such a stage is wrapped so the worker hands it a cuDF frame built
from the Arrow batch and converts the result back; stages without a GPU path run on the CPU
unchanged. cudf and dask_cuda are imported lazily: neither is needed unless ``--gpu`` is set.
"""

from __future__ import annotations

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.core.stage import Stage

GPU_HINT = "the --gpu path needs RAPIDS: pip install 'dataengine[gpu]' (cudf-cu12, dask-cuda) on a CUDA machine"


def has_gpu_path(stage: Stage) -> bool:
    from dataengine.core.global_stage import GlobalStage

    return callable(getattr(stage, "process_gpu", None)) and not isinstance(stage, GlobalStage)


def import_cudf():
    try:
        import cudf  # noqa: PLC0415 - optional, GPU machines only
    except ImportError as exc:
        raise DataEngineError(f"cannot import cudf ({exc}); {GPU_HINT}") from None
    return cudf


def local_cuda_cluster(**kwargs):
    """A dask_cuda.LocalCUDACluster (one worker per visible GPU unless n_workers is given)."""
    try:
        from dask_cuda import LocalCUDACluster  # noqa: PLC0415
    except ImportError as exc:
        raise DataEngineError(f"cannot import dask_cuda ({exc}); {GPU_HINT}") from None
    import_cudf()
    return LocalCUDACluster(**kwargs)


class GpuBatches(Stage):
    """Runs ``stage.process_gpu`` on a cuDF copy of each batch; Arrow in, Arrow out."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.params = stage.params
        self.name = stage.name
        self.drops_rows = stage.drops_rows
        self._ready = False

    def required_columns(self):
        return self.stage.required_columns()

    def output_columns(self):
        return self.stage.output_columns()

    def fingerprint(self):
        return self.stage.fingerprint()

    def setup(self) -> None:
        self._cudf = import_cudf()
        self.stage.ensure_setup()

    def process(self, batch: pa.Table) -> pa.Table:
        frame = self._cudf.DataFrame.from_arrow(batch)
        return self.stage.process_gpu(frame).to_arrow()

    def __getstate__(self):
        return {"stage": self.stage}

    def __setstate__(self, state):
        self.__init__(state["stage"])


def gpu_stages(stages: list[Stage]) -> list[Stage]:
    """Wrap the stages that have a GPU path; leave the others (and global stages) as they are."""
    return [GpuBatches(s) if has_gpu_path(s) else s for s in stages]
