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
    _step("4. dedup: exact and MinHash-LSH near-duplicate clusters (global stages)")
    dedup = pipeline_from_dict(
        {
            "name": "demo-dedup",
            "source": {"table": "raw"},
            "stages": ["exact_dedup", {"name": "fuzzy_dedup", "params": {"order_by": ["id"]}}],
            "output": {"table": "raw"},
            "executor": {"workers": 2, "shards": 2},
        }
    )
    _report(run_pipeline(dedup, wh, progress=progress))
    _show(
        wh,
        "SELECT count(*) AS docs, count(*) FILTER (WHERE NOT dup_keep) AS exact_dups, "
        "count(*) FILTER (WHERE NOT fuzzy_dup_keep) AS near_dups FROM raw",
    )

    _step("5. blend: two components by SQL, frozen as an immutable version")
    _demo_blend(wh)

    _step("6. quality: Gopher and FineWeb heuristic presets as columns (select later in SQL)")
    _demo_heuristics(wh, progress)
    out.print(f"[bold green]demo finished in {time.time() - start:.1f}s[/bold green]; warehouse at {wh.config.root}")


def _demo_blend(wh: Warehouse) -> None:
    from dataengine.cli_blend import _version_table
    from warehouse.blends import Blends

    blends = Blends(wh)
    if blends._latest_revision("demo") is None:
        blends.create(
            {
                "name": "demo",
                "description": "long documents weighted up; near-duplicates out",
                "components": [
                    {"name": "long", "sql": "SELECT id, text FROM raw WHERE fuzzy_dup_keep AND text_words > 200", "weight": 0.7},
                    {"name": "short", "sql": "SELECT id, text FROM raw WHERE fuzzy_dup_keep AND text_words <= 200", "weight": 0.3},
                ],
            }
        )
    version = blends.freeze("demo", tokenizer="gpt2", target_tokens=1_000_000)
    out.print(_version_table(version))
    out.print(f"frozen demo@{version['version']} (content hash {version['content_hash']}); token export: {version['manifest']}")


def _demo_heuristics(wh: Warehouse, progress: bool) -> None:
    heuristics = pipeline_from_dict(
        {
            "name": "demo-heuristics",
            "source": {"table": "raw"},
            "stages": [{"name": "heuristics", "params": {"presets": ["gopher", "fineweb"]}}],
            "output": {"table": "raw"},
            "executor": {"workers": 2, "shards": 2},
        }
    )
    _report(run_pipeline(heuristics, wh, progress=progress))
    _show(
        wh,
        "SELECT round(100 * avg(heuristics_gopher_pass::INT), 1) AS gopher_pass_pct, "
        "round(100 * avg(heuristics_fineweb_pass::INT), 1) AS fineweb_pass_pct, "
        "round(median(gopher_rep_dup_line_frac), 3) AS median_dup_line_frac FROM raw",
    )


def _report(result) -> None:
    from dataengine.cli import _report_run

    _report_run(result)
