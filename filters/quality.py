"""Nemotron-CC style ensemble bucketing: fit percentile thresholds, then apply them.

**Fit** (:func:`fit_thresholds`, ``dataengine quality fit``): for each classifier, the
token-weighted 5%, 10%, ..., 95% percentiles of its ``<name>_score`` column over one table
snapshot (or a Bernoulli sample of it), computed in DuckDB SQL and stored in the catalog
table ``dataengine.quality_thresholds`` keyed by classifier and the snapshot fitted on.

**Apply** (stage ``quality_ensemble``): score -> bucket = how many of the 19 thresholds
are <= the score (0..19, each bucket ~5% of the fitted tokens); ensemble bucket = max over
classifiers; bucket -> quality level by a configurable mapping. Thresholds are reused
unchanged for later snapshots, so buckets stay comparable over time.

Why fit and apply are separate: the fit needs the whole table (a reduce), the apply is a
per-batch map that any executor runs; thresholds fitted once on a large snapshot can
label every later append without refitting.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from dataengine.core.errors import DataEngineError, StageError
from dataengine.core.schema import annotation_column
from dataengine.core.stage import Stage, StageParams
from dataengine.core.schema import META_SCHEMA

THRESHOLDS_TABLE = f"{META_SCHEMA}.quality_thresholds"
PERCENTILES = tuple(round(0.05 * i, 2) for i in range(1, 20))
N_BUCKETS = len(PERCENTILES) + 1
DEFAULT_LEVELS = {"low": 0, "medium-low": 4, "medium": 8, "medium-high": 12, "high": 16}
#: approximate tokens of a document when the table has no token count column
DEFAULT_WEIGHT = "greatest(length(text), 1) / 4.0"

THRESHOLDS_SCHEMA = pa.schema(
    [
        ("fit_id", pa.int64()),
        ("classifier", pa.string()),
        ("score_column", pa.string()),
        ("model", pa.string()),
        ("table_name", pa.string()),
        ("snapshot_id", pa.int64()),
        ("sample_percent", pa.float64()),
        ("weight", pa.string()),
        ("docs", pa.int64()),
        ("total_weight", pa.float64()),
        ("thresholds", pa.string()),
        ("fitted_at", pa.timestamp("us", tz="UTC")),
    ]
)


def score_column(classifier: str) -> str:
    return annotation_column(classifier, "score")


def bucket_column(classifier: str) -> str:
    return annotation_column(classifier, "bucket")


# -- fit ------------------------------------------------------------------------------------

def weighted_percentiles_sql(source: str, score: str, weight: str) -> str:
    """SQL giving one row per percentile: (i, threshold). ``source`` is a FROM clause.

    The threshold for p is the smallest score whose cumulative weight (in score order)
    reaches p of the total: the tokens below it are < p of all tokens.
    """
    qs = ", ".join(f"({i + 1}, {p})" for i, p in enumerate(PERCENTILES))
    return f"""
        WITH s AS (
            SELECT CAST({score} AS DOUBLE) AS score, CAST({weight} AS DOUBLE) AS w FROM {source}
        ), c AS (
            SELECT score,
                   sum(w) OVER (ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                   sum(w) OVER () AS total
            FROM s WHERE score IS NOT NULL AND w > 0
        ), q(i, p) AS (VALUES {qs})
        SELECT q.i, min(c.score) AS threshold, any_value(c.total) AS total
        FROM q JOIN c ON c.cum >= q.p * c.total
        GROUP BY q.i ORDER BY q.i"""


def _source_clause(qualified_table: str, snapshot: int, sample_percent: float | None, seed: int) -> str:
    """The snapshot, or a sample of it chosen by a hash of the id.

    Hashing ids (not ``USING SAMPLE``) makes the sample independent of DuckDB's threads
    and keeps the same documents in the sample of a later snapshot.
    """
    src = f"{qualified_table} AT (VERSION => {int(snapshot)})"
    if sample_percent is not None and sample_percent < 100:
        if not 0 < sample_percent:
            raise DataEngineError(f"--sample must be a percentage in (0, 100], not {sample_percent}")
        cut = int(sample_percent * 10_000)
        src = f"(SELECT * FROM {src} WHERE hash(id || ':{int(seed)}') % 1000000 < {cut})"
    return src


def fit_thresholds(
    wh,
    table: str,
    classifiers: list[str],
    version: int | None = None,
    sample_percent: float | None = None,
    weight: str | None = None,
    seed: int = 0,
    model: dict[str, str] | None = None,
) -> list[dict]:
    """Fit and store thresholds for each classifier; returns the stored rows (one fit id)."""
    if not classifiers:
        raise DataEngineError("name at least one classifier (its scores are in <name>_score)")
    rows = []
    now = dt.datetime.now(dt.timezone.utc)
    with wh.connect(read_only=True) as con:  # one connection for every read of the fit
        if not wh.has_table(con, table):
            raise DataEngineError(f"table {table!r} does not exist in the warehouse")
        snapshot = int(version) if version is not None else wh.snapshot_of(con)
        at = f"{wh.qualify(table)} AT (VERSION => {snapshot})"
        columns = [d[0] for d in con.execute(f"SELECT * FROM {at} LIMIT 0").description]
        weight = weight or ("text_tokens" if "text_tokens" in columns else DEFAULT_WEIGHT)
        source = _source_clause(wh.qualify(table), snapshot, sample_percent, seed)
        fit_id = 1
        if wh.has_table(con, THRESHOLDS_TABLE):
            fit_id = con.execute(f"SELECT coalesce(max(fit_id), 0) + 1 FROM {wh.qualify(THRESHOLDS_TABLE)}").fetchone()[0]
        for name in classifiers:
            col = score_column(name)
            if col not in columns:
                raise DataEngineError(f"table {table}@{snapshot} has no column {col!r}: score it with the classifiers stage")
            try:
                result = con.execute(weighted_percentiles_sql(source, f'"{col}"', weight)).fetchall()
                count = con.execute(f'SELECT count("{col}") FROM {source}').fetchone()[0]
            except duckdb.Error as exc:  # a bad --weight expression, typically
                raise DataEngineError(f"fitting {name!r} failed: {str(exc).splitlines()[0]}") from None
            if len(result) != len(PERCENTILES):
                raise DataEngineError(f"classifier {name!r}: no scored rows with positive weight in {table}@{snapshot}")
            rows.append(
                {
                    "fit_id": fit_id,
                    "classifier": name,
                    "score_column": col,
                    "model": (model or {}).get(name, ""),
                    "table_name": table,
                    "snapshot_id": snapshot,
                    "sample_percent": float(sample_percent) if sample_percent is not None else 100.0,
                    "weight": weight,
                    "docs": count,
                    "total_weight": float(result[0][2]),
                    "thresholds": json.dumps([r[1] for r in result]),
                    "fitted_at": now,
                }
            )
    wh.write_table(THRESHOLDS_TABLE, pa.Table.from_pylist(rows, schema=THRESHOLDS_SCHEMA))
    return rows


def load_thresholds(wh, classifiers: list[str], fit_id: int | None = None) -> dict[str, dict]:
    """Stored thresholds per classifier: from ``fit_id``, or each classifier's latest fit."""
    if not wh.table_exists(THRESHOLDS_TABLE):
        raise DataEngineError("no quality thresholds fitted yet: run `dataengine quality fit TABLE --classifier NAME`")
    out = {}
    for name in classifiers:
        where = "classifier = ?" + (" AND fit_id = ?" if fit_id is not None else "")
        params = [name] + ([fit_id] if fit_id is not None else [])
        rows = wh.sql(f"SELECT * FROM {THRESHOLDS_TABLE} WHERE {where} ORDER BY fit_id DESC LIMIT 1", params).to_pylist()
        if not rows:
            scope = f" in fit {fit_id}" if fit_id is not None else ""
            raise DataEngineError(f"no thresholds for classifier {name!r}{scope}: run `dataengine quality fit`")
        row = rows[0]
        row["thresholds"] = json.loads(row["thresholds"])
        out[name] = row
    return out


# -- apply ---------------------------------------------------------------------------------

def buckets(scores: pa.Array | np.ndarray, thresholds: list[float]) -> np.ndarray:
    """Bucket 0..19 = number of thresholds <= score (NaN for a missing score)."""
    values = np.asarray(scores, dtype=np.float64)
    out = np.searchsorted(np.asarray(thresholds, dtype=np.float64), values, side="right").astype(np.float64)
    out[np.isnan(values)] = np.nan
    return out


def level_names(levels: dict[str, int]) -> list[str]:
    """Level of each bucket 0..19 from {level: lowest bucket}."""
    starts = sorted((b, name) for name, b in levels.items())
    out = []
    for bucket in range(N_BUCKETS):
        out.append([name for b, name in starts if b <= bucket][-1])
    return out


class QualityEnsemble(Stage):
    """Classifier scores -> per-classifier buckets, ensemble bucket (max) and quality level."""

    name = "quality_ensemble"
    version = "1"
    description = "score -> bucket 0..19 by stored percentile thresholds; max over classifiers; level"
    inputs = ()

    class Params(StageParams):
        classifiers: list[str] = Field(..., min_length=1, description="classifier names (columns <name>_score)")
        fit_id: int | None = Field(None, description="stored fit to use (default: each classifier's latest)")
        thresholds: dict[str, list[float]] | None = Field(None, description="explicit thresholds (skip the warehouse)")
        levels: dict[str, int] = Field(dict(DEFAULT_LEVELS), description="level -> lowest bucket")
        prefix: str = Field("quality", description="writes <prefix>_bucket and <prefix>_level")

        @field_validator("levels")
        @classmethod
        def _levels(cls, value):
            if not value or 0 not in value.values():
                raise ValueError("levels must give a level starting at bucket 0")
            if any(not 0 <= b < N_BUCKETS for b in value.values()) or len(set(value.values())) != len(value):
                raise ValueError(f"level start buckets must be distinct and within 0..{N_BUCKETS - 1}")
            return value

        @model_validator(mode="after")
        def _explicit(self):
            for name, ts in (self.thresholds or {}).items():
                if len(ts) != len(PERCENTILES) or any(b < a for a, b in zip(ts, ts[1:])):
                    raise ValueError(f"thresholds[{name}] must be {len(PERCENTILES)} non-decreasing numbers")
            return self

    def __init__(self, params=None):
        super().__init__(params)
        self._thresholds: dict[str, list[float]] = dict(self.params.thresholds or {})
        self._fits: dict[str, int] = {}

    def _missing(self) -> list[str]:
        return [c for c in self.params.classifiers if c not in self._thresholds]

    def bind_warehouse(self, warehouse) -> None:
        missing = self._missing()
        if not missing:
            return
        try:
            stored = load_thresholds(warehouse, missing, self.params.fit_id)
        except DataEngineError as exc:
            raise StageError(f"stage quality_ensemble: {exc}") from None
        for name, row in stored.items():
            self._thresholds[name] = row["thresholds"]
            self._fits[name] = row["fit_id"]

    def required_columns(self):
        return tuple(score_column(c) for c in self.params.classifiers)

    def output_columns(self):
        out = {bucket_column(c): pa.int8() for c in self.params.classifiers}
        out[annotation_column(self.params.prefix, "bucket")] = pa.int8()
        out[annotation_column(self.params.prefix, "level")] = pa.string()
        return out

    def fingerprint(self):
        fp = super().fingerprint()
        fp["thresholds"] = self._thresholds
        return fp

    def __getstate__(self):
        return {"params": self.params, "thresholds": self._thresholds, "fits": self._fits}

    def __setstate__(self, state):
        self.params = state["params"]
        self._thresholds = dict(state["thresholds"])
        self._fits = dict(state["fits"])
        self._ready = False

    def setup(self) -> None:
        if self._missing():
            raise StageError(
                f"quality_ensemble: no thresholds for {self._missing()}: run it through a pipeline "
                "(which reads the warehouse), give params.thresholds, or call bind_warehouse(warehouse)"
            )
        self._level_of = np.array(level_names(self.params.levels), dtype=object)

    def process(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        ensemble = np.full(n, -1.0)
        any_score = np.zeros(n, dtype=bool)
        columns = {}
        for name in self.params.classifiers:
            scores = pc.fill_null(batch.column(score_column(name)).cast(pa.float64()), np.nan)
            b = buckets(scores.to_numpy(zero_copy_only=False), self._thresholds[name])
            valid = ~np.isnan(b)
            columns[bucket_column(name)] = pa.array(np.where(valid, b, 0).astype(np.int8), mask=~valid)
            ensemble = np.where(valid, np.maximum(ensemble, b), ensemble)
            any_score |= valid
        ens = np.where(any_score, ensemble, 0).astype(np.int8)
        columns[annotation_column(self.params.prefix, "bucket")] = pa.array(ens, mask=~any_score)
        levels = self._level_of[ens]
        columns[annotation_column(self.params.prefix, "level")] = pa.array(
            [lv if ok else None for lv, ok in zip(levels, any_score)], type=pa.string()
        )
        for col, values in columns.items():
            if col in batch.column_names:
                batch = batch.set_column(batch.column_names.index(col), col, values)
            else:
                batch = batch.append_column(col, values)
        return batch
