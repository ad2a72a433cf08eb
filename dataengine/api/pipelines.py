"""Pipelines as Python objects or YAML, run on any executor; stage discovery.

    from dataengine import pipeline, run, stage
    p = pipeline(source="raw", stages=["text_stats", stage("heuristics", presets=["gopher"])], to="raw")
    result = run(wh, p, executor="dask", workers=4)

``pipeline()`` builds the same validated config a YAML file gives, so a pipeline written in
Python and one loaded from YAML run identically (and resume and skip alike).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from dataengine.core.errors import PipelineConfigError
from dataengine.core.pipeline import PipelineConfig, load_pipeline, parse_inline_stage, pipeline_from_dict
from dataengine.core.registry import stages as stage_registry
from dataengine.core.stage import Stage, describe_params
from dataengine.engine import run_pipeline
from dataengine.engine.base import RunResult
from dataengine.engine.dry_run import describe_plan
from dataengine.api.warehouse import as_warehouse

StageLike = str | dict | Stage
_TABLE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")


def stage(name: str, **params) -> Stage:
    """A configured stage by registry name: ``stage("langid", min_score=0.5)``."""
    return stage_registry.get(name)(params)


def _stage_entry(item: StageLike) -> dict | str:
    if isinstance(item, Stage):
        return {"name": item.name, "params": item.params.model_dump(mode="json")}
    if isinstance(item, str):
        return parse_inline_stage(item).model_dump() if ":" in item else item
    if isinstance(item, dict):
        return item
    raise PipelineConfigError(f"a stage is a name, 'name:key=value', a dict or a Stage, not {type(item).__name__}")


def _source_entry(source: str | dict | Iterable[str], fmt: str | None, options: dict | None) -> dict:
    if isinstance(source, dict):
        return source
    if isinstance(source, (list, tuple)):
        files = [str(s) for s in source]
    elif isinstance(source, os.PathLike) or not _TABLE_NAME.match(str(source)):
        files = [str(source)]
    else:
        return {"table": str(source)}  # a bare name is a table; give a Path or a list for a file named like one
    out: dict[str, Any] = {"files": files}
    if fmt:
        out["format"] = fmt
    if options:
        out["options"] = options
    return out


def pipeline(
    source: str | dict | Iterable[str],
    stages: Iterable[StageLike] = (),
    to: str | None = None,
    mode: str | None = None,
    name: str | None = None,
    format: str | None = None,
    reader_options: dict | None = None,
    **executor,
) -> PipelineConfig:
    """Build a validated pipeline: a table name or files as ``source``, stages, an output table.

    ``executor`` keys are the YAML ``executor:`` block (kind, workers, shards, batch_size, ...).
    """
    if not to:
        raise PipelineConfigError("a pipeline needs an output table: to='TABLE'")
    src = _source_entry(source, format, reader_options)
    raw: dict[str, Any] = {
        "name": name or f"{src.get('table') or 'files'}->{to}",
        "source": src,
        "stages": [_stage_entry(s) for s in stages],
        "output": {"table": to, **({"mode": mode} if mode else {})},
    }
    if executor:
        raw["executor"] = executor
    return pipeline_from_dict(raw, origin="pipeline()")


def as_pipeline(spec: PipelineConfig | dict | str | os.PathLike) -> PipelineConfig:
    """A pipeline from a config, a dict (the YAML's structure) or a YAML path."""
    if isinstance(spec, PipelineConfig):
        return spec
    if isinstance(spec, dict):
        return pipeline_from_dict(spec)
    return load_pipeline(Path(spec))


def run(
    wh,
    spec: PipelineConfig | dict | str | os.PathLike,
    executor: str | None = None,
    progress: bool = True,
    new_run: bool = False,
    **options,
) -> RunResult:
    """Run a pipeline (object, dict or YAML path) and commit its output as ONE snapshot.

    A run that already committed is not repeated (``new_run=True`` forces it); a killed run
    resumes where it stopped. ``options``: executor settings (workers, threads, gpu, reduce,
    shards, dask_scheduler, spark_master, ...) and ``client=``/``spark=`` to reuse a Dask
    client or Spark session.
    """
    wh = as_warehouse(wh)
    pipe = as_pipeline(spec)
    return run_pipeline(pipe, wh, executor=executor, progress=progress, new_run=new_run, **options)


def plan(wh, spec: PipelineConfig | dict | str | os.PathLike, **options) -> str:
    """What :func:`run` would do (shards, stages, executor), without reading or writing data."""
    from dataengine.engine.driver import override_executor

    pipe = as_pipeline(spec)
    override_executor(pipe, **options)
    return describe_plan(pipe, as_warehouse(wh))


@dataclass
class StageInfo:
    """What ``dataengine stages`` shows for one installed stage."""

    name: str
    version: str
    description: str
    reads: list[str]
    writes: list[str] | None  # None: depends on the parameters
    params: list[dict[str, str]]
    package: str
    global_stage: bool


def list_stages() -> list[StageInfo]:
    """Every installed stage (dataengine's and plugins'), with parameters and columns."""
    from dataengine.core.global_stage import GlobalStage

    out = []
    for name, cls in stage_registry.all().items():
        try:
            writes = list(cls().output_columns())
        except Exception:  # noqa: BLE001 - required parameters: columns depend on them
            writes = None
        out.append(StageInfo(name, cls.version, cls.description, list(cls.inputs), writes, describe_params(cls),
                             stage_registry.distribution(name) or stage_registry.origin(name),
                             issubclass(cls, GlobalStage)))
    return out
