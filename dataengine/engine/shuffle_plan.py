"""Reduce steps as Dask or Spark shuffles: the driver sees file names and counts, never rows.

One step (:class:`dataengine.engine.reduce_plan.StepSpec`) on an engine:

1. **map side**, one task per input file (:func:`map_side_table`): DuckDB reads the file
   (only the columns the input's SQL uses) and runs the input's row-local SQL; each input's
   columns are prefixed ``<input>__`` so inputs with the same column names can travel in one
   shuffle, and when a step has several inputs they also get the shuffle key ``_key`` and
   their tag ``_input``;
2. **the engine's shuffle** hash-partitions the union of all inputs by the key
   (Dask ``DataFrame.shuffle``, P2P; Spark ``repartition(n, key)``), so the rows of every
   input with equal keys meet in one partition;
3. **partition task** (:func:`run_partition`): splits the partition back into its inputs,
   runs the step's SQL in DuckDB (and its Python function), writes the result as
   ``<work>/<step>/part-<p>.parquet`` and any final rows as ``_shard=<key>/<step>-<p>.parquet``
   of the reduce output, and returns a small dict of counts.

Task outputs have deterministic names, so a retried task overwrites its own files.
A backend (:class:`ShuffleBackend`) is the ~40 lines that say how an engine does 1-3.
"""

from __future__ import annotations

import math
import os
import shutil
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataengine.core.errors import DataEngineError
from dataengine.core.global_stage import GlobalStage
from dataengine.core.reduce_steps import Input, Relation
from dataengine.engine.reduce import run_reduce, write_reduce_partition
from dataengine.engine.reduce_plan import (
    KEY_COL,
    TAG_COL,
    MappedShards,
    PartFiles,
    PlanBase,
    StepSpec,
    resolve_sql,
)


class ShuffleBackend:
    """How an engine runs one step: map tasks, a shuffle by ``_key``, partition tasks."""

    where = ""

    def run(self, spec: StepSpec, partitions: int) -> list[dict]:
        """Run ``spec`` with ``partitions`` shuffle partitions; the partition tasks' dicts."""
        raise NotImplementedError

    def physical_shuffle_bytes(self) -> int | None:
        """Bytes the engine itself moved in its shuffles so far (cumulative), if it says."""
        return None


# -- worker side -------------------------------------------------------------------------

def transport_type(dtype: pa.DataType) -> pa.DataType:
    """The type a column travels as: unsigned integers (also inside lists and structs) as the
    signed type of the same width, bit for bit. Spark has no unsigned types; the partition
    casts them back, so stages never see the difference."""
    if pa.types.is_unsigned_integer(dtype):
        return {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[dtype.bit_width]
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = transport_type(dtype.value_type)
        return pa.list_(inner) if pa.types.is_list(dtype) else pa.large_list(inner)
    if pa.types.is_struct(dtype):
        return pa.struct([pa.field(f.name, transport_type(f.type), f.nullable) for f in dtype])
    if pa.types.is_large_string(dtype):
        return pa.string()
    return dtype


def tagged(spec: StepSpec) -> bool:
    """Whether shuffled rows carry ``_key`` and ``_input``: only when they must (several
    inputs, or one without a key); a single keyed input shuffles on its own key column."""
    return len(spec.inputs) > 1 or spec.inputs[0].key is None


def shuffle_column(spec: StepSpec) -> str:
    """The column the engine hash-partitions on."""
    if tagged(spec):
        return KEY_COL
    inp = spec.inputs[0]
    return f"{inp.name}__{inp.key}"


def shuffled_schema(spec: StepSpec, tag: int) -> pa.Schema:
    """Schema of input ``tag``'s rows in the shuffle: prefixed columns (+ ``_key``, ``_input``)."""
    inp = spec.inputs[tag]
    fields = [pa.field(f"{inp.name}__{f.name}", transport_type(f.type)) for f in inp.schema]
    if tagged(spec):
        fields += [pa.field(KEY_COL, key_type_of(spec)), pa.field(TAG_COL, pa.int8())]
    return pa.schema(fields)


def key_type_of(spec: StepSpec) -> pa.DataType:
    types = {inp.schema.field(inp.key).type for inp in spec.inputs if inp.key is not None}
    if len(types) > 1:
        raise DataEngineError(f"reduce step {spec.label!r}: inputs have keys of different types {types}")
    return transport_type(types.pop()) if types else pa.int64()


def map_side_table(paths: list[str], spec: StepSpec, tag: int) -> pa.Table:
    """Input ``tag``'s rows of one map task's files, ready for the shuffle (module docstring)."""
    from dataengine.core.duck import new_connection

    inp = spec.inputs[tag]
    con = new_connection()
    parts = []
    try:
        con.execute("SET threads = 1; SET enable_progress_bar = false")
        for path in paths:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {inp.name} AS {inp.source.file_sql(path)}")
            parts.append(con.execute(inp.sql or f"SELECT * FROM {inp.name}").to_arrow_table())
    finally:
        con.close()
    table = pa.concat_tables([t.select(inp.schema.names).cast(inp.schema) for t in parts]) if parts \
        else inp.schema.empty_table()
    schema = shuffled_schema(spec, tag)
    columns = [col.cast(f.type, safe=False) for col, f in zip(table.columns, schema)]
    if tagged(spec):
        n = table.num_rows
        key_type = schema.field(KEY_COL).type
        if inp.key is not None:
            key = table.column(inp.key).cast(key_type, safe=False)
        else:
            key = pa.array([0] * n, key_type) if pa.types.is_integer(key_type) else pa.array([""] * n, key_type)
        columns += [key, pa.array([tag] * n, pa.int8())]
    return pa.Table.from_arrays(columns, schema=schema)


def split_inputs(table: pa.Table, spec: StepSpec) -> dict[str, pa.Table]:
    """A shuffled partition back as one table per input, with the input's own column names."""
    out = {}
    tags = table.column(TAG_COL) if table.num_rows and len(spec.inputs) > 1 else None
    for tag, inp in enumerate(spec.inputs):
        part = table
        if tags is not None:
            part = table.filter(pc.equal(tags, tag))
        names = [f"{inp.name}__{f.name}" for f in inp.schema]
        part = part.select(names).rename_columns(inp.schema.names)
        out[inp.name] = part.cast(inp.schema, safe=False)  # unsigned columns back (transport_type)
    return out


def run_partition(table: pa.Table, spec: StepSpec, pid: int) -> dict:
    """Run ``spec`` on one shuffled partition; write its files; return its counts."""
    from dataengine.core.duck import new_connection

    start = time.perf_counter()
    record = {"pid": pid, "rows_in": table.num_rows, "bytes_in": table.nbytes, "rows": 0, "file": None,
              "final_rows": 0, "stats": {}}
    inputs = split_inputs(table, spec)
    con = new_connection()
    try:
        con.execute("SET threads = 1; SET enable_progress_bar = false")
        for name, part in inputs.items():
            con.register(name, part)
        if spec.sql is not None or spec.fn is not None:
            out = con.execute(resolve_sql(spec.sql, con)).to_arrow_table() if spec.sql is not None \
                else inputs[spec.inputs[0].name]
            if spec.fn is not None:
                out = spec.fn(out)
            out = out.select(spec.schema.names).cast(spec.schema)
            if out.num_rows:
                path = os.path.join(spec.out_dir, f"part-{pid:05d}.parquet")
                pq.write_table(out, path + ".tmp")
                os.replace(path + ".tmp", path)
                record["file"], record["rows"] = path, out.num_rows
        for name, query in spec.stats.items():
            record["stats"][name] = int(con.execute(query).fetchone()[0] or 0)
        if spec.final is not None:
            result = con.execute(resolve_sql(spec.final, con)).to_arrow_table()
            result = result.select(spec.final_schema.names).cast(spec.final_schema)
            record["final_rows"] = write_reduce_partition(result, spec.final_dir, f"{spec.key}-{pid:05d}")
    finally:
        con.close()
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


# -- driver side -------------------------------------------------------------------------

#: A step over intermediate relations gets one partition (and one map task) per this many
#: input rows, at most ``partitions``: the components rounds over a few million edges then
#: run as a few tasks, not one per shard. Steps that read the mapped shards use ``partitions``.
ROWS_PER_TASK = 500_000


class ShufflePlan(PlanBase):
    """Each step is one shuffle of ``backend``; relations are Parquet part files under ``work_dir``."""

    def __init__(self, stage: GlobalStage, backend: ShuffleBackend, mapped_files: list[str], final_dir: str,
                 partitions: int, progress: bool = False):
        super().__init__(stage, mapped_files, final_dir, progress)
        self.backend = backend
        self.where = backend.where
        self.partitions = max(1, partitions)
        self.work_dir = os.path.join(final_dir, ".steps")
        os.makedirs(self.work_dir, exist_ok=True)

    def _base_location(self, source: MappedShards):
        return (source, list(self.files))

    def _load_location(self, name, files):
        return (PartFiles(), files)

    def _source_of(self, relation: Relation):
        return relation.location[0] if relation.location else PartFiles()

    def _files_of(self, relation: Relation) -> list[str]:
        return list(relation.location[1]) if relation.location else []

    def _run(self, spec: StepSpec, inputs: dict[str, Input]):
        schema = spec.schema or pa.schema([])
        empty = all(not inp.files for inp in spec.inputs)
        record: dict = {"stats": {name: 0 for name in spec.stats}, "final_rows": 0, "bytes_in": 0,
                        "partitions": 0}
        if empty:  # nothing to shuffle: the result is empty too (steps relate rows; none)
            return Relation(spec.label, schema, 0, None, record["stats"]), record
        spec.out_dir = os.path.join(self.work_dir, spec.key)
        os.makedirs(spec.out_dir, exist_ok=True)
        partitions = self._size_tasks(spec, inputs)
        before = self.backend.physical_shuffle_bytes()
        parts = self.backend.run(spec, partitions)
        after = self.backend.physical_shuffle_bytes()
        files = sorted(p["file"] for p in parts if p["file"])
        for p in parts:
            for name, value in p["stats"].items():
                record["stats"][name] = record["stats"].get(name, 0) + value
        record.update(
            final_rows=sum(p["final_rows"] for p in parts),
            bytes_in=sum(p["bytes_in"] for p in parts),
            partitions=len(parts),
            largest_partition_rows=max((p["rows_in"] for p in parts), default=0),
        )
        if before is not None and after is not None:
            record["shuffle_bytes_physical"] = after - before
        rows = sum(p["rows"] for p in parts)
        location = (PartFiles(), files) if spec.schema is not None else None
        return Relation(spec.label, schema, rows, location, record["stats"]), record

    def _size_tasks(self, spec: StepSpec, inputs: dict[str, Input]) -> int:
        """Group each input's files into map tasks; return the step's partition count."""
        rows_in = 0
        reads_shards = False
        for inp in spec.inputs:
            rows = inputs[inp.name].relation.rows
            rows_in += rows
            if isinstance(inp.source, MappedShards):
                reads_shards = True
                inp.tasks = [[f] for f in inp.files]
            else:
                n = min(len(inp.files), max(1, math.ceil(rows / ROWS_PER_TASK)))
                inp.tasks = [inp.files[i::n] for i in range(n)] if n else []
        if all(i.key is None for i in spec.inputs):
            return 1
        if reads_shards:
            return self.partitions
        return min(self.partitions, max(1, math.ceil(rows_in / ROWS_PER_TASK)))

    def drop(self, relation: Relation) -> None:
        if relation.location and isinstance(relation.location[0], PartFiles):
            for path in relation.location[1]:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


def reduce_on_engine(backend: ShuffleBackend, stage: GlobalStage, mapped_files: list[str], out_dir: str,
                     partitions: int, progress: bool = False) -> dict:
    """A global stage's reduce program with every step a shuffle of ``backend``."""

    def body(files: list[str], tmp: str) -> dict:
        plan = ShufflePlan(stage, backend, mapped_files, tmp, partitions, progress)
        try:
            return plan.run()
        finally:
            plan.close()

    return run_reduce(backend.where, mapped_files, out_dir, body)
