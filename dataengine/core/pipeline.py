"""Pipeline definitions (YAML or inline CLI) and their validation before any work starts.

A pipeline reads a source (a warehouse table at a snapshot, or files of a format), runs a
list of stages over every shard, and writes one output table as ONE new snapshot::

    name: annotate-demo
    source: {table: raw}                 # or {files: [data/*.jsonl], format: jsonl}
    stages:
      - text_stats
      - {name: sql_filter, params: {where: "text_words >= 5"}}
    output: {table: docs, mode: overwrite}
    executor: {kind: local, workers: 2}
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dataengine.core.errors import PipelineConfigError
from dataengine.core.registry import get_reader, get_stage
from dataengine.core.stage import Stage


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Strict):
    table: str | None = Field(None, description="warehouse table to read")
    version: int | None = Field(None, description="snapshot id; default: the current one")
    files: list[str] | None = Field(None, description="paths or globs (local, file:// or fsspec URLs)")
    format: str | None = Field(None, description="reader for files: jsonl, parquet, warc, ...")
    options: dict = Field(default_factory=dict, description="reader options")

    @model_validator(mode="after")
    def _one_kind(self):
        if bool(self.table) == bool(self.files):
            raise ValueError("give exactly one of source.table or source.files")
        if self.files and not self.format:
            self.format = guess_format(self.files[0])
        return self


class StageConfig(_Strict):
    name: str
    params: dict = Field(default_factory=dict)


class OutputConfig(_Strict):
    table: str
    mode: Literal["append", "overwrite"] | None = None


class ExecutorConfig(_Strict):
    kind: str = Field("local", description="executor: local (default), dask, spark, or an installed plugin")
    workers: int = Field(2, ge=1)
    # -- dask / spark (see docs/executors.md) --
    threads: int = Field(1, ge=1, description="threads per Dask worker")
    memory_limit: str | None = Field(None, description="memory per worker, e.g. '4GB' (dask) or '4g' (spark)")
    dask_scheduler: str | None = Field(None, description="tcp://host:port of a running scheduler; default: a LocalCluster")
    spark_master: str | None = Field(None, description="Spark master URL; default: local[workers]")
    listen: str = Field("127.0.0.1", description="address the servers a run starts listen on (Dask scheduler, "
                                                 "workers and dashboard; Spark driver); 0.0.0.0 opens them to the network")
    gpu: bool = Field(False, description="stages with a `gpu` parameter use their GPU path; on dask also "
                                         "dask_cuda.LocalCUDACluster and cuDF batches for stages with one")
    reduce: Literal["driver", "engine"] = Field(
        "driver", description="where global stages reduce: DuckDB on the driver, or a Dask/Spark shuffle"
    )
    reduce_partitions: int | None = Field(
        None, ge=1, description="partitions of each shuffle of an engine reduce (at most; steps over small "
                                 "relations use fewer); default: the number of shards"
    )
    retries: int = Field(3, ge=1, description="attempts per shard task before the run fails (dask/spark)")
    shards: int | None = Field(None, ge=1, description="partitions of a table source")
    rows_per_shard: int = Field(100_000, ge=1)
    batch_size: int = Field(2_000, ge=1)


class PipelineConfig(_Strict):
    name: str = "pipeline"
    source: SourceConfig
    stages: list[StageConfig | str] = Field(default_factory=list)
    output: OutputConfig
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    def stage_configs(self) -> list[StageConfig]:
        return [StageConfig(name=s) if isinstance(s, str) else s for s in self.stages]

    @property
    def write_mode(self) -> str:
        if self.output.mode:
            return self.output.mode
        # Annotating a table in place replaces its rows (old rows stay reachable by time travel).
        return "overwrite" if self.source.table and self.source.table == self.output.table else "append"


def guess_format(path: str) -> str:
    name = path.lower()
    for suffix, fmt in (
        (".jsonl", "jsonl"), (".jsonl.gz", "jsonl"), (".json.gz", "jsonl"), (".ndjson", "jsonl"),
        (".parquet", "parquet"), (".warc", "warc"), (".warc.gz", "warc"), (".arc.gz", "warc"),
        (".arc", "warc"),
    ):
        if name.endswith(suffix):
            return fmt
    raise PipelineConfigError(f"cannot tell the format of {path!r}: set source.format")


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "pipeline"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def load_pipeline(path: str | os.PathLike) -> PipelineConfig:
    """Parse and validate a pipeline YAML file (structure only; see :func:`build_stages`)."""
    path = Path(path)
    if not path.exists():
        raise PipelineConfigError(f"pipeline file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PipelineConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    return pipeline_from_dict(raw, origin=str(path))


def pipeline_from_dict(raw, origin: str = "pipeline") -> PipelineConfig:
    if not isinstance(raw, dict):
        raise PipelineConfigError(f"{origin}: a pipeline must be a mapping with source, stages and output")
    try:
        return PipelineConfig(**raw)
    except ValidationError as exc:
        raise PipelineConfigError(f"{origin}: {_format_validation_error(exc)}") from None


def parse_inline_stage(spec: str) -> StageConfig:
    """``name:key=value,key2=value2`` -> StageConfig; values are parsed as YAML scalars."""
    name, _, rest = spec.partition(":")
    params = {}
    if rest:
        for item in _split_params(rest):
            key, eq, value = item.partition("=")
            if not eq:
                raise PipelineConfigError(f"stage {name!r}: parameter {item!r} is not key=value")
            params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return StageConfig(name=name.strip(), params=params)


def _split_params(text: str) -> list[str]:
    """Split on commas that are outside quotes and brackets."""
    items, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if cur:
        items.append("".join(cur))
    return [i for i in items if i.strip()]


def build_stages(config: PipelineConfig) -> list[Stage]:
    """Instantiate every stage; unknown names and bad parameters fail here."""
    stages = []
    for sc in config.stage_configs():
        cls = get_stage(sc.name)
        stage = cls(sc.params)
        if config.executor.gpu and getattr(stage.params, "gpu", True) is False:
            # --gpu selects every stage's own GPU path (fuzzy_dedup's CuPy MinHash, ...)
            stage = cls(stage.params.model_copy(update={"gpu": True}))
        stages.append(stage)
    return stages


def check_columns(stages: list[Stage], source_columns: list[str]) -> None:
    """Fail before any work if a stage needs a column nothing upstream provides."""
    available = set(source_columns)
    for stage in stages:
        missing = [c for c in stage.required_columns() if c not in available]
        if missing:
            raise PipelineConfigError(
                f"stage {stage.name!r} needs column(s) {', '.join(missing)} which the source and "
                f"earlier stages do not provide (available: {', '.join(sorted(available))})"
            )
        available.update(stage.output_columns())


def check_text_column(stages: list[Stage], source_columns: list[str]) -> None:
    """Every document table has a ``text`` column: from the source or from a stage (extract)."""
    produced = set(source_columns)
    for stage in stages:
        produced |= set(stage.output_columns())
    if "text" not in produced:
        shown = ", ".join(c for c in source_columns[:20])
        raise PipelineConfigError(
            f"the output would have no `text` column: the source has {shown or 'no columns'}; name the field that "
            "holds the text (text_field / --text-field) or add a stage that extracts it"
        )


def expand_files(patterns: list[str]) -> list[str]:
    """Expand globs for local paths and fsspec URLs; a pattern matching nothing is an error."""
    files: list[str] = []
    for pattern in patterns:
        if pattern.startswith("file://"):
            pattern = pattern[len("file://") :]
        if "://" in pattern:
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(pattern)
            matched = sorted(fs.unstrip_protocol(p) for p in paths)
        else:
            matched = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) else (
                [pattern] if os.path.exists(pattern) else []
            )
            matched = [os.path.abspath(p) for p in matched if os.path.isfile(p)]
        if not matched:
            raise PipelineConfigError(f"no input file matches {pattern!r}")
        files.extend(matched)
    return files


def validate_reader(config: PipelineConfig):
    """The reader for a file source, with its options validated."""
    reader_cls = get_reader(config.source.format)
    return reader_cls(config.source.options)


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]
