"""`dataengine classifier ...` and `dataengine quality ...`: train classifiers, fit and apply buckets, report."""

from __future__ import annotations

import json
from typing import List, Optional

import pyarrow as pa
import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out, print_arrow, print_run

classifier_app = typer.Typer(no_args_is_help=True, help="Train and list quality classifiers (stored in the warehouse).")
quality_app = typer.Typer(no_args_is_help=True, help="Percentile buckets, quality levels, views and reports.")


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
    record = api.train_classifier(
        open_cli_warehouse(), name, positive, negative, positive_label=positive_label, negative_label=negative_label,
        holdout=holdout, seed=seed, epoch=epoch, lr=lr, word_ngrams=word_ngrams, dim=dim, min_count=min_count,
        threads=threads,
    )
    m = record.metrics
    out(
        f"trained [bold]{record.ref}[/bold] ({m['train_positive']}+{m['train_negative']} train, "
        f"{m['test_positive']}+{m['test_negative']} held out): precision {m['precision']:.3f} "
        f"recall {m['recall']:.3f} F1 {m['f1']:.3f} accuracy {m['accuracy']:.3f} "
        f"(majority baseline {m['majority_baseline_accuracy']:.3f}) ROC-AUC {m['roc_auc']:.3f}"
    )
    out(f"model file: {record.path}")


@classifier_app.command("list")
def classifier_list():
    """Models in the warehouse with their held-out metrics."""
    print_arrow(api.list_classifiers(open_cli_warehouse()), 100)


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
    rows = api.fit_quality(open_cli_warehouse(), table, classifier, version=version, sample_percent=sample,
                           weight=weight, seed=seed)
    out(f"stored fit {rows[0]['fit_id']} on {table}@{rows[0]['snapshot_id']} ({rows[0]['docs']:,} scored docs)")
    per_classifier = {r["classifier"]: json.loads(r["thresholds"]) for r in rows}
    shown = [
        {"percentile": f"{5 * (i + 1)}%", "bucket starts": i + 1, **{c: round(t[i], 5) for c, t in per_classifier.items()}}
        for i in range(len(next(iter(per_classifier.values()))))
    ]
    print_arrow(pa.Table.from_pylist(shown), 100)


@quality_app.command("thresholds")
def quality_thresholds():
    """Stored threshold fits."""
    print_arrow(api.quality_thresholds(open_cli_warehouse()), 100)


@quality_app.command("apply")
def quality_apply(
    table: str,
    classifier: List[str] = typer.Option(..., "--classifier", "-c", help="classifier names; repeatable"),
    to: Optional[str] = typer.Option(None, help="output table (default: annotate TABLE in place)"),
    fit_id: Optional[int] = typer.Option(None, help="stored fit to use (default: latest per classifier)"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Buckets, ensemble bucket and quality level from stored thresholds; then the readable view."""
    result, view = api.apply_quality(open_cli_warehouse(), table, classifier, to=to, fit_id=fit_id, progress=not quiet)
    print_run(result)
    out(f"view {view} updated")


@quality_app.command("view")
def quality_view(table: str):
    """Create or replace the view TABLE_quality with readable names for the main signals."""
    out(f"created view {api.quality_view(open_cli_warehouse(), table)}")


@quality_app.command("report")
def quality_report(
    table: str,
    weight: Optional[str] = typer.Option(None, help="SQL token weight per row"),
    html: Optional[str] = typer.Option(None, "--html", help="also write the report with plots to this HTML file"),
):
    """Buckets and levels per language, and the pass rate of each heuristic."""
    titles = {
        "levels": "quality levels per language (share of tokens)",
        "buckets": "ensemble buckets per language",
        "heuristics": "heuristic pass rate (% of documents) per language",
    }
    wh = open_cli_warehouse()
    for key, result in api.quality_report(wh, table, weight).items():
        out(f"[bold]{titles[key]}[/bold]")
        print_arrow(result, limit=500)
    if html:
        out(f"report written to {api.quality_report_file(wh, table, html, weight)}")
