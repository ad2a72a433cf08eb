"""``gradient_clusters``: k-means over the rows' proxy gradients, cluster ids and sizes as columns.

A global stage (k-means needs every row): the map step passes rows through, the reduce
fetches the gradient vectors from the mapped shards in DuckDB, fits k-means (scikit-learn;
cuML with ``gpu``; mini-batch k-means streamed in two passes when there are more than
``max_rows_in_memory`` vectors) and returns per row ``<prefix>_cluster`` and
``<prefix>_cluster_size``. Small clusters are the *sparse* regions of gradient space that
``prismatic_select`` and ``dataengine generate prismatic`` aim at. Rows without a gradient
get nulls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.stage import StageParams


class GradientClustersParams(StageParams):
    column: str = Field("proxy_grad", description="the gradient column (proxy_gradients' output)")
    k: int = Field(64, ge=1, description="clusters (capped at the number of distinct vectors)")
    seed: int = Field(0, ge=0)
    prefix: str = Field("grad", pattern=r"^[a-z][a-z0-9_]*$", description="columns <prefix>_cluster, <prefix>_cluster_size")
    max_rows_in_memory: int = Field(200_000, ge=1, description="above this, mini-batch k-means streams the vectors")
    gpu: bool = Field(False, description="k-means with cuML on a CUDA device")


class GradientClusters(GlobalStage):
    name = "gradient_clusters"
    version = "1"
    description = "k-means over proxy gradients: <prefix>_cluster, <prefix>_cluster_size (global)"
    inputs = ("proxy_grad",)
    Params = GradientClustersParams

    def required_columns(self):
        return (self.params.column,)

    def map(self, batch: pa.Table) -> pa.Table:
        return batch

    def reduce_inputs(self):
        return (self.params.column,)

    def reduce_output_columns(self):
        p = self.params.prefix
        return {f"{p}_cluster": pa.int32(), f"{p}_cluster_size": pa.int64()}

    def reduce_duckdb(self, con, rows: str) -> str:
        from dataengine.filters.diversity import vectors_from_column
        from dataengine.filters.kmeans import fit_kmeans, fit_kmeans_streaming

        p = self.params
        col = quote_ident(p.column)
        query = f"SELECT {SHARD_COL}, {ROW_COL}, {col} AS v FROM {rows} WHERE {col} IS NOT NULL ORDER BY {SHARD_COL}, {ROW_COL}"
        n = con.execute(f"SELECT count(*) FROM {rows} WHERE {col} IS NOT NULL").fetchone()[0]
        shards, positions, labels = [], [], []
        if n and n <= p.max_rows_in_memory:
            table = con.execute(query).to_arrow_table()
            fitted = fit_kmeans(vectors_from_column(table.column("v")), p.k, p.seed, gpu=p.gpu)
            shards.append(table.column(SHARD_COL))
            positions.append(table.column(ROW_COL))
            labels.append(fitted.labels)
        elif n:
            def batches():
                for batch in con.execute(f"SELECT v FROM ({query})").to_arrow_reader(8192):
                    yield vectors_from_column(batch.column(0))

            fitted = fit_kmeans_streaming(batches, p.k, p.seed)
            for batch in con.execute(query).to_arrow_reader(8192):
                shards.append(batch.column(0))
                positions.append(batch.column(1))
                labels.append(fitted.assign(vectors_from_column(batch.column(2))))
        assigned = pa.table({
            SHARD_COL: pa.chunked_array(shards, pa.string()) if shards else pa.array([], pa.string()),
            ROW_COL: pa.chunked_array(positions, pa.int64()) if positions else pa.array([], pa.int64()),
            "cluster": pa.array(np.concatenate(labels) if labels else np.zeros(0, np.int32), pa.int32()),
        })
        con.register("gc_assigned", assigned)
        con.execute("CREATE OR REPLACE TEMP TABLE gc_labels AS SELECT * FROM gc_assigned")
        con.unregister("gc_assigned")
        prefix = p.prefix
        return f"""
            WITH sizes AS (SELECT cluster, count(*) AS size FROM gc_labels GROUP BY cluster)
            SELECT r.{SHARD_COL}, r.{ROW_COL}, l.cluster AS {prefix}_cluster, s.size AS {prefix}_cluster_size
            FROM {rows} r
            LEFT JOIN gc_labels l USING ({SHARD_COL}, {ROW_COL})
            LEFT JOIN sizes s USING (cluster)"""
