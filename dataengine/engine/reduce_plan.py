"""Running a global stage's keyed reduce steps: what every engine shares, and the driver's DuckDB.

A stage's :meth:`~dataengine.core.global_stage.GlobalStage.reduce_steps` program calls
``plan.step(...)`` (:mod:`dataengine.core.reduce_steps`). :class:`PlanBase` turns each call
into a :class:`StepSpec` (inputs, SQL, schemas worked out on the driver by running the SQL
over empty tables), reports progress, and keeps the per-step summary; a subclass says
where the step runs:

* :class:`DriverPlan` (here): one DuckDB connection on the driver; relations are DuckDB
  temporary tables (spilled to disk past the memory limit);
* :class:`dataengine.engine.shuffle_plan.ShufflePlan`: one Dask or Spark shuffle per step.

Connected components (:mod:`dataengine.engine.components`) are written on top of
``step``, so they run on every engine.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError
from dataengine.core.global_stage import POS_COL, ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.progress import StepProgress, reduce_progress
from dataengine.core.reduce_steps import Input, ReducePlan, Relation, StepSQL
from dataengine.engine.reduce import reduce_output_schema, run_reduce

#: Rows of one chunk when the driver runs a step's Python function (bounded memory).
DRIVER_FN_CHUNK_ROWS = 1_000_000
#: Column names the engines add to shuffled rows.
KEY_COL, TAG_COL = "_key", "_input"


def sql_str(text: str) -> str:
    return text.replace("'", "''")


def resolve_sql(sql: StepSQL, con) -> str:
    """A step's SQL: the string itself, or what the callable returns after its statements."""
    return sql(con) if callable(sql) else sql


# -- where a relation's rows come from, per file (the map side of a step) ------------------

@dataclass(frozen=True)
class MappedShards:
    """The mapped shard files of a global stage: ``_shard``, ``_row``, ``_pos`` + reduce columns."""

    index_of: dict[str, int]
    columns: tuple[str, ...]

    def file_sql(self, path: str) -> str:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        index = self.index_of[path]
        key = os.path.basename(path)[: -len(".parquet")]
        return (
            f"SELECT '{sql_str(key)}' AS {SHARD_COL}, CAST(file_row_number AS BIGINT) AS {ROW_COL}, "
            f"({index}::BIGINT << 32) | file_row_number AS {POS_COL}, {cols} "
            f"FROM read_parquet('{sql_str(path)}', file_row_number = true)"
        )


@dataclass(frozen=True)
class PartFiles:
    """Parquet part files written by an earlier step."""

    def file_sql(self, path: str) -> str:
        return f"SELECT * FROM read_parquet('{sql_str(path)}')"


@dataclass
class InputSpec:
    """One input of a step as the workers see it."""

    name: str
    key: str | None
    sql: str | None
    source: object  # MappedShards | PartFiles
    files: list[str]
    schema: pa.Schema  # after ``sql``: what the partition sees
    tasks: list[list[str]] = field(default_factory=list)  # files per map task (engines)


@dataclass
class StepSpec:
    """Everything a worker needs to run one step (pickled to the engines' tasks)."""

    key: str  # "s03": names its files
    label: str
    inputs: list[InputSpec]
    sql: StepSQL | None
    fn: Callable | None
    schema: pa.Schema | None  # of the result relation
    final: StepSQL | None
    final_schema: pa.Schema
    stats: dict[str, str] = field(default_factory=dict)
    out_dir: str = ""
    final_dir: str = ""


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def infer_schemas(inputs: dict[str, Input], sql, fn, schema) -> tuple[dict[str, pa.Schema], pa.Schema | None]:
    """Each input's schema after its map-side SQL, and the step's result schema, found by
    running the SQL over empty tables on the driver (no data is read)."""
    from dataengine.core.duck import new_connection

    con = new_connection()
    try:
        seen = {}
        for name, inp in inputs.items():
            con.register(f"{name}__raw", empty_table(inp.relation.schema))
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}__raw")
            if inp.sql:
                seen[name] = con.execute(inp.sql).to_arrow_table().schema
            else:
                seen[name] = inp.relation.schema
            if inp.key is not None and inp.key not in seen[name].names:
                raise DataEngineError(f"step input {name!r}: key column {inp.key!r} is not among {seen[name].names}")
        for name in inputs:
            con.execute(f"DROP VIEW {name}")
            con.register(name, empty_table(seen[name]))
        out = None
        if sql is not None:
            out = con.execute(resolve_sql(sql, con)).to_arrow_table().schema
        if fn is not None:
            out = schema
        return seen, out
    finally:
        con.close()


class PlanBase(ReducePlan):
    """Step bookkeeping shared by the driver and the engines; subclasses implement ``_run``."""

    where = ""

    def __init__(self, stage: GlobalStage | None, mapped_files: list[str], final_dir: str, progress: bool = False):
        self.stage = stage  # None: a plan for steps without final output (tests, tools)
        self.shard_files = list(mapped_files)
        self.files = [f for f in mapped_files if os.path.exists(f)]
        self.final_dir = final_dir
        self.final_schema = reduce_output_schema(stage) if stage is not None else None
        self.show_progress = progress
        self.steps: list[dict] = []
        self.rounds = 0
        self._count = 0
        self._bar = StepProgress(None, "")

    # -- the program's view -----------------------------------------------------------
    def rows_relation(self) -> Relation:
        """The mapped rows: ``_shard``, ``_row``, ``_pos`` and the stage's reduce columns."""
        source = MappedShards({p: i for i, p in enumerate(self.shard_files)}, tuple(self.stage.reduce_columns()))
        schema = self._mapped_schema(source)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)
        return Relation("rows", schema, rows, self._base_location(source))

    def step(self, name, inputs, *, sql=None, fn=None, schema=None, final=None, stats=None) -> Relation:
        if sql is None and fn is None and final is None:
            raise DataEngineError(f"reduce step {name!r} has neither sql, fn nor final")
        if fn is not None and schema is None:
            raise DataEngineError(f"reduce step {name!r}: a step with fn must declare its output schema")
        if fn is not None and sql is None and len(inputs) != 1:
            raise DataEngineError(f"reduce step {name!r}: fn without sql takes exactly one input")
        if final is not None and self.final_schema is None:
            raise DataEngineError(f"reduce step {name!r}: a plan without a stage has no final output")
        self._count += 1
        seen, out_schema = infer_schemas(inputs, sql, fn, schema)
        spec = StepSpec(
            key=f"s{self._count:02d}",
            label=name,
            inputs=[
                InputSpec(n, i.key, i.sql, self._source_of(i.relation), self._files_of(i.relation), seen[n])
                for n, i in inputs.items()
            ],
            sql=sql,
            fn=fn,
            schema=out_schema,
            final=final,
            final_schema=self.final_schema,
            stats=dict(stats or {}),
            final_dir=self.final_dir,
        )
        start = time.perf_counter()
        with self._bar.step(name) as info:
            relation, record = self._run(spec, inputs)
            record.update(step=name, seconds=round(time.perf_counter() - start, 3), rows=relation.rows,
                          has_result=spec.schema is not None)
            info["text"] = _describe(record)
        self.steps.append(record)
        return relation

    def load(self, name: str, files: list[str]) -> Relation:
        """A relation of existing Parquet files (a side input of a program, or a test's graph)."""
        if not files:
            raise DataEngineError(f"relation {name!r}: no files")
        schema = pq.read_schema(files[0])
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        return Relation(name, schema, rows, self._load_location(name, list(files)))

    def components(self, edges: Relation, max_rounds: int = 64) -> Relation:
        from dataengine.engine.components import connected_components

        labels, rounds = connected_components(self, edges, max_rounds)
        self.rounds += rounds
        return labels

    def run(self) -> dict:
        """Run the stage's program; returns the reduce's stats (rows in, steps, rounds, bytes)."""
        with reduce_progress(f"{self.stage.name}.reduce", enabled=self.show_progress) as bar:
            self._bar = bar
            try:
                rows = self.rows_relation()
                self.stage.reduce_steps(self, rows)
            finally:
                self._bar = StepProgress(None, "")
        return self.summary(rows.rows)

    def summary(self, rows_in: int) -> dict:
        out = {"rows": rows_in, "steps": self.steps}
        if self.rounds:
            out["rounds"] = self.rounds
        shuffled = [s["bytes_in"] for s in self.steps if s.get("bytes_in") is not None]
        if shuffled:
            out["shuffle_bytes"] = sum(shuffled)
        physical = [s["shuffle_bytes_physical"] for s in self.steps if s.get("shuffle_bytes_physical") is not None]
        if physical:
            out["shuffle_bytes_physical"] = sum(physical)
        return out

    # -- for subclasses ------------------------------------------------------------------
    def _mapped_schema(self, source: MappedShards) -> pa.Schema:
        from dataengine.core.duck import new_connection

        if not self.files:
            raise DataEngineError(f"global stage {self.stage.name!r}: no mapped rows to reduce")
        con = new_connection()
        try:
            return con.execute(f"SELECT * FROM ({source.file_sql(self.files[0])}) LIMIT 0").to_arrow_table().schema
        finally:
            con.close()

    def _base_location(self, source: MappedShards):
        raise NotImplementedError

    def _load_location(self, name: str, files: list[str]):
        raise NotImplementedError

    def _source_of(self, relation: Relation):
        raise NotImplementedError

    def _files_of(self, relation: Relation) -> list[str]:
        raise NotImplementedError

    def _run(self, spec: StepSpec, inputs: dict[str, Input]) -> tuple[Relation, dict]:
        raise NotImplementedError


def _describe(record: dict) -> str:
    parts = [f"{record['rows']:,} rows"] if record["has_result"] else []
    if record.get("final_rows"):
        parts.append(f"{record['final_rows']:,} output rows")
    for name, value in record.get("stats", {}).items():
        parts.append(f"{name} {value:,}")
    if record.get("bytes_in") is not None:
        parts.append(f"{record['bytes_in'] / 2**20:,.1f} MiB shuffled")
    return ", ".join(parts)


# -- the embedded default: every step in one DuckDB on the driver ------------------------

class DriverPlan(PlanBase):
    """Every step over whole relations in one DuckDB connection (one partition per step)."""

    where = "driver (duckdb)"

    def __init__(self, stage, mapped_files, final_dir, progress=False, memory_limit: str | None = None):
        from dataengine.core.duck import new_connection

        super().__init__(stage, mapped_files, final_dir, progress)
        self.con = new_connection()
        self.con.execute("SET enable_progress_bar = false")  # the plan shows its own, step by step
        self.con.execute(f"SET temp_directory = '{sql_str(os.path.join(final_dir, '.spill'))}'")
        if memory_limit:  # default: DuckDB's (80% of RAM); it spills to temp_directory past it
            self.con.execute(f"SET memory_limit = '{sql_str(memory_limit)}'")
        self.con.execute("SET preserve_insertion_order = false")

    def close(self) -> None:
        import shutil

        self.con.close()
        shutil.rmtree(os.path.join(self.final_dir, ".spill"), ignore_errors=True)

    def _base_location(self, source: MappedShards) -> str:
        con = self.con
        con.register("_shard_files", pa.table({"filename": self.files,
                                                "idx": [source.index_of[f] for f in self.files]}))
        con.execute("CREATE OR REPLACE TEMP TABLE shard_files AS SELECT * FROM _shard_files")
        con.unregister("_shard_files")
        cols = ", ".join(f"r.{quote_ident(c)}" for c in source.columns)
        file_list = "[" + ", ".join(f"'{sql_str(f)}'" for f in self.files) + "]"
        con.execute(
            f"""CREATE OR REPLACE TEMP VIEW mapped_rows AS
                SELECT regexp_extract(r.filename, '([^/]+)\\.parquet$', 1) AS {SHARD_COL},
                       CAST(r.file_row_number AS BIGINT) AS {ROW_COL},
                       (s.idx::BIGINT << 32) | r.file_row_number AS {POS_COL}, {cols}
                FROM read_parquet({file_list}, filename = true, file_row_number = true) r
                JOIN shard_files s ON s.filename = r.filename"""
        )
        return "mapped_rows"

    def _load_location(self, name, files):
        file_list = "[" + ", ".join(f"'{sql_str(f)}'" for f in files) + "]"
        self._count += 1
        table = f"loaded_{self._count:02d}"
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_parquet({file_list})")
        return table

    def _source_of(self, relation):
        return None

    def _files_of(self, relation):
        return []

    def _views(self, spec: StepSpec, inputs: dict[str, Input], chunk: tuple[int, int] | None = None) -> None:
        for inp in spec.inputs:
            table = inputs[inp.name].relation.location
            body = inp.sql or f"SELECT * FROM {inp.name}"
            view = f"WITH {inp.name} AS (SELECT * FROM {table}) {body}"
            if chunk is not None and inp.key is not None:
                view = f"SELECT * FROM ({view}) WHERE hash({quote_ident(inp.key)}) % {chunk[1]} = {chunk[0]}"
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {inp.name} AS {view}")

    def _run(self, spec, inputs):
        con = self.con
        table = f"step_{spec.key}"
        record: dict = {"stats": {}}
        if spec.fn is not None:
            rows_in = sum(inputs[i.name].relation.rows for i in spec.inputs)
            chunks = max(1, math.ceil(rows_in / DRIVER_FN_CHUNK_ROWS))
            if any(i.key is None for i in spec.inputs):
                chunks = 1
            con.register("_empty_out", empty_table(spec.schema))
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM _empty_out")
            con.unregister("_empty_out")
            for chunk in range(chunks):
                self._views(spec, inputs, (chunk, chunks) if chunks > 1 else None)
                source = con.execute(resolve_sql(spec.sql, con)).to_arrow_table() if spec.sql else \
                    con.execute(f"SELECT * FROM {spec.inputs[0].name}").to_arrow_table()
                out = spec.fn(source).select(spec.schema.names).cast(spec.schema)
                con.register("_chunk_out", out)
                con.execute(f"INSERT INTO {table} SELECT * FROM _chunk_out")
                con.unregister("_chunk_out")
                self._add_stats(spec, record)
        else:
            self._views(spec, inputs)
            if spec.sql is not None:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {resolve_sql(spec.sql, con)}")
            self._add_stats(spec, record)
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if spec.schema is not None else 0
        if spec.final is not None:
            if spec.fn is not None:  # the final query reads whole inputs, not the last chunk
                self._views(spec, inputs)
            names = ", ".join(quote_ident(c) for c in spec.final_schema.names)
            written = con.execute(
                f"COPY (SELECT {names} FROM ({resolve_sql(spec.final, con)})) TO '{sql_str(self.final_dir)}' "
                f"(FORMAT parquet, PARTITION_BY ({SHARD_COL}), FILENAME_PATTERN '{spec.key}-{{i}}', OVERWRITE_OR_IGNORE)"
            ).fetchone()[0]
            record["final_rows"] = int(written)
        schema = spec.schema or pa.schema([])
        return Relation(spec.label, schema, int(rows), table if spec.schema is not None else None, record["stats"]), record

    def _add_stats(self, spec: StepSpec, record: dict) -> None:
        for name, query in spec.stats.items():
            value = self.con.execute(query).fetchone()[0]
            record["stats"][name] = record["stats"].get(name, 0) + int(value or 0)

    def drop(self, relation: Relation) -> None:
        if relation.location and relation.location != "mapped_rows":
            self.con.execute(f"DROP TABLE IF EXISTS {relation.location}")


def reduce_on_driver(stage: GlobalStage, mapped_files: list[str], out_dir: str, progress: bool = False,
                     memory_limit: str | None = None) -> dict:
    """The embedded default: the stage's reduce steps in one DuckDB (out of core) on this machine."""

    def body(files: list[str], tmp: str) -> dict:
        plan = DriverPlan(stage, mapped_files, tmp, progress, memory_limit)
        try:
            return plan.run()
        finally:
            plan.close()

    return run_reduce(DriverPlan.where, mapped_files, out_dir, body)
