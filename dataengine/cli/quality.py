"""`dataengine classifier ...` and `dataengine quality ...`: train classifiers, fit and apply buckets, report."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

classifier_app = typer.Typer(no_args_is_help=True, help="Train and list quality classifiers (stored in the warehouse).")
quality_app = typer.Typer(no_args_is_help=True, help="Percentile buckets, quality levels, views and reports.")


def _wh():
    from dataengine.cli.common import _open

    return _open()


def _print(table, limit: int = 100) -> None:
    from dataengine.cli.common import _print_arrow

    _print_arrow(table, limit)


def _say(text: str) -> None:
    from rich.console import Console

    Console(soft_wrap=True).print(text, highlight=False)


# -- classifier --------------------------------------------------------------------------

@classifier_app.command("train")
def classifier_train(
    positive: str = typer.Option(..., "--positive", help="SQL selecting positive examples (a `text` column)"),
    negative: str = typer.Option(..., "--negative", help="SQL selecting negative examples"),
    name: str = typer.Option(..., "--name", help="model name; each training adds a version"),
    positive_label: str = typer.Option("hq", help="label of the positive class"),
    negative_label: str = typer.Option("lq", help="label of the negative class"),
    holdout: float = typer.Option(0.2, help="fraction held out for precision/recall"),
    seed: int = typer.Option(0),
    epoch: int = typer.Option(20),
    lr: float = typer.Option(0.5),
    word_ngrams: int = typer.Option(2),
    dim: int = typer.Option(64),
    min_count: int = typer.Option(1),
    threads: int = typer.Option(1, help="fastText threads (1 = reproducible)"),
):
    """Train a fastText classifier on text selected by SQL; store it with its held-out metrics."""
    from dataengine.filters.classifier_training import train_fasttext_classifier

    record = train_fasttext_classifier(
        _wh(), name, positive, negative, positive_label=positive_label, negative_label=negative_label,
        holdout=holdout, seed=seed, epoch=epoch, lr=lr, word_ngrams=word_ngrams, dim=dim,
        min_count=min_count, threads=threads,
    )
    m = record.metrics
    _say(
        f"trained [bold]{record.ref}[/bold] ({m['train_positive']}+{m['train_negative']} train, "
        f"{m['test_positive']}+{m['test_negative']} held out): precision {m['precision']:.3f} "
        f"recall {m['recall']:.3f} F1 {m['f1']:.3f} accuracy {m['accuracy']:.3f} "
        f"(majority baseline {m['majority_baseline_accuracy']:.3f}) ROC-AUC {m['roc_auc']:.3f}"
    )
    _say(f"model file: {record.path}")


@classifier_app.command("list")
def classifier_list():
    """Models in the warehouse with their held-out metrics."""
    import pyarrow as pa

    from dataengine.warehouse.models import list_models

    rows = list_models(_wh())
    out = []
    for r in rows:
        m = json.loads(r["metrics"] or "{}")
        out.append(
            {
                "model": f"{r['name']}@{r['version']}", "kind": r["kind"], "labels": ",".join(json.loads(r["labels"])),
                "precision": m.get("precision"), "recall": m.get("recall"), "roc_auc": m.get("roc_auc"),
                "created": str(r["created_at"])[:16],
            }
        )
    _print(pa.Table.from_pylist(out) if out else pa.table({"model": pa.array([], pa.string())}))


# -- quality -----------------------------------------------------------------------------

@quality_app.command("fit")
def quality_fit(
    table: str,
    classifier: List[str] = typer.Option(..., "--classifier", "-c", help="classifier name (scores in <name>_score); repeatable"),
    version: Optional[int] = typer.Option(None, help="snapshot to fit on (default: current)"),
    sample: Optional[float] = typer.Option(None, help="fit on a Bernoulli sample of this percent of rows"),
    weight: Optional[str] = typer.Option(None, help="SQL token weight per row (default: text_tokens, else length(text)/4)"),
    seed: int = typer.Option(0, help="sample seed"),
):
    """Fit token-weighted 5%..95% percentile thresholds per classifier and store them."""
    import pyarrow as pa

    from dataengine.filters.quality import fit_thresholds

    rows = fit_thresholds(_wh(), table, classifier, version=version, sample_percent=sample, weight=weight, seed=seed)
    _say(f"stored fit {rows[0]['fit_id']} on {table}@{rows[0]['snapshot_id']} ({rows[0]['docs']:,} scored docs)")
    per_classifier = {r["classifier"]: json.loads(r["thresholds"]) for r in rows}
    shown = [
        {"percentile": f"{5 * (i + 1)}%", "bucket starts": i + 1, **{c: round(t[i], 5) for c, t in per_classifier.items()}}
        for i in range(len(next(iter(per_classifier.values()))))
    ]
    _print(pa.Table.from_pylist(shown))


@quality_app.command("thresholds")
def quality_thresholds():
    """Stored threshold fits."""
    from dataengine.filters.quality import THRESHOLDS_TABLE

    _print(
        _wh().sql(
            f"SELECT fit_id, classifier, table_name, snapshot_id, sample_percent, docs, weight, fitted_at "
            f"FROM {THRESHOLDS_TABLE} ORDER BY fit_id, classifier"
        )
    )


@quality_app.command("apply")
def quality_apply(
    table: str,
    classifier: List[str] = typer.Option(..., "--classifier", "-c", help="classifier names; repeatable"),
    to: Optional[str] = typer.Option(None, help="output table (default: annotate TABLE in place)"),
    fit_id: Optional[int] = typer.Option(None, help="stored fit to use (default: latest per classifier)"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Buckets, ensemble bucket and quality level from stored thresholds; then the readable view."""
    from dataengine.cli.app import _report_run
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict
    from dataengine.filters.quality_report import create_quality_view

    wh = _wh()
    params = {"classifiers": list(classifier)}
    if fit_id is not None:
        params["fit_id"] = fit_id
    pipeline = pipeline_from_dict(
        {
            "name": f"quality-apply:{table}",
            "source": {"table": table},
            "stages": [{"name": "quality_ensemble", "params": params}],
            "output": {"table": to or table},
        }
    )
    _report_run(run_pipeline(pipeline, wh, progress=not quiet))
    _say(f"view {create_quality_view(wh, to or table)} updated")


@quality_app.command("view")
def quality_view(table: str):
    """Create or replace the view TABLE_quality with readable names for the main signals."""
    from dataengine.filters.quality_report import create_quality_view

    _say(f"created view {create_quality_view(_wh(), table)}")


@quality_app.command("report")
def quality_report(
    table: str,
    weight: Optional[str] = typer.Option(None, help="SQL token weight per row"),
):
    """Buckets and levels per language, and the pass rate of each heuristic."""
    from dataengine.filters.quality_report import quality_report as build

    sections = build(_wh(), table, weight)
    titles = {
        "levels": "quality levels per language (share of tokens)",
        "buckets": "ensemble buckets per language",
        "heuristics": "heuristic pass rate (% of documents) per language",
    }
    for key, result in sections.items():
        _say(f"[bold]{titles[key]}[/bold]")
        _print(result, limit=500)
