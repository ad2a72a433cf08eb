"""Fuzzy deduplication: MinHash + LSH banding + connected components (a global stage).

map (per batch, any executor): normalise text, hash shingles, MinHash signatures
(:mod:`dataengine.kernels.minhash`, NumPy or CuPy), LSH band hashes -> private list column.

reduce (DuckDB on the driver by default):
1. unnest band hashes; documents sharing a (band, hash) bucket are candidates: each bucket
   links its members to its smallest node (a star), so edges grow linearly with bucket size;
2. optionally check the exact Jaccard similarity of every candidate edge on the shingle sets
   (only documents that have a candidate are re-read) and drop edges under the threshold;
3. connected components by label propagation, iterated as SQL statements in DuckDB until
   no label changes (no signature or node list is ever a Python object);
4. per document: cluster id (the smallest document id of its component, so every executor
   names clusters alike), cluster size, and the keep flag (first by ``order_by``).

Columns: ``<prefix>_cluster``, ``<prefix>_cluster_size``, ``<prefix>_keep`` (default prefix
``fuzzy_dup``). Select with ``WHERE fuzzy_dup_keep``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core.errors import StageError
from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
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
    version = "1"
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

    def reduce_sql(self, rows: str) -> str:
        raise NotImplementedError("fuzzy_dedup's reduce iterates: see reduce_duckdb")

    def reduce_duckdb(self, con, rows: str) -> str:
        """Build candidate edges and components in temp tables; return the final SELECT."""
        p = self.params
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE fz_nodes AS
                SELECT row_number() OVER (ORDER BY id, {SHARD_COL}, {ROW_COL}) AS node,
                       {SHARD_COL}, {ROW_COL}, id FROM {rows}"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE fz_buckets AS
                SELECT n.node, b.band, b.h FROM (
                    SELECT {SHARD_COL}, {ROW_COL}, unnest({quote_ident(self._bands_col)}) AS h,
                           generate_subscripts({quote_ident(self._bands_col)}, 1) AS band
                    FROM {rows}) b
                JOIN fz_nodes n USING ({SHARD_COL}, {ROW_COL})"""
        )
        con.execute(
            """CREATE OR REPLACE TEMP TABLE fz_edges AS
               SELECT DISTINCT a, b FROM (
                   SELECT min(node) OVER (PARTITION BY band, h) AS a, node AS b FROM fz_buckets)
               WHERE a <> b"""
        )
        con.execute("DROP TABLE fz_buckets")
        if p.jaccard_check:
            self._check_edges(con, rows)
        _components(con)
        order = ", ".join(f"{quote_ident(c)} ASC NULLS LAST" for c in p.order_by)
        prefix = p.prefix
        return f"""
            WITH labelled AS (
                SELECT r.*, coalesce(l.comp, n.node) AS comp
                FROM {rows} r JOIN fz_nodes n USING ({SHARD_COL}, {ROW_COL})
                LEFT JOIN fz_labels l ON l.node = n.node)
            SELECT {SHARD_COL}, {ROW_COL},
                   min(id) OVER (PARTITION BY comp) AS {prefix}_cluster,
                   count(*) OVER (PARTITION BY comp) AS {prefix}_cluster_size,
                   row_number() OVER (PARTITION BY comp ORDER BY {order}, id, {SHARD_COL}, {ROW_COL}) = 1 AS {prefix}_keep
            FROM labelled"""

    def _check_edges(self, con, rows: str) -> None:
        """Keep only candidate edges whose exact shingle Jaccard reaches the threshold."""
        from dataengine.filters.shingles import jaccard, shingle_sets

        p = self.params
        n_edges = con.execute("SELECT count(*) FROM fz_edges").fetchone()[0]
        if n_edges == 0:
            return
        texts = con.execute(
            f"""SELECT n.node, r.{quote_ident(p.text_column)} AS text FROM fz_nodes n
                JOIN {rows} r USING ({SHARD_COL}, {ROW_COL})
                WHERE n.node IN (SELECT a FROM fz_edges UNION SELECT b FROM fz_edges)
                ORDER BY n.node"""
        ).to_arrow_table()
        nodes = texts.column("node").to_numpy()
        sets = shingle_sets(texts.column("text").to_pylist(), p.unit, p.ngram)
        where = {int(n): i for i, n in enumerate(nodes)}
        edges = con.execute("SELECT a, b FROM fz_edges").fetchnumpy()
        keep = np.fromiter(
            (jaccard(sets[where[int(a)]], sets[where[int(b)]]) >= p.threshold for a, b in zip(edges["a"], edges["b"])),
            dtype=bool,
            count=len(edges["a"]),
        )
        con.register("fz_checked", pa.table({"a": edges["a"][keep], "b": edges["b"][keep]}))
        con.execute("CREATE OR REPLACE TEMP TABLE fz_edges AS SELECT a, b FROM fz_checked")
        con.unregister("fz_checked")


def _components(con, max_iterations: int = 1000) -> None:
    """Label propagation in DuckDB: every node takes the smallest label among its neighbours."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE fz_labels AS
           SELECT node, node AS comp FROM (SELECT a AS node FROM fz_edges UNION SELECT b FROM fz_edges)"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE fz_undirected AS
           SELECT a AS x, b AS y FROM fz_edges UNION ALL SELECT b, a FROM fz_edges"""
    )
    for _ in range(max_iterations):
        con.execute(
            """CREATE OR REPLACE TEMP TABLE fz_next AS
               SELECT l.node, least(l.comp, coalesce(min(n.comp), l.comp)) AS comp
               FROM fz_labels l
               LEFT JOIN fz_undirected u ON u.x = l.node
               LEFT JOIN fz_labels n ON n.node = u.y
               GROUP BY l.node, l.comp"""
        )
        changed = con.execute(
            "SELECT count(*) FROM fz_next x JOIN fz_labels l USING (node) WHERE x.comp <> l.comp"
        ).fetchone()[0]
        con.execute("CREATE OR REPLACE TEMP TABLE fz_labels AS SELECT * FROM fz_next")
        if changed == 0:
            return
    raise RuntimeError("connected components did not converge")
