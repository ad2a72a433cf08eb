"""``prismatic_select``: a subset for a budget that covers the sparse gradient clusters first.

Given the clusters of ``gradient_clusters``, rows are taken round by round: one row from
every cluster, sparsest cluster first, then a second row from every cluster that has one,
and so on until the budget is spent. A budget smaller than the number of clusters buys one
row from each of the sparsest clusters; a larger one fills clusters evenly (water-filling),
so dense regions stop dominating. Within a cluster the order is a seeded hash of the id.

Annotates, does not drop: ``<column>`` (bool) and ``<column>_rank`` (the pick order, 1 =
first); select with ``WHERE prismatic_selected``. A global stage whose reduce is one SQL
query. Rows without a cluster are never selected.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.stage import StageParams


class PrismaticSelectParams(StageParams):
    budget: int | None = Field(None, ge=1, description="rows to select")
    fraction: float | None = Field(None, gt=0, le=1, description="or: this share of the clustered rows")
    cluster_prefix: str = Field("grad", description="reads <cluster_prefix>_cluster and _cluster_size")
    id_column: str = "id"
    seed: int = Field(0, ge=0, description="order within a cluster")
    column: str = Field("prismatic_selected", pattern=r"^[a-z][a-z0-9_]*$")

    @model_validator(mode="after")
    def _one_budget(self):
        if (self.budget is None) == (self.fraction is None):
            raise ValueError("give exactly one of budget or fraction")
        return self


class PrismaticSelect(GlobalStage):
    name = "prismatic_select"
    version = "1"
    description = "budgeted subset covering sparse gradient clusters first: <column>, <column>_rank (global)"
    inputs = ("id", "grad_cluster", "grad_cluster_size")
    Params = PrismaticSelectParams

    def required_columns(self):
        p = self.params
        return (p.id_column, f"{p.cluster_prefix}_cluster", f"{p.cluster_prefix}_cluster_size")

    def map(self, batch: pa.Table) -> pa.Table:
        return batch

    def reduce_inputs(self):
        return self.required_columns()

    def reduce_output_columns(self):
        return {self.params.column: pa.bool_(), f"{self.params.column}_rank": pa.int64()}

    def reduce_sql(self, rows: str) -> str:
        p = self.params
        cluster = quote_ident(f"{p.cluster_prefix}_cluster")
        size = quote_ident(f"{p.cluster_prefix}_cluster_size")
        ident = quote_ident(p.id_column)
        budget = (str(int(p.budget)) if p.budget is not None
                  else f"(SELECT ceil({float(p.fraction)!r} * count(*)) FROM {rows} WHERE {cluster} IS NOT NULL)")
        column = quote_ident(p.column)
        rank = quote_ident(f"{p.column}_rank")
        return f"""
            WITH ranked AS (
                SELECT {SHARD_COL}, {ROW_COL}, {cluster} AS cluster, {size} AS size,
                       row_number() OVER (PARTITION BY {cluster}
                                          ORDER BY hash(CAST({ident} AS VARCHAR), {int(p.seed)}), {SHARD_COL}, {ROW_COL}) AS within
                FROM {rows} WHERE {cluster} IS NOT NULL),
            ordered AS (
                SELECT {SHARD_COL}, {ROW_COL},
                       row_number() OVER (ORDER BY within, size, cluster) AS pick FROM ranked)
            SELECT r.{SHARD_COL}, r.{ROW_COL}, coalesce(o.pick <= {budget}, false) AS {column}, o.pick AS {rank}
            FROM {rows} r LEFT JOIN ordered o USING ({SHARD_COL}, {ROW_COL})"""
