"""Fuzzy deduplication: MinHash + LSH banding + connected components (a global stage).

map (per batch, any executor): normalise text, hash shingles, MinHash signatures
(:mod:`dataengine.kernels.minhash`, NumPy or CuPy), LSH band hashes -> private list column.

reduce: a program of keyed steps (:meth:`FuzzyDedup.reduce_steps`) that runs in DuckDB on
the driver (default) or, with ``reduce: engine``, as Dask/Spark shuffles, with the same
result. Nodes are rows' ``_pos`` (shard index << 32 | row), the same on every executor.
1. unnest band hashes; documents sharing a (band, hash) bucket are candidates: each bucket
   links its members to its smallest node (a star), so edges grow linearly with bucket size;
2. optionally check the exact Jaccard similarity of every candidate edge on the shingle sets
   (only documents that have a candidate are re-read) and drop edges under the threshold;
3. connected components by alternating large-star/small-star steps
   (:mod:`dataengine.engine.components`): O(log n) rounds, ``max_rounds`` at most;
4. per document: cluster id (the smallest document id of its component, so every executor
   names clusters alike), cluster size, and the keep flag (first by ``order_by``).

Columns: ``<prefix>_cluster``, ``<prefix>_cluster_size``, ``<prefix>_keep`` (default prefix
``fuzzy_dup``). Select with ``WHERE fuzzy_dup_keep``.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core.errors import StageError
from dataengine.core.global_stage import POS_COL, ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.reduce_steps import Input, ReducePlan, Relation
from dataengine.core.stage import StageParams

PRESETS = {
    # FineWeb: 14 bands x 8 rows = 112 hashes over word 5-grams
    "fineweb": {"unit": "word", "ngram": 5, "num_perm": 112, "bands": 14, "rows": 8},
    # NeMo Curator: 20 bands x 13 rows = 260 hashes over 24-character shingles
    "nemo": {"unit": "char", "ngram": 24, "num_perm": 260, "bands": 20, "rows": 13},
}


class FuzzyParams(StageParams):
    preset: Literal["fineweb", "nemo", "custom"] = Field("fineweb", description="fineweb (14x8, word 5-grams) | nemo (20x13, 24-char) | custom")
    unit: Literal["word", "char"] | None = Field(None, description="shingle unit (custom preset)")
    ngram: int | None = Field(None, ge=1, description="shingle size (custom preset)")
    num_perm: int | None = Field(None, ge=1, description="number of MinHash functions (custom preset)")
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)
    seed: int = Field(42, description="seed of the hash functions: same seed, same clusters")
    jaccard_check: bool = Field(True, description="verify candidates with exact shingle Jaccard")
    threshold: float = Field(0.8, ge=0, le=1, description="minimum Jaccard for a checked edge")
    text_column: str = "text"
    prefix: str = Field("fuzzy_dup", pattern=r"^[a-z][a-z0-9_]*$")
    order_by: list[str] = Field(["fetched_at", "id"], description="keep rule: first document by these columns")
    gpu: bool = Field(False, description="compute signatures with CuPy on the GPU (same results)")
    max_rounds: int = Field(64, ge=1, description="round limit of the connected-components iterations")

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, raw):
        if not isinstance(raw, dict):
            return raw
        raw = dict(raw)
        base = PRESETS.get(raw.get("preset", "fineweb"), {})
        for key in ("unit", "ngram", "num_perm", "bands", "rows"):
            if raw.get(key) is None:
                if key not in base:
                    raise ValueError(f"preset custom needs {key}")
                raw[key] = base[key]
        if raw["bands"] * raw["rows"] > raw["num_perm"]:
            raise ValueError(f"bands x rows ({raw['bands'] * raw['rows']}) exceeds num_perm ({raw['num_perm']})")
        return raw


class FuzzyDedup(GlobalStage):
    name = "fuzzy_dedup"
    version = "2"
    description = "MinHash-LSH near-duplicate clusters: <prefix>_cluster, _cluster_size, _keep (global)"
    Params = FuzzyParams

    def required_columns(self):
        return tuple(dict.fromkeys([self.params.text_column, "id", *self.params.order_by]))

    def setup(self) -> None:
        if self.params.gpu:  # fail the run up front, not batch by batch
            try:
                import cupy

                cupy.cuda.runtime.getDeviceCount()
            except Exception as exc:  # ImportError, or CUDARuntimeError without a device
                raise StageError(f"fuzzy_dedup gpu: true needs CuPy and a CUDA device ({exc}); "
                                 "pip install 'dataengine[gpu]' on a CUDA machine, or drop --gpu") from None

    @property
    def _bands_col(self) -> str:
        return f"_{self.params.prefix}_bands"

    def map_columns(self):
        return {self._bands_col: pa.list_(pa.uint64())}

    def map(self, batch: pa.Table) -> pa.Table:
        from dataengine.filters.shingles import shingle_hashes
        from dataengine.kernels import minhash

        p = self.params
        hashes, offsets = shingle_hashes(batch.column(p.text_column), p.unit, p.ngram)
        xp = np
        if p.gpu:
            import cupy as xp  # noqa: F811 - the GPU path, same arithmetic
        sigs = minhash.signatures(hashes, offsets, p.num_perm, p.seed, xp=xp)
        bands = minhash.band_hashes(sigs, p.bands, p.rows, xp=xp)
        if xp is not np:
            bands = xp.asnumpy(bands)
        flat = pa.array(np.ascontiguousarray(bands).reshape(-1), pa.uint64())
        offsets_arr = pa.array(np.arange(0, bands.size + 1, p.bands, dtype=np.int32), pa.int32())
        column = pa.ListArray.from_arrays(offsets_arr, flat)
        if self._bands_col in batch.column_names:
            batch = batch.drop_columns([self._bands_col])
        return batch.append_column(self._bands_col, column)

    def reduce_inputs(self):
        cols = ["id", *self.params.order_by]
        if self.params.jaccard_check:
            cols.append(self.params.text_column)
        return tuple(dict.fromkeys(cols))

    def reduce_output_columns(self):
        p = self.params.prefix
        return {f"{p}_cluster": pa.string(), f"{p}_cluster_size": pa.int64(), f"{p}_keep": pa.bool_()}

    def reduce_steps(self, plan: ReducePlan, rows: Relation) -> None:
        """Buckets -> candidate edges -> (Jaccard check) -> connected components -> clusters.

        Every step is keyed (see :mod:`dataengine.core.reduce_steps`), so the same program
        runs in DuckDB on the driver and as Dask/Spark shuffles. Nodes are rows' ``_pos``.
        """
        p = self.params
        bands = quote_ident(self._bands_col)
        # 1. one row per (document, band); each bucket (band, hash) links its members to its
        #    smallest node (a star), so edges grow linearly with bucket size.
        edges = plan.step(
            "candidate edges from LSH buckets",
            {"bands": Input(rows, "h", f"""
                SELECT node, band::INTEGER AS band, h
                FROM (SELECT {POS_COL} AS node, unnest({bands}) AS h, generate_subscripts({bands}, 1) AS band
                      FROM bands)""")},
            sql="""SELECT DISTINCT a, node AS b FROM (
                       SELECT node, min(node) OVER (PARTITION BY band, h) AS a FROM bands)
                   WHERE a <> node""",
        )
        if p.jaccard_check:
            edges = self._checked_edges(plan, edges)
        labels = plan.components(edges, max_rounds=p.max_rounds)
        self._clusters(plan, rows, labels)

    def _checked_edges(self, plan: ReducePlan, edges: Relation) -> Relation:
        """Keep only candidate edges whose exact shingle Jaccard reaches the threshold.

        Two steps keyed by shard: the first reads each edge's ``a`` text from ``a``'s mapped
        shard file, the second ``b``'s text from ``b``'s and compares; a shard file is read by
        one partition, and only documents with a candidate edge travel with their text."""
        p = self.params
        files, column = plan.shard_files, p.text_column
        with_a = plan.step(
            "jaccard check: first texts",
            {"e": Input(edges, "shard", "SELECT a, b, a >> 32 AS shard FROM e")},
            sql="SELECT DISTINCT a, b, shard FROM e",  # an edge found in several bands, once
            fn=functools.partial(with_texts, files=files, column=column, node="a", text="text_a"),
            schema=pa.schema([("a", pa.int64()), ("b", pa.int64()), ("text_a", pa.string())]),
        )
        checked = plan.step(
            "jaccard check",
            {"e": Input(with_a, "shard", "SELECT a, b, text_a, b >> 32 AS shard FROM e")},
            fn=functools.partial(check_edges, files=files, column=column, unit=p.unit, ngram=p.ngram,
                                 threshold=p.threshold),
            schema=EDGES_SCHEMA,
        )
        plan.drop(with_a)
        return checked

    def _clusters(self, plan: ReducePlan, rows: Relation, labels: Relation) -> None:
        """Per document: cluster id (the smallest document id of its component, so every
        executor names clusters alike), cluster size, keep flag (first by ``order_by``)."""
        p = self.params
        prefix = p.prefix
        keep_cols = [c for c in dict.fromkeys(["id", *p.order_by])]
        cols = ", ".join(quote_ident(c) for c in keep_cols)
        order = ", ".join(f"{quote_ident(c)} ASC NULLS LAST" for c in p.order_by)
        # Rows in no component (most of them) are final here; the others travel on by component.
        members = plan.step(
            "components of documents",
            {
                "r": Input(rows, POS_COL, f"SELECT {SHARD_COL}, {ROW_COL}, {POS_COL}, {cols} FROM r"),
                "l": Input(labels, "a"),
                "c": Input(labels, "centre", "SELECT DISTINCT b AS centre FROM c"),
            },
            sql=f"""SELECT r.*, coalesce(l.b, r.{POS_COL}) AS _comp FROM r
                    LEFT JOIN (SELECT a, min(b) AS b FROM l GROUP BY a) l ON l.a = r.{POS_COL}
                    WHERE l.a IS NOT NULL OR r.{POS_COL} IN (SELECT centre FROM c)""",
            final=f"""SELECT {SHARD_COL}, {ROW_COL}, id AS {prefix}_cluster, 1::BIGINT AS {prefix}_cluster_size,
                             true AS {prefix}_keep
                      FROM r WHERE {POS_COL} NOT IN (SELECT a FROM l) AND {POS_COL} NOT IN (SELECT centre FROM c)""",
        )
        plan.drop(labels)
        plan.step(
            "clusters",
            {"r": Input(members, "_comp")},
            final=f"""SELECT {SHARD_COL}, {ROW_COL},
                             min(id) OVER (PARTITION BY _comp) AS {prefix}_cluster,
                             count(*) OVER (PARTITION BY _comp) AS {prefix}_cluster_size,
                             row_number() OVER (PARTITION BY _comp ORDER BY {order}, id, {SHARD_COL}, {ROW_COL}) = 1
                                 AS {prefix}_keep
                      FROM r""",
        )


EDGES_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])


def with_texts(edges: pa.Table, files: list[str], column: str, node: str, text: str) -> pa.Table:
    """``edges`` with column ``text``: the text of node ``node`` (shard index << 32 | row),
    read from its mapped shard file; each shard's text column is read once. Drops ``shard``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    edges = edges.sort_by("shard")
    shards = edges.column("shard")
    parts, offset = [], 0
    for entry in pc.value_counts(shards).to_pylist():  # sorted: each shard's edges are contiguous
        part = edges.slice(offset, entry["counts"])
        offset += entry["counts"]
        rows = pc.bit_wise_and(part.column(node), pa.scalar(0xFFFFFFFF, pa.int64()))
        texts = pq.read_table(files[entry["values"]], columns=[column]).column(column).take(rows)
        parts.append(part.drop_columns(["shard"]).append_column(text, texts.cast(pa.string())))
    if not parts:
        return edges.drop_columns(["shard"]).append_column(text, pa.array([], pa.string()))
    return pa.concat_tables(parts)


def check_edges(edges: pa.Table, files: list[str], column: str, unit: str, ngram: int, threshold: float) -> pa.Table:
    """The edges ``(a, b, text_a, shard of b)`` whose shingle-set Jaccard is at least ``threshold``."""
    from dataengine.filters.shingles import jaccard, shingle_sets

    edges = with_texts(edges, files, column, node="b", text="text_b")
    if edges.num_rows == 0:
        return EDGES_SCHEMA.empty_table()
    a, b = edges.column("a").to_numpy(), edges.column("b").to_numpy()
    sets: dict[int, np.ndarray] = {}
    for nodes, texts in ((a, edges.column("text_a")), (b, edges.column("text_b"))):
        first = {}
        for i, n in enumerate(nodes.tolist()):
            if n not in sets and n not in first:
                first[n] = i
        if first:
            computed = shingle_sets([texts[i].as_py() for i in first.values()], unit, ngram)
            sets.update(zip(first.keys(), computed))
    keep = np.fromiter((jaccard(sets[x], sets[y]) >= threshold for x, y in zip(a.tolist(), b.tolist())), dtype=bool,
                       count=len(a))
    return pa.table({"a": a[keep], "b": b[keep]}, schema=EDGES_SCHEMA)
