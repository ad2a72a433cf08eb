"""The vocabulary of a global stage's reduce as a program of keyed steps.

A reduce that is more than one query (fuzzy dedup: band buckets, candidate edges, a
Jaccard check, connected components, labels) is written once, as a short Python program
that calls :meth:`ReducePlan.step` (see :meth:`dataengine.core.global_stage.GlobalStage.reduce_steps`).
Each step names its inputs, hash-partitions each input by a key column, and runs DuckDB SQL
(and optionally a Python function) on every partition, where the rows of all inputs with
equal keys meet. The engine decides what a partition is:

* the driver (``reduce: driver``): one DuckDB on this machine, every step sees whole
  relations (one partition; DuckDB spills to disk);
* Dask or Spark (``reduce: engine``): every step is one shuffle of the engine; the SQL runs
  in DuckDB inside each partition task; relations live as Parquet part files between
  steps, and the driver only ever sees file names and counts.

The step SQL must therefore only relate rows with equal keys (``GROUP BY``/``PARTITION BY``/
``JOIN`` on the key): then one partition and many give the same rows, which is what makes
every engine give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import pyarrow as pa

#: Step SQL: a ``SELECT`` over the step's input names, or ``f(con) -> SELECT`` for steps
#: that first run statements (temporary tables) on the partition's DuckDB connection ``con``.
StepSQL = Union[str, Callable[..., str]]


@dataclass(frozen=True)
class Relation:
    """The mapped rows or a step's result. Stages pass these around; engines look inside.

    ``location`` is engine-specific (a DuckDB table on the driver, Parquet part files on
    Dask/Spark); ``stats`` holds the step's counters summed over partitions.
    """

    name: str
    schema: pa.Schema
    rows: int
    location: object = None
    stats: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Input:
    """One input of a step: ``relation`` hash-partitioned by ``key``.

    ``sql`` (optional) is a row-local ``SELECT`` over the input's own name, run before the
    shuffle, where the data is: reshape and shrink rows there (unnest lists, drop columns).
    ``key`` names a column of its result (BIGINT or VARCHAR; every input of a step uses the
    same type); ``None`` sends every row to one partition.
    """

    relation: Relation
    key: str | None
    sql: str | None = None


class ReducePlan:
    """What a stage's :meth:`~dataengine.core.global_stage.GlobalStage.reduce_steps` program
    calls. Implemented by the engine (:mod:`dataengine.engine.reduce_plan`)."""

    #: The mapped shard files by shard index: a row's ``_pos`` is ``index << 32 | _row``.
    shard_files: list[str]

    def step(
        self,
        name: str,
        inputs: dict[str, Input],
        *,
        sql: StepSQL | None = None,
        fn: Callable[[pa.Table], pa.Table] | None = None,
        schema: pa.Schema | None = None,
        final: StepSQL | None = None,
        stats: dict[str, str] | None = None,
    ) -> Relation:
        """Run one keyed step; returns its result relation (empty when only ``final`` is given).

        ``sql``: the partition's result rows. ``fn``: a function of the ``sql`` result (or of
        the single input) run on each partition, i.e. on complete key groups (``schema`` is
        its output schema). ``final``: a query whose rows (``_shard``, ``_row`` and the
        stage's reduce output columns) become part of the reduce output. ``stats``: named
        ``SELECT``s of one number each, run after ``sql``, summed over partitions.
        """
        raise NotImplementedError

    def components(self, edges: Relation, max_rounds: int = 64) -> Relation:
        """Connected components of the undirected graph ``edges(a BIGINT, b BIGINT)``.

        Returns ``(node, comp)`` for every node with an edge, ``comp`` the smallest node of
        its component; nodes without edges are their own component and absent.
        """
        raise NotImplementedError

    def drop(self, relation: Relation) -> None:
        """Free a relation no later step reads (its files or table)."""
