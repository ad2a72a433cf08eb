"""`dataengine ingest ...`: outside files -> a warehouse table, as one ordinary pipeline run.

Each command only builds a pipeline (source files + reader options + stages) and hands
it to the executor, so ingest resumes per file, is idempotent (same files, same ids,
already-committed runs are skipped) and its counts are stored with the run like any other.

With ``--html-table`` web ingest runs in two steps: WARC -> raw HTML table, then that
table -> extract -> langid -> ``--table``. Re-extracting later with other settings reads
the HTML table (Parquet) instead of the WARCs:
``dataengine run --from html --stage extract:extractor=resiliparse --stage langid --to docs2``.
"""

from __future__ import annotations

import glob
import os
from enum import Enum
from typing import List, Optional

import typer

from dataengine.core.errors import DataEngineError

ingest_app = typer.Typer(no_args_is_help=True, help="Ingest WARC/ARC, Common Crawl listings, JSONL or Parquet.")


class Extractor(str, Enum):
    trafilatura = "trafilatura"
    resiliparse = "resiliparse"
    none = "none"


class Favour(str, Enum):
    balanced = "balanced"
    precision = "precision"
    recall = "recall"


def web_stages(extractor: str, favour: str = "balanced", langid: bool = True, keep_html: bool = False) -> list[dict]:
    """The stages that turn raw HTML rows into text documents."""
    stages: list[dict] = []
    if extractor != "none":
        stages.append({"name": "extract", "params": {"extractor": extractor, "favour": favour, "keep_html": keep_html}})
        if langid:
            stages.append({"name": "langid", "params": {}})
    return stages


def web_pipelines(
    name: str,
    files: list[str],
    table: str,
    reader_options: dict,
    stages: list[dict],
    html_table: str | None = None,
    workers: int | None = None,
    mode: str | None = None,
) -> list[dict]:
    """One pipeline (files -> table), or two with a raw HTML table in between."""
    executor = {"workers": workers} if workers else {}
    output = {"table": html_table or table}
    if mode and not html_table:
        output["mode"] = mode
    first = {
        "name": name,
        "source": {"files": files, "format": "warc", "options": reader_options},
        "stages": [] if html_table else stages,
        "output": output,
        "executor": executor,
    }
    if not html_table:
        return [first]
    second = {
        "name": f"{name}:extract",
        "source": {"table": html_table},  # version filled in after the first run commits
        "stages": stages,
        "output": {"table": table, **({"mode": mode} if mode else {})},
        "executor": executor,
    }
    return [first, second]


def run_pipelines(raws: list[dict], quiet: bool = False) -> list:
    """Run pipelines in order; a table source without a version reads the previous run's snapshot."""
    from dataengine.cli.common import _open
    from dataengine.cli.app import _report_run
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import pipeline_from_dict

    wh = _open()
    results = []
    for raw in raws:
        if "table" in raw["source"] and results and raw["source"].get("version") is None:
            raw = {**raw, "source": {**raw["source"], "version": results[-1].snapshot_id}}
        pipeline = pipeline_from_dict(raw, origin=raw["name"])
        result = run_pipeline(pipeline, wh, progress=not quiet)
        _report_run(result)
        _report_extraction(wh, result)
        results.append(result)
    return results


def _report_extraction(wh, result) -> None:
    """Print extract_status counts of the rows this run wrote (from its staged files)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from dataengine.core.progress import console

    files = sorted(glob.glob(os.path.join(wh.config.runs_path, result.run_id, "*.parquet")))
    files = [f for f in files if "extract_status" in pq.read_schema(f).names]
    if not files or result.already_committed:
        return
    statuses = pq.read_table(files, columns=["extract_status"]).column(0)
    counts = pc.value_counts(statuses).to_pylist()
    text = ", ".join(f"{c['values']}: {c['counts']:,}" for c in sorted(counts, key=lambda c: -c["counts"]))
    console.print(f"extraction: {text}")


def _check_local(paths: list[str]) -> list[str]:
    return [os.path.abspath(p) if "://" not in p and os.path.exists(p) else p for p in paths]


@ingest_app.command("warc")
def ingest_warc(
    paths: List[str] = typer.Argument(..., help="WARC/ARC files, globs, file:// or fsspec URLs (s3://, https://)"),
    table: str = typer.Option("raw", "--table", "-t", help="output table"),
    extractor: Extractor = typer.Option(Extractor.trafilatura, help="HTML -> text; none keeps raw HTML rows"),
    favour: Favour = typer.Option(Favour.balanced, help="trafilatura: favour precision, recall or neither"),
    langid: bool = typer.Option(True, "--langid/--no-langid", help="add language and language_score"),
    html_table: Optional[str] = typer.Option(None, help="also keep the raw HTML in this table (re-extract later)"),
    keep_html: bool = typer.Option(False, help="keep the html column in the output table"),
    all_types: bool = typer.Option(False, "--all-content-types", help="keep non-HTML responses too"),
    crawl: Optional[str] = typer.Option(None, help="crawl column (default: from the path or warcinfo)"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite"),
    workers: Optional[int] = typer.Option(None, help="worker processes"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """WARC/ARC files -> TABLE (response records with HTML; revisits and bad records counted)."""
    options: dict = {}
    if crawl:
        options["crawl"] = crawl
    if all_types:
        options["content_types"] = None
    stages = web_stages(extractor.value, favour.value, langid, keep_html)
    run_pipelines(
        web_pipelines(f"ingest-warc:{table}", _check_local(paths), table, options, stages, html_table, workers, mode),
        quiet,
    )


@ingest_app.command("cc")
def ingest_cc(
    paths_file: str = typer.Argument(..., help="a warc.paths.gz listing (path or URL), or a crawl name CC-MAIN-YYYY-WW"),
    mirror: Optional[str] = typer.Option(
        None, help="prefix for the listed paths: local folder, s3://commoncrawl/ or https://data.commoncrawl.org/"
    ),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", help="only the first N WARC files"),
    skip: int = typer.Option(0, help="skip the first N WARC files of the listing"),
    table: str = typer.Option("cc", "--table", "-t", help="output table"),
    extractor: Extractor = typer.Option(Extractor.trafilatura, help="HTML -> text; none keeps raw HTML rows"),
    favour: Favour = typer.Option(Favour.balanced),
    langid: bool = typer.Option(True, "--langid/--no-langid"),
    html_table: Optional[str] = typer.Option(None, help="also keep the raw HTML in this table"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite"),
    workers: Optional[int] = typer.Option(None, help="worker processes (one WARC file per shard)"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """A Common Crawl listing -> TABLE, one shard per WARC file, with crawl and warc_file columns."""
    from dataengine.connectors.commoncrawl import warc_urls

    if limit is not None and limit < 1:
        raise DataEngineError("--limit must be at least 1")
    urls, crawl = warc_urls(paths_file, mirror=mirror, limit=limit, skip=skip)
    options = {"crawl": crawl, "source": "commoncrawl"} if crawl else {"source": "commoncrawl"}
    stages = web_stages(extractor.value, favour.value, langid)
    run_pipelines(web_pipelines(f"ingest-cc:{table}", urls, table, options, stages, html_table, workers, mode), quiet)


def _file_ingest(fmt: str, paths: list[str], table: str, text_field: str, id_field: Optional[str],
                 langid: bool, mode: Optional[str], workers: Optional[int], quiet: bool) -> None:
    raw = {
        "name": f"ingest-{fmt}:{table}",
        "source": {"files": _check_local(paths), "format": fmt,
                   "options": {"text_field": text_field, "id_field": id_field}},
        "stages": ["langid"] if langid else [],
        "output": {"table": table, **({"mode": mode} if mode else {})},
        "executor": {"workers": workers} if workers else {},
    }
    run_pipelines([raw], quiet)


@ingest_app.command("jsonl")
def ingest_jsonl(
    paths: List[str] = typer.Argument(..., help="JSONL files (optionally .gz/.zst), globs or URLs"),
    table: str = typer.Option("raw", "--table", "-t"),
    text_field: str = typer.Option("text", help="field holding the text"),
    id_field: Optional[str] = typer.Option("id", help="field with the record id (default: line number)"),
    langid: bool = typer.Option(False, "--langid/--no-langid", help="add language and language_score"),
    mode: Optional[str] = typer.Option(None),
    workers: Optional[int] = typer.Option(None),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """JSONL files -> TABLE (bad lines counted and skipped)."""
    _file_ingest("jsonl", paths, table, text_field, id_field, langid, mode, workers, quiet)


@ingest_app.command("parquet")
def ingest_parquet(
    paths: List[str] = typer.Argument(..., help="Parquet files, globs or URLs"),
    table: str = typer.Option("raw", "--table", "-t"),
    text_field: str = typer.Option("text", help="column holding the text"),
    id_field: Optional[str] = typer.Option("id", help="column with the record id (default: row number)"),
    langid: bool = typer.Option(False, "--langid/--no-langid"),
    mode: Optional[str] = typer.Option(None),
    workers: Optional[int] = typer.Option(None),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Parquet files -> TABLE (other columns pass through)."""
    _file_ingest("parquet", paths, table, text_field, id_field, langid, mode, workers, quiet)
