"""Quality: classifiers trained from SQL selections, Nemotron-CC percentile buckets, reports."""

from __future__ import annotations

import json

import pyarrow as pa

from dataengine.core.models import ModelRecord
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.engine import run_pipeline
from dataengine.engine.base import RunResult
from dataengine.filters.classifier_training import train_fasttext_classifier
from dataengine.filters.quality import THRESHOLDS_TABLE, fit_thresholds
from dataengine.reports.quality import create_quality_view, quality_report as _quality_sections
from dataengine.warehouse.models import list_models
from dataengine.api.warehouse import as_warehouse


def train_classifier(wh, name: str, positive_sql: str, negative_sql: str, **options) -> ModelRecord:
    """Train a fastText classifier on text selected by SQL; store it as the next version of ``name``.

    ``options``: positive_label, negative_label, holdout, seed, epoch, lr, word_ngrams, dim,
    min_count, threads. The record's ``metrics`` hold held-out precision/recall/F1/ROC-AUC.
    """
    return train_fasttext_classifier(as_warehouse(wh), name, positive_sql, negative_sql, **options)


def list_classifiers(wh) -> pa.Table:
    """Models in the warehouse with their held-out metrics."""
    rows = []
    for r in list_models(as_warehouse(wh)):
        m = json.loads(r["metrics"] or "{}")
        rows.append({
            "model": f"{r['name']}@{r['version']}", "kind": r["kind"], "labels": ",".join(json.loads(r["labels"])),
            "precision": m.get("precision"), "recall": m.get("recall"), "roc_auc": m.get("roc_auc"),
            "created": str(r["created_at"])[:16],
        })
    return pa.Table.from_pylist(rows) if rows else pa.table({"model": pa.array([], pa.string())})


def fit_quality(wh, table: str, classifiers: list[str], version: int | None = None, sample_percent: float | None = None,
                weight: str | None = None, seed: int = 0) -> list[dict]:
    """Fit token-weighted 5%..95% percentile thresholds per classifier and store them (one fit id)."""
    return fit_thresholds(as_warehouse(wh), table, classifiers, version=version, sample_percent=sample_percent,
                          weight=weight, seed=seed)


def quality_thresholds(wh) -> pa.Table:
    """Every stored threshold fit."""
    return as_warehouse(wh).sql(
        f"SELECT fit_id, classifier, table_name, snapshot_id, sample_percent, docs, weight, fitted_at "
        f"FROM {THRESHOLDS_TABLE} ORDER BY fit_id, classifier"
    )


def apply_quality(wh, table: str, classifiers: list[str], to: str | None = None, fit_id: int | None = None,
                  progress: bool = True, **executor) -> tuple[RunResult, str]:
    """Buckets, ensemble bucket and quality level from stored thresholds; then the readable view.

    Returns the run and the name of the ``<table>_quality`` view.
    """
    wh = as_warehouse(wh)
    params: dict = {"classifiers": list(classifiers)}
    if fit_id is not None:
        params["fit_id"] = fit_id
    pipe = pipeline_from_dict({
        "name": f"quality-apply:{table}",
        "source": {"table": table},
        "stages": [{"name": "quality_ensemble", "params": params}],
        "output": {"table": to or table, **({"mode": "overwrite"} if to and to != table else {})},
        **({"executor": executor} if executor else {}),
    })
    result = run_pipeline(pipe, wh, progress=progress)
    return result, create_quality_view(wh, to or table)


def quality_view(wh, table: str) -> str:
    """Create or replace the view ``<table>_quality`` with readable names for the main signals."""
    return create_quality_view(as_warehouse(wh), table)


def quality_report(wh, table: str, weight: str | None = None) -> dict[str, pa.Table]:
    """Levels and buckets per language, and each heuristic's pass rate (SQL aggregates)."""
    return _quality_sections(as_warehouse(wh), table, weight)
