"""`dataengine demo`: the product end to end on data shipped inside the package.

Each capability that lands adds its step here; the whole demo stays well under three
minutes on 2 cores.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from rich.console import Console

from dataengine.engine import run_pipeline
from dataengine.core.pipeline import pipeline_from_dict
from dataengine.warehouse import Warehouse, init_warehouse

out = Console()


def demo_file(name: str) -> str:
    return str(resources.files("dataengine") / "data" / name)


def _step(title: str) -> None:
    out.rule(f"[bold cyan]{title}")


def _show(wh: Warehouse, query: str) -> None:
    from dataengine.cli.common import _print_arrow

    out.print(f"[dim]dataengine sql[/dim] [bold]{query}[/bold]")
    _print_arrow(wh.sql(query), limit=10)


def run_demo(warehouse_path: str, progress: bool = True) -> None:
    start = time.time()
    init_warehouse(warehouse_path)
    wh = Warehouse(warehouse_path)

    _step("1. ingest: a real Common Crawl WARC -> extract (trafilatura) -> langid -> table `raw`")
    web = pipeline_from_dict(
        {
            "name": "demo-ingest-warc",
            "source": {"files": [demo_file("cc-main-2020-34-excerpt.warc.gz")], "format": "warc"},
            "stages": ["extract", "langid"],
            "output": {"table": "raw"},
        }
    )
    _report(run_pipeline(web, wh, progress=progress))
    _show(wh, "SELECT language, extract_status, count(*) AS docs FROM raw GROUP BY ALL ORDER BY docs DESC")
    _show(wh, "SELECT crawl, language, round(language_score::DOUBLE, 2) AS score, title, url FROM raw LIMIT 5")
    # 16 web pages are too few for the later steps (dedup, blends, training): the shipped
    # JSONL corpus joins them in the same table (new columns are null for its rows).
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

    _step("7. train: a tiny Llama on the latest demo blend version (512-token BPE), recorded in the warehouse")
    _demo_train(wh)

    _step("8. generate: Nemotron-CC rephrasing routed by a quality column, with full provenance")
    from dataengine.demo_generate import demo_generate

    demo_generate(wh, _show)
    out.print(f"[bold green]demo finished in {time.time() - start:.1f}s[/bold green]; warehouse at {wh.config.root}")


def _demo_blend(wh: Warehouse) -> None:
    from dataengine.cli.blend import _version_table
    from dataengine.warehouse.blends import Blends

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


def _demo_train(wh: Warehouse) -> None:
    """~150 steps of the `tiny` preset on one core: validation loss falls well below the unigram baseline."""
    import datetime as dt

    from dataengine.core.errors import DataEngineError
    from dataengine.trainer.config import load_config
    from dataengine.trainer.data import load_manifest
    from dataengine.trainer.loop import train
    from dataengine.trainer.runs import record_run
    from dataengine.warehouse.blends import Blends
    from dataengine.warehouse.export import export_version
    from dataengine.warehouse.tokenizers import load_tokenizer, register_tokenizer, train_tokenizer

    blends = Blends(wh)
    if blends._latest_version("demo") is None:
        _demo_blend(wh)
    version = blends.version("demo")
    try:
        tok = load_tokenizer("demo-bpe512", wh)
    except DataEngineError:
        texts = (t for c in version["components"] for b in blends.iter_component(c["sql"], version["snapshot_id"])
                 for t in b.column("text").to_pylist() if t)
        tok = register_tokenizer(wh, "demo-bpe512", train_tokenizer(texts, 512), source=f"demo@{version['version']}")
    manifest = load_manifest(export_version(blends, f"demo@{version['version']}", "demo-bpe512"))
    cfg = load_config(None, {"steps": 150, "eval_every": 50, "checkpoint_every": 150, "progress": False})
    started = dt.datetime.now(dt.timezone.utc)
    folder = Path(wh.config.root) / "training" / f"demo@{version['version']}-demo"
    summary = train(manifest, cfg, folder, tok.tokenizer, resume=False)
    record_run(wh, summary, cfg.model_dump(mode="json"), started)
    out.print(f"model (transformers folder with tokenizer): {summary['model_path']}; report: {summary['report_path']}")
    _show(wh, "SELECT blend_ref AS blend, optimizer AS optim, steps, round(final_val_loss, 2) AS val_loss, "
              "round(unigram_val_loss, 2) AS unigram, round(tokens_per_s) AS tok_s "
              "FROM dataengine.training_runs ORDER BY finished_at")


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
    from dataengine.cli.app import _report_run

    _report_run(result)
