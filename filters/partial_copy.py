"""Partial-copy detection: for each document, the document that contains the largest share of it.

A page that quotes a paragraph of another, or syndicates an article under a new header and
footer, has a low Jaccard similarity to its source (the sets differ in size) but a high
*containment* ``C(d, e) = |S_d ∩ S_e| / |S_d|`` of its shingle set ``S_d`` in the source's.
MinHash-LSH at a Jaccard threshold misses these; this global stage searches containment.

map (per batch, any executor): normalised word n-gram shingles (as ``fuzzy_dedup``), their
distinct hashes, and a MinHash sketch of ``sample_size`` values: the minimum hash in each
of ``sample_size`` hash ranges (one-permutation MinHash). Each sketch value is a uniform
random shingle of the document, so the share of a document's sketch found in another
document's shingle set estimates the containment, whatever the two sizes are (the
asymmetry LSH Ensemble handles by partitioning on size; here the index holds every
shingle, so no size partitioning is needed).

reduce (DuckDB, one job over all rows, like ``fuzzy_dedup``):
1. postings: (document, shingle) for every distinct shingle, restricted to the shingles
   that are some document's sketch value (a semi-join, so the candidate join stays small);
2. candidates: pairs (d, e) whose posting lists share sketch values of d; shingles found in
   more than ``max_df`` documents (boilerplate, licences) make no candidates;
3. the ``max_candidates`` best candidates of each document by estimated containment (at
   least ``candidate_floor``) get an **exact** containment check on their full shingle sets;
4. per document the candidate with the highest exact containment (ties: the larger
   document, then the smaller id): ``copy_containment``; ``copy_of`` is its id when the
   containment reaches ``threshold``, else null.

Columns: ``copy_of`` (string), ``copy_containment`` (float64: 0 when no candidate was found,
null when the text is null or shorter than ``min_shingles`` shingles). A syndicated copy
``A' = header + A + footer`` gets ``copy_of = A`` with containment ``|A| / |A'|``, and ``A``
gets ``copy_of = A'`` with containment 1: each points to the document that holds most of it.
Exact duplicates point to each other (containment 1 both ways); ``exact_dedup`` and
``fuzzy_dedup`` are the stages that pick one of them to keep.

The reduce has no ``reduce_key``: a copy can be anywhere in the table, so it runs as one
DuckDB job (on the driver, the default on every executor). ``reduce: engine`` would run it
as the engine's one partition, but Dask's reduce path converts rows through pandas, which
turns the list<uint64> map columns into strings (see docs/dedup.md).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from dataengine.core.global_stage import ROW_COL, SHARD_COL, GlobalStage, quote_ident
from dataengine.core.stage import StageParams

SHINGLES_COL = "_copy_shingles"
SKETCH_COL = "_copy_sketch"


class PartialCopyParams(StageParams):
    text_column: str = "text"
    unit: Literal["word", "char"] = Field("word", description="shingle unit")
    ngram: int = Field(5, ge=1, description="shingle size (words or characters)")
    sample_size: Literal[8, 16, 32, 64, 128, 256] = Field(
        32, description="MinHash sketch values per document (hash ranges; a power of two)")
    threshold: float = Field(0.5, gt=0, le=1, description="containment at or above which copy_of is set")
    candidate_floor: float = Field(
        0.2, ge=0, le=1, description="minimum estimated containment for the exact check (a recall knob)"
    )
    max_candidates: int = Field(4, ge=1, description="candidates per document given the exact check")
    max_df: int = Field(500, ge=2, description="shingles in more documents than this make no candidates")
    min_shingles: int = Field(8, ge=1, description="shorter documents are not searched (containment null)")
    seed: int = Field(42, description="seed of the shingle-to-hash-range mixing")


class PartialCopy(GlobalStage):
    name = "partial_copy"
    version = "1"
    description = "documents contained in another (quotes, syndication): copy_of, copy_containment (global)"
    Params = PartialCopyParams

    def required_columns(self):
        return tuple(dict.fromkeys([self.params.text_column, "id"]))

    def map_columns(self):
        return {SHINGLES_COL: pa.list_(pa.uint64()), SKETCH_COL: pa.list_(pa.uint64())}

    def map(self, batch: pa.Table) -> pa.Table:
        p = self.params
        shingles, sketch = shingle_sets_and_sketches(batch.column(p.text_column), p.unit, p.ngram, p.sample_size,
                                                     p.seed)
        for name, column in ((SHINGLES_COL, shingles), (SKETCH_COL, sketch)):
            if name in batch.column_names:
                batch = batch.drop_columns([name])
            batch = batch.append_column(name, column)
        return batch

    def reduce_inputs(self):
        return ("id",)

    def reduce_output_columns(self):
        return {"copy_of": pa.string(), "copy_containment": pa.float64()}

    def reduce_sql(self, rows: str) -> str:
        raise NotImplementedError("partial_copy's reduce builds temp tables: see reduce_duckdb")

    def reduce_duckdb(self, con, rows: str) -> str:
        p = self.params
        shingles, sketch = quote_ident(SHINGLES_COL), quote_ident(SKETCH_COL)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_docs AS
                SELECT row_number() OVER (ORDER BY id, {SHARD_COL}, {ROW_COL}) AS doc, {SHARD_COL}, {ROW_COL}, id,
                       len({shingles}) AS size, len({sketch}) AS sketch_size
                FROM {rows}"""
        )
        searched = f"len({shingles}) >= {int(p.min_shingles)}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_sketch AS
                SELECT d.doc, unnest(r.{sketch}) AS h
                FROM {rows} r JOIN pc_docs d USING ({SHARD_COL}, {ROW_COL}) WHERE {searched}"""
        )
        # postings of the sketch values only: every document holding a shingle some sketch sampled
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_postings AS
                SELECT doc, h FROM (
                    SELECT d.doc, unnest(r.{shingles}) AS h
                    FROM {rows} r JOIN pc_docs d USING ({SHARD_COL}, {ROW_COL}) WHERE {searched})
                WHERE h IN (SELECT h FROM pc_sketch)"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_common AS
                SELECT h FROM pc_postings GROUP BY h HAVING count(*) > {int(p.max_df)}"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_candidates AS
                WITH hits AS (
                    SELECT s.doc AS q, x.doc AS x, count(*) AS hits
                    FROM pc_sketch s JOIN pc_postings x ON x.h = s.h AND x.doc <> s.doc
                    WHERE s.h NOT IN (SELECT h FROM pc_common)
                    GROUP BY 1, 2)
                SELECT q, x FROM (
                    SELECT h.q, h.x, row_number() OVER (
                               PARTITION BY h.q ORDER BY h.hits DESC, dx.size DESC, h.x) AS rank
                    FROM hits h JOIN pc_docs dq ON dq.doc = h.q JOIN pc_docs dx ON dx.doc = h.x
                    WHERE h.hits >= greatest(1, ceil({float(p.candidate_floor)} * dq.sketch_size)))
                WHERE rank <= {int(p.max_candidates)}"""
        )
        self._exact_containment(con, rows)
        threshold = float(p.threshold)
        return f"""
            WITH best AS (
                SELECT e.q, e.x, e.containment, row_number() OVER (
                           PARTITION BY e.q ORDER BY e.containment DESC, dx.size DESC, dx.id) AS rank, dx.id AS x_id
                FROM pc_exact e JOIN pc_docs dx ON dx.doc = e.x)
            SELECT d.{SHARD_COL}, d.{ROW_COL},
                   CASE WHEN b.containment >= {threshold} THEN b.x_id END AS copy_of,
                   CASE WHEN d.size < {int(p.min_shingles)} THEN NULL
                        ELSE coalesce(b.containment, 0.0) END AS copy_containment
            FROM pc_docs d LEFT JOIN best b ON b.q = d.doc AND b.rank = 1"""

    def _exact_containment(self, con, rows: str) -> None:
        """|S_q ∩ S_x| / |S_q| for every candidate pair, from the full shingle sets (in SQL).

        (A join of the candidates' unnested shingles: DuckDB's list_intersect on the two
        lists was 5x slower here.)
        """
        shingles = quote_ident(SHINGLES_COL)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE pc_needed AS
                SELECT d.doc, unnest(r.{shingles}) AS h
                FROM {rows} r JOIN pc_docs d USING ({SHARD_COL}, {ROW_COL})
                WHERE d.doc IN (SELECT q FROM pc_candidates UNION SELECT x FROM pc_candidates)"""
        )
        con.execute(
            """CREATE OR REPLACE TEMP TABLE pc_exact AS
               SELECT c.q, c.x, count(b.h)::DOUBLE / any_value(dq.size) AS containment
               FROM pc_candidates c
               JOIN pc_docs dq ON dq.doc = c.q
               JOIN pc_needed a ON a.doc = c.q
               LEFT JOIN pc_needed b ON b.doc = c.x AND b.h = a.h
               GROUP BY c.q, c.x"""
        )


def shingle_sets_and_sketches(text, unit: str, ngram: int, sample_size: int, seed: int = 42
                              ) -> tuple[pa.ListArray, pa.ListArray]:
    """Per document: its distinct shingle hashes and its one-permutation MinHash sketch.

    Vectorised over the batch with one sort: each shingle hash is remixed (a seeded
    bijection), and ``(document, remixed hash)`` packed into one uint64 key is sorted, so
    repeats become neighbours and each document's shingles come in remixed order. The
    sketch's ranges are the top bits of the remixed hash, so the first shingle of each
    range in that order is the range's minimum. A null text gives empty lists.
    """
    from dataengine.filters.shingles import shingle_hashes

    if sample_size & (sample_size - 1):
        raise ValueError("sample_size must be a power of two")
    hashes, offsets = shingle_hashes(text, unit, ngram)
    docs = len(offsets) - 1
    if docs >= 1 << _DOC_BITS:
        raise ValueError(f"at most {1 << _DOC_BITS} documents per batch")
    doc_of = np.repeat(np.arange(docs, dtype=np.uint64), np.diff(offsets))
    mixed = _mix(hashes, seed)
    key = (doc_of << np.uint64(64 - _DOC_BITS)) | (mixed >> np.uint64(_DOC_BITS))
    order = np.argsort(key, kind="stable")
    key, mixed, h, d = key[order], mixed[order], hashes[order], doc_of[order].astype(np.int64)
    distinct = np.ones(len(h), dtype=bool)
    distinct[1:] = (mixed[1:] != mixed[:-1]) | (d[1:] != d[:-1])
    mixed, h, d = mixed[distinct], h[distinct], d[distinct]
    counts = np.bincount(d, minlength=docs)
    shingles = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)),
                                        pa.array(h, pa.uint64()))
    bucket = mixed >> np.uint64(64 - int(sample_size).bit_length() + 1)
    first = np.ones(len(h), dtype=bool)
    first[1:] = (bucket[1:] != bucket[:-1]) | (d[1:] != d[:-1])
    sketch_counts = np.bincount(d[first], minlength=docs)
    sketch = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(sketch_counts)]).astype(np.int32)),
                                      pa.array(h[first], pa.uint64()))
    return shingles, sketch


_DOC_BITS = 24


def _mix(h: np.ndarray, seed: int) -> np.ndarray:
    """A seeded bijective remix of the shingle hashes (which range a shingle falls in, and its rank)."""
    x = h ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    x = x ^ (x >> np.uint64(31))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(29))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(32))
