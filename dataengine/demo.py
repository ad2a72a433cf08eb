"""`dataengine demo`: the product end to end on data shipped inside the package.

Each capability that lands adds its step here; the whole demo stays well under three
minutes on 2 cores.
"""

from __future__ import annotations

import time
from importlib import resources

from rich.console import Console

from dataengine.executors import run_pipeline
from dataengine.pipeline import pipeline_from_dict
from warehouse import Warehouse, init_warehouse

out = Console()


def demo_file(name: str) -> str:
    return str(resources.files("dataengine") / "data" / name)


def _step(title: str) -> None:
    out.rule(f"[bold cyan]{title}")


def _show(wh: Warehouse, query: str) -> None:
    from dataengine.cli_common import _print_arrow

    out.print(f"[dim]dataengine sql[/dim] [bold]{query}[/bold]")
    _print_arrow(wh.sql(query), limit=10)


def run_demo(warehouse_path: str, progress: bool = True) -> None:
    start = time.time()
    init_warehouse(warehouse_path)
    wh = Warehouse(warehouse_path)

    _step("1. ingest: a JSONL corpus -> table `raw`")
    ingest = pipeline_from_dict(
        {
            "name": "demo-ingest",
            "source": {"files": [demo_file("demo_corpus.jsonl.gz")], "format": "jsonl"},
            "output": {"table": "raw"},
        }
    )
    _report(run_pipeline(ingest, wh, progress=progress))

    _step("2. annotate: text statistics, written back as a new snapshot of `raw`")
    annotate = pipeline_from_dict(
        {
            "name": "demo-annotate",
            "source": {"table": "raw"},
            "stages": ["text_stats"],
            "output": {"table": "raw"},
            "executor": {"workers": 2, "shards": 4},
        }
    )
    _report(run_pipeline(annotate, wh, progress=progress))

    _step("3. query with SQL (annotate, don't delete: select later)")
    _show(wh, "SELECT count(*) AS docs, sum(text_words) AS words, round(avg(text_words), 1) AS mean_words FROM raw")
    _show(wh, "SELECT text_words // 100 * 100 AS words_bucket, count(*) AS docs FROM raw GROUP BY 1 ORDER BY 1")
    _show(wh, "SELECT snapshot_id, pipeline, output_table, rows_out FROM dataengine.runs ORDER BY snapshot_id")
    first = wh.history("raw").column("snapshot_id")[0].as_py()
    out.print(f"time travel: `raw@{first}` is the table before annotation:")
    _show(
        wh,
        f"SELECT (SELECT count(*) FROM (DESCRIBE SELECT * FROM raw@{first})) AS columns_then, "
        "(SELECT count(*) FROM (DESCRIBE SELECT * FROM raw)) AS columns_now",
    )
    out.print(f"[bold green]demo finished in {time.time() - start:.1f}s[/bold green]; warehouse at {wh.config.root}")


def _report(result) -> None:
    from dataengine.cli import _report_run

    _report_run(result)
