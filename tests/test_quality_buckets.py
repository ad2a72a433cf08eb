"""Percentile fitting, stored thresholds, ensemble max, quality levels, the view and the report."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from conftest import run_cli
from dataengine.core.errors import DataEngineError, PipelineConfigError, StageError
from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.filters.quality import PERCENTILES, QualityEnsemble, buckets, fit_thresholds, level_names, load_thresholds


def _scored_docs(n: int, seed: int, start: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": [f"d{start + i:06d}" for i in range(n)],
            "text": ["x"] * n,
            "language": rng.choice(["en", "de"], n).tolist(),
            "text_tokens": rng.integers(1, 200, n),
            "a_score": rng.random(n),
            "b_score": rng.beta(2, 5, n),
        }
    )


def _apply(wh, table: str, params: dict) -> None:
    pipeline = pipeline_from_dict(
        {
            "source": {"table": table},
            "stages": [{"name": "quality_ensemble", "params": params}],
            "output": {"table": table},
            "executor": {"workers": 1},
        }
    )
    run_pipeline(pipeline, wh, progress=False)


@pytest.fixture
def scored(wh):
    wh.write_table("docs", _scored_docs(2500, seed=1))
    return wh


def test_each_bucket_holds_five_percent_of_tokens(scored):
    wh = scored
    rows = fit_thresholds(wh, "docs", ["a", "b"])
    assert {r["classifier"] for r in rows} == {"a", "b"} and rows[0]["weight"] == "text_tokens"
    _apply(wh, "docs", {"classifiers": ["a", "b"]})
    for name in ("a", "b"):
        shares = wh.sql(
            f"SELECT {name}_bucket AS b, sum(text_tokens) / (SELECT sum(text_tokens) FROM docs) AS share "
            f"FROM docs GROUP BY 1 ORDER BY 1"
        ).to_pylist()
        assert [r["b"] for r in shares] == list(range(20))
        for r in shares:
            assert abs(r["share"] - 0.05) <= 0.005, (name, r)


def test_thresholds_saved_and_reloaded_give_the_same_buckets(scored):
    wh = scored
    fitted = fit_thresholds(wh, "docs", ["a"])
    stored = load_thresholds(wh, ["a"])["a"]
    assert stored["fit_id"] == fitted[0]["fit_id"] and len(stored["thresholds"]) == len(PERCENTILES)
    _apply(wh, "docs", {"classifiers": ["a"]})
    first = {r["id"]: r["a_bucket"] for r in wh.sql("SELECT id, a_bucket FROM docs").to_pylist()}
    # a later snapshot: new rows with a different score distribution; the stored thresholds are reused
    later = _scored_docs(1000, seed=2, start=2500)
    later = later.set_column(later.schema.get_field_index("a_score"), "a_score", pa.array(np.random.default_rng(3).random(1000) ** 3))
    wh.write_table("docs", later)
    _apply(wh, "docs", {"classifiers": ["a"]})
    again = {r["id"]: r["a_bucket"] for r in wh.sql("SELECT id, a_bucket FROM docs").to_pylist()}
    assert all(again[k] == v for k, v in first.items())
    new = wh.sql("SELECT a_score, a_bucket FROM docs WHERE id >= 'd002500'").to_pylist()
    expected = buckets(np.array([r["a_score"] for r in new]), stored["thresholds"])
    assert [r["a_bucket"] for r in new] == expected.astype(int).tolist()
    # the skewed new rows are no longer uniform over buckets: thresholds were not refitted
    assert np.mean(expected < 5) > 0.4


def test_fit_on_a_sample_is_close_to_the_full_fit(scored):
    wh = scored
    full = _fitted(wh, None)
    sampled = _fitted(wh, 30.0)
    assert max(abs(a - b) for a, b in zip(full, sampled)) < 0.05
    assert full != sampled
    assert _fitted(wh, 30.0) == sampled  # the same seed draws the same sample


def _fitted(wh, sample):
    import json

    return json.loads(fit_thresholds(wh, "docs", ["a"], sample_percent=sample, seed=1)[0]["thresholds"])


def test_ensemble_is_the_max_and_levels_map_exactly():
    thresholds = [round(0.05 * i, 2) for i in range(1, 20)]
    stage = QualityEnsemble({"classifiers": ["a", "b"], "thresholds": {"a": thresholds, "b": thresholds}})
    batch = pa.table(
        {
            "a_score": pa.array([0.12, 0.97, 0.05, None, None, 0.0], pa.float64()),
            "b_score": pa.array([0.33, 0.10, 0.049, 0.50, None, 0.81], pa.float64()),
        }
    )
    out = stage(batch).to_pydict()
    assert out["a_bucket"] == [2, 19, 1, None, None, 0]
    assert out["b_bucket"] == [6, 2, 0, 10, None, 16]
    assert out["quality_bucket"] == [6, 19, 1, 10, None, 16]
    assert out["quality_level"] == ["medium-low", "high", "low", "medium", None, "high"]
    custom = QualityEnsemble(
        {"classifiers": ["a"], "thresholds": {"a": thresholds}, "levels": {"bad": 0, "ok": 10, "great": 19}, "prefix": "q"}
    )
    got = custom(pa.table({"a_score": [0.0, 0.49, 0.5, 0.94, 0.95]})).to_pydict()
    assert got["q_bucket"] == [0, 9, 10, 18, 19]
    assert got["q_level"] == ["bad", "bad", "ok", "ok", "great"]
    assert level_names({"low": 0, "medium-low": 4, "medium": 8, "medium-high": 12, "high": 16}) == (
        ["low"] * 4 + ["medium-low"] * 4 + ["medium"] * 4 + ["medium-high"] * 4 + ["high"] * 4
    )


def test_bad_levels_and_missing_thresholds_fail_before_work(scored):
    wh = scored
    with pytest.raises(PipelineConfigError, match="levels must give a level starting at bucket 0"):
        QualityEnsemble({"classifiers": ["a"], "levels": {"good": 5}})
    with pytest.raises(DataEngineError, match="no quality thresholds fitted yet"):
        _apply(wh, "docs", {"classifiers": ["a"]})
    fit_thresholds(wh, "docs", ["a"])
    with pytest.raises(StageError, match="no thresholds for classifier 'b'"):
        _apply(wh, "docs", {"classifiers": ["a", "b"]})
    with pytest.raises(DataEngineError, match="has no column 'c_score'"):
        fit_thresholds(wh, "docs", ["c"])
    with pytest.raises(DataEngineError, match="fitting 'a' failed"):
        fit_thresholds(wh, "docs", ["a"], weight="no_such_column")


@pytest.mark.slow
def test_cli_fit_apply_view_and_report(tmp_path):
    from dataengine.warehouse import Warehouse, init_warehouse

    w = tmp_path / "w"
    init_warehouse(w)
    docs = _scored_docs(400, seed=5)
    docs = docs.append_column("gopher_pass", pa.array(np.arange(400) % 4 != 0))  # 75% pass
    Warehouse(w).write_table("docs", docs)
    fit = run_cli("quality", "fit", "docs", "-c", "a", "-c", "b", warehouse=w, check=True)
    assert "stored fit 1 on docs@" in fit.stdout
    run_cli("quality", "apply", "docs", "-c", "a", "-c", "b", "-q", warehouse=w, check=True)
    view = Warehouse(w).sql(
        "SELECT ensemble_bucket, quality_level, a_classifier_score, a_percentile_bucket, passes_gopher_quality "
        "FROM docs_quality LIMIT 5"
    )
    assert view.num_rows == 5
    report = run_cli("quality", "report", "docs", warehouse=w, check=True).stdout
    for needle in ("quality levels per language", "medium-high", "ensemble buckets", "gopher_pass", "de (n=", "en (n="):
        assert needle in report, needle
    rates = Warehouse(w).sql("SELECT round(100.0 * avg(CAST(gopher_pass AS INT)), 1) AS r FROM docs GROUP BY language")
    for r in rates.column(0).to_pylist():
        assert f"{r}" in report
