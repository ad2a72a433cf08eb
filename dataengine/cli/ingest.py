"""`dataengine ingest warc | cc | jsonl | parquet`: outside files -> a warehouse table."""

from __future__ import annotations

from enum import Enum
from typing import List, Optional

import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out, print_run

ingest_app = typer.Typer(no_args_is_help=True, help="Ingest WARC/ARC, Common Crawl listings, JSONL or Parquet.")


class Extractor(str, Enum):
    trafilatura = "trafilatura"
    resiliparse = "resiliparse"
    none = "none"


class Favour(str, Enum):
    balanced = "balanced"
    precision = "precision"
    recall = "recall"


def _report(wh, results) -> None:
    for result in results:
        print_run(result)
        counts = api.extraction_counts(wh, result)
        if counts:
            out("extraction: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))


@ingest_app.command("warc")
def ingest_warc(
    paths: List[str] = typer.Argument(..., help="WARC/ARC files, globs, file:// or fsspec URLs (s3://, https://)"),
    table: str = typer.Option("raw", "--table", "-t", help="output table"),
    extractor: Extractor = typer.Option(Extractor.trafilatura, help="HTML -> text; none keeps raw HTML rows"),
    favour: Favour = typer.Option(Favour.recall, help="trafilatura: favour precision, recall (default: best F1 measured) or neither"),
    langid: bool = typer.Option(True, "--langid/--no-langid", help="add language and language_score"),
    html_table: Optional[str] = typer.Option(None, help="also keep the raw HTML in this table (re-extract later)"),
    keep_html: bool = typer.Option(False, help="keep the html column in the output table"),
    all_types: bool = typer.Option(False, "--all-content-types", help="keep non-HTML responses too"),
    crawl: Optional[str] = typer.Option(None, help="crawl column (default: from the path or warcinfo)"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite (needed when TABLE exists)"),
    workers: Optional[int] = typer.Option(None, help="worker processes"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """WARC/ARC files -> TABLE (response records with HTML; revisits and bad records counted)."""
    wh = open_cli_warehouse()
    _report(wh, api.ingest_warc(wh, paths, table=table, extractor=extractor.value, favour=favour.value, langid=langid,
                                html_table=html_table, keep_html=keep_html, all_content_types=all_types, crawl=crawl,
                                mode=mode, workers=workers, progress=not quiet))


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
    favour: Favour = typer.Option(Favour.recall),
    langid: bool = typer.Option(True, "--langid/--no-langid"),
    html_table: Optional[str] = typer.Option(None, help="also keep the raw HTML in this table"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite (needed when TABLE exists)"),
    workers: Optional[int] = typer.Option(None, help="worker processes (one WARC file per shard)"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """A Common Crawl listing -> TABLE, one shard per WARC file, with crawl and warc_file columns."""
    wh = open_cli_warehouse()
    _report(wh, api.ingest_cc(wh, paths_file, mirror=mirror, limit=limit, skip=skip, table=table,
                              extractor=extractor.value, favour=favour.value, langid=langid, html_table=html_table,
                              mode=mode, workers=workers, progress=not quiet))


def _text_field(value: str) -> str | None:
    return value or None


@ingest_app.command("jsonl")
def ingest_jsonl(
    paths: List[str] = typer.Argument(..., help="JSONL files (optionally .gz/.zst), globs or URLs"),
    table: str = typer.Option("raw", "--table", "-t"),
    text_field: str = typer.Option("text", help="field holding the text ('' for rows without text: chat, preference)"),
    id_field: Optional[str] = typer.Option("id", help="field with the record id (default: a hash of file and line)"),
    langid: bool = typer.Option(False, "--langid/--no-langid", help="add language and language_score"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite (needed when TABLE exists)"),
    workers: Optional[int] = typer.Option(None),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """JSONL files -> TABLE: the record's id stays `id`, top-level fields become typed columns."""
    wh = open_cli_warehouse()
    _report(wh, [api.ingest_jsonl(wh, paths, table=table, text_field=_text_field(text_field), id_field=id_field,
                                  langid=langid, mode=mode, workers=workers, progress=not quiet)])


@ingest_app.command("parquet")
def ingest_parquet(
    paths: List[str] = typer.Argument(..., help="Parquet files, globs or URLs"),
    table: str = typer.Option("raw", "--table", "-t"),
    text_field: str = typer.Option("text", help="column holding the text ('' for rows without text)"),
    id_field: Optional[str] = typer.Option("id", help="column with the record id (default: a hash of file and row)"),
    langid: bool = typer.Option(False, "--langid/--no-langid"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite (needed when TABLE exists)"),
    workers: Optional[int] = typer.Option(None),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Parquet files -> TABLE (every column passes through)."""
    wh = open_cli_warehouse()
    _report(wh, [api.ingest_parquet(wh, paths, table=table, text_field=_text_field(text_field), id_field=id_field,
                                    langid=langid, mode=mode, workers=workers, progress=not quiet)])
