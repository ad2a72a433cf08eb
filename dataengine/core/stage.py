"""Stages: pure functions of an Arrow batch, with declared columns and parameters.

A stage sees only ``pa.Table`` in and ``pa.Table`` out, so the same stage runs unchanged
on the local process pool, on Dask and on Spark. Heavy resources (models) load once per
worker in :meth:`Stage.setup`.

Writing a stage::

        class WordCount(Stage):
        name = "word_count"
        version = "1"
        inputs = ("text",)

        class Params(StageParams):
            column: str = "word_count"

        def output_columns(self):
            return {self.params.column: pa.int32()}

        def process(self, batch):
            counts = pc.count_substring_regex(batch["text"], r"\\S+")
            return batch.append_column(self.params.column, counts.cast(pa.int32()))
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from dataengine.core.errors import PipelineConfigError


class StageParams(BaseModel):
    """Base of every stage's parameters: unknown keys and wrong types are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage:
    """Base class. Subclasses set ``name``, ``version``, ``inputs``, ``Params`` and ``process``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[StageParams]] = StageParams
    #: True for stages that may drop rows (filters); annotators keep every row.
    drops_rows: ClassVar[bool] = False

    def __init__(self, params: StageParams | dict | None = None):
        if params is None:
            params = {}
        if isinstance(params, dict):
            params = build_params(self.__class__, params)
        self.params = params
        self._ready = False

    # -- to override ---------------------------------------------------------------
    def output_columns(self) -> dict[str, pa.DataType]:
        """Columns this stage adds (or replaces), with their Arrow types."""
        return {}

    def required_columns(self) -> tuple[str, ...]:
        """Columns this stage reads; defaults to the class-level ``inputs``."""
        return tuple(self.inputs)

    def setup(self) -> None:
        """Load heavy resources once per worker. Raise StageError for a missing model."""

    def process(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    # -- used by executors -----------------------------------------------------------
    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.ensure_setup()
        return self.process(batch)

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this stage's output: name, version and parameters."""
        return {"stage": self.name, "version": self.version, "params": self.params.model_dump(mode="json")}

    def __getstate__(self):
        # Heavy resources are rebuilt by setup() in each worker, never pickled.
        return {"params": self.params}

    def __setstate__(self, state):
        self.params = state["params"]
        self._ready = False


def build_params(stage_cls: type[Stage], raw: dict) -> StageParams:
    """Validate raw parameters, naming the stage and field in the error."""
    try:
        return stage_cls.Params(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(params)"
            problems.append(f"{loc}: {err['msg']}")
        raise PipelineConfigError(f"stage {stage_cls.name!r}: bad parameter {'; '.join(problems)}") from None


def describe_params(stage_cls: type[Stage]) -> list[dict[str, str]]:
    """Parameter names, types and defaults, for `dataengine stages`."""
    out = []
    for name, info in stage_cls.Params.model_fields.items():
        if info.is_required():
            default = "required"
        else:
            value = info.get_default(call_default_factory=True)
            default = repr(value.model_dump() if hasattr(value, "model_dump") else value)
        out.append({"name": name, "type": type_name(info.annotation), "default": default, "help": info.description or ""})
    return out


def type_name(annotation) -> str:
    """A parameter's type as a person writes it: ``str``, ``int | None``, ``'a' | 'b'``, ``list[str]``."""
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


@dataclass
class StageStats:
    """Per-stage counters kept by executors and stored with the run."""

    rows_in: int = 0
    rows_out: int = 0
    errors: int = 0
    seconds: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    where: str | None = None  # a global stage's reduce: "driver (duckdb)", "dask shuffle", ...
    detail: dict | None = None  # a reduce's own counters: rounds, shuffle bytes

    def merge(self, other: "StageStats") -> None:
        self.where = self.where or other.where
        self.detail = self.detail or other.detail
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.errors += other.errors
        self.seconds += other.seconds
        room = 5 - len(self.error_samples)
        if room > 0:
            self.error_samples.extend(other.error_samples[:room])

    def to_dict(self) -> dict:
        out = {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "errors": self.errors,
            "seconds": round(self.seconds, 4),
            "error_samples": self.error_samples,
        }
        if self.where:
            out["where"] = self.where
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, raw: dict) -> "StageStats":
        return cls(raw["rows_in"], raw["rows_out"], raw["errors"], raw["seconds"], list(raw.get("error_samples", [])),
                   raw.get("where"), raw.get("detail"))


def _null_outputs(stage: Stage, rows: pa.Table) -> pa.Table:
    """The rows unchanged, with the stage's output columns set to null."""
    for col, dtype in stage.output_columns().items():
        nulls = pa.nulls(rows.num_rows, type=dtype)
        if col in rows.column_names:
            rows = rows.set_column(rows.column_names.index(col), col, nulls)
        else:
            rows = rows.append_column(col, nulls)
    return rows


def _conform_outputs(stage: Stage, out: pa.Table) -> pa.Table:
    """Cast declared output columns to their declared types; fail if one is missing."""
    for col, dtype in stage.output_columns().items():
        if col not in out.column_names:
            raise RuntimeError(f"stage {stage.name!r} did not produce its declared column {col!r}")
        current = out.column(col)
        if current.type != dtype:
            out = out.set_column(out.column_names.index(col), col, current.cast(dtype))
    return out


def run_stage_safely(stage: Stage, batch: pa.Table, stats: StageStats) -> pa.Table:
    """Run a stage on a batch; a failing batch is retried row by row.

    Rows whose processing raises keep their data with the stage's outputs set to null and
    are counted as errors, so one bad document never crashes a long run or loses a row.
    """
    start = time.perf_counter()
    stats.rows_in += batch.num_rows
    try:
        out = _conform_outputs(stage, stage(batch))
    except Exception:  # noqa: BLE001 - isolate the bad rows below
        pieces = []
        for i in range(batch.num_rows):
            row = batch.slice(i, 1)
            try:
                pieces.append(_conform_outputs(stage, stage(row)))
            except Exception as exc:  # noqa: BLE001
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    last = traceback.extract_tb(exc.__traceback__)[-1]
                    stats.error_samples.append(
                        f"{type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
                    )
                pieces.append(_null_outputs(stage, row))
        out = pa.concat_tables(pieces, promote_options="permissive") if pieces else _null_outputs(stage, batch)
    stats.rows_out += out.num_rows
    stats.seconds += time.perf_counter() - start
    return out
