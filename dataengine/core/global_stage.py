"""Global stages: stages whose output for one row depends on other rows (dedup, calibration).

A global stage runs in three steps, the same on every executor:

1. **map** (per batch, on the workers, like any stage): add the columns the reduce needs,
   e.g. a content hash. The mapped shard files are staged like any shard output.
2. **reduce** (once, over the mapped rows of *all* shards): DuckDB SQL
   (:meth:`GlobalStage.reduce_duckdb`; by default the one query of ``reduce_sql``) over a
   relation ``rows`` holding ``_shard``, ``_row`` (the row's position in its shard file),
   ``_pos`` (``shard index << 32 | _row``: a BIGINT naming the row on every executor),
   :meth:`GlobalStage.reduce_inputs` and the map columns. It returns one row per input row:
   ``_shard``, ``_row`` and the reduce's output columns. It runs in DuckDB on the driver
   (the embedded default; DuckDB spills to disk) or, with ``reduce: engine``, as a
   Dask/Spark shuffle: rows are hash-partitioned by ``reduce_key`` and the *same* SQL runs
   in DuckDB on each partition, so the SQL must only compare rows with equal keys.
   A reduce that needs several shuffles (fuzzy dedup) overrides
   :meth:`GlobalStage.reduce_steps` with a program of keyed steps
   (:mod:`dataengine.core.reduce_steps`), which runs unchanged on the driver and on the engines.
3. **apply** (per shard, on the workers): each shard file is read back with its reduce
   output attached by row position; the stages after the global stage then run on it.

The reduce output is written as ``<dir>/_shard=<key>/*.parquet`` (hive layout), which
DuckDB's ``PARTITION_BY``, Dask and Spark all produce, so the apply step does not care who
ran the reduce.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from dataengine.core.errors import DataEngineError
from dataengine.core.reduce_steps import Input, ReducePlan, Relation
from dataengine.core.stage import Stage

SHARD_COL = "_shard"
ROW_COL = "_row"
POS_COL = "_pos"


class GlobalStage(Stage):
    """Base class of stages with a whole-table reduce step. See the module docstring."""

    #: Column whose equal values form independent groups (the shuffle key of a distributed
    #: reduce). ``None``: the reduce needs all rows at once and runs as one partition.
    reduce_key: ClassVar[str | None] = None

    def map_columns(self) -> dict[str, pa.DataType]:
        """Columns :meth:`map` adds; those not in :meth:`output_columns` are dropped after the reduce."""
        return {}

    def map(self, batch: pa.Table) -> pa.Table:
        raise NotImplementedError

    def reduce_inputs(self) -> tuple[str, ...]:
        """Columns of the mapped rows the reduce SQL reads (map columns are always included)."""
        return ()

    def reduce_output_columns(self) -> dict[str, pa.DataType]:
        """Columns the reduce SQL returns besides ``_shard`` and ``_row``."""
        return {}

    def reduce_sql(self, rows: str) -> str:
        """``SELECT _shard, _row, <outputs> FROM {rows} ...``: one output row per input row."""
        raise NotImplementedError

    def reduce_duckdb(self, con, rows: str) -> str:
        """Hook for reduces that need several statements (temp tables, iterations) before
        their final SELECT, run on ``con``; the default is :meth:`reduce_sql`'s one query."""
        return self.reduce_sql(rows)

    def reduce_steps(self, plan: ReducePlan, rows: Relation) -> None:
        """The reduce as keyed steps (see :mod:`dataengine.core.reduce_steps`).

        The default is one step: ``rows`` partitioned by ``reduce_key`` (one partition when
        it is ``None``), :meth:`reduce_duckdb` on each partition, its rows the output.
        """
        plan.step("reduce", {"rows": Input(rows, self.reduce_key)}, final=self._reduce_query)

    def _reduce_query(self, con) -> str:
        return self.reduce_duckdb(con, "rows")

    def output_columns(self) -> dict[str, pa.DataType]:
        out = {k: v for k, v in self.map_columns().items() if not k.startswith("_")}
        out.update(self.reduce_output_columns())
        return out

    def process(self, batch: pa.Table) -> pa.Table:
        raise DataEngineError(f"global stage {self.name!r} has no per-batch process(); executors run map/reduce/apply")

    # -- helpers used by the executors ------------------------------------------------
    def reduce_columns(self) -> list[str]:
        cols = list(self.reduce_inputs())
        cols += [c for c in self.map_columns() if c not in cols]
        return cols

    def private_columns(self) -> list[str]:
        return [c for c in self.map_columns() if c not in self.output_columns()]


def is_global(stage: Stage) -> bool:
    return isinstance(stage, GlobalStage)


class GlobalMapStep(Stage):
    """The map step of a global stage, wrapped as an ordinary per-batch stage."""

    def __init__(self, stage: GlobalStage):
        self.stage = stage
        self.params = stage.params
        self.name = f"{stage.name}.map"
        self._ready = False

    def required_columns(self):
        return self.stage.required_columns()

    def output_columns(self):
        return self.stage.map_columns()

    def setup(self) -> None:
        self.stage.ensure_setup()

    def process(self, batch: pa.Table) -> pa.Table:
        return self.stage.map(batch)

    def fingerprint(self):
        return self.stage.fingerprint()

    def __getstate__(self):
        return {"stage": self.stage}

    def __setstate__(self, state):
        self.__init__(state["stage"])


def quote_ident(name: str) -> str:
    """A column name as a DuckDB identifier (for the reduce SQL a stage writes)."""
    return '"' + name.replace('"', '""') + '"'
