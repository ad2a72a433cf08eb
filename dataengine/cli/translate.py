"""`dataengine translate --from SQL --to TABLE --languages de,fr [--backend ... --model ...] [--adapt/--no-adapt]`.

CultureGuard's pipeline (segregation, adaptation, translation, quality signals) over the
rows of a query, into one table keyed by (source_id, language); see docs/translation.md.
"""

from __future__ import annotations

from typing import List, Optional

import typer

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out, parse_key_values, print_arrow


def translate(
    from_: str = typer.Option(..., "--from", help="SQL (or a table name) giving the source rows (id, text or messages, labels...)"),
    to: str = typer.Option(..., "--to", help="output table: one row per (source_id, language)"),
    languages: str = typer.Option(..., "--languages", "-l", help="target languages, e.g. ar,de,es,fr,hi,ja,th,zh"),
    backend: str = typer.Option("transformers", help="transformers | http | vllm | an installed plugin's"),
    model: Optional[str] = typer.Option(None, help="model: smollm2 (default for transformers), a folder, a .gguf, or the served name (http)"),
    adapt: bool = typer.Option(True, "--adapt/--no-adapt", help="cultural segregation + adaptation before translating"),
    judge: bool = typer.Option(True, "--judge/--no-judge", help="LLM judge score (1-5) and reason per translation"),
    source_language: str = typer.Option("en", help="the language of the source rows"),
    id_column: str = typer.Option("id", help="source id column (the output is keyed by it and the language)"),
    text_column: str = typer.Option("text", help="source text column"),
    messages_column: Optional[str] = typer.Option(None, help="chat rows: a list<struct<role, content>> column, translated turn by turn"),
    label_column: List[str] = typer.Option([], "--label-column", help="label/category column the adaptation must keep (repeatable)"),
    label_classifier: Optional[str] = typer.Option(None, help="classifier (path or warehouse NAME[@N]) whose label for the translation must equal --check-label"),
    check_label: Optional[str] = typer.Option(None, help="the column --label-classifier is checked against"),
    quality: List[str] = typer.Option([], "--quality", help="translation_quality parameter key=value (YAML), e.g. min_backsim=0.8"),
    base_url: Optional[str] = typer.Option(None, help="http: server URL, e.g. http://127.0.0.1:8000/v1"),
    api_key: Optional[str] = typer.Option(None, envvar="DATAENGINE_LLM_API_KEY", help="http: bearer token"),
    concurrency: Optional[int] = typer.Option(None, help="http: requests in flight"),
    timeout: Optional[float] = typer.Option(None, help="http: seconds per request"),
    retries: Optional[int] = typer.Option(None, help="http: retries on 429/5xx/timeouts/connection errors"),
    batch_size: Optional[int] = typer.Option(None, help="transformers: prompts per generate() call"),
    max_tokens: Optional[int] = typer.Option(None, help="most tokens generated per request"),
    temperature: Optional[float] = typer.Option(None, help="0 = greedy (the default of every step)"),
    seed: int = typer.Option(0, help="sampling seed, recorded on every row"),
    prompt_version: str = typer.Option("v1", help="version of the prompt files"),
    mode: str = typer.Option("overwrite", help="overwrite (a re-run replaces the table: no duplicates) | append"),
    batch_rows: int = typer.Option(16, help="source rows per batch (each becomes one row per language)"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not read or write the request cache"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Translate a dataset into many languages with cultural adaptation; quality signals as columns."""
    backend_options = {k: v for k, v in (("base_url", base_url), ("api_key", api_key), ("concurrency", concurrency),
                                         ("timeout", timeout), ("retries", retries), ("batch_size", batch_size))
                       if v is not None}
    sampling = {k: v for k, v in (("max_tokens", max_tokens), ("temperature", temperature)) if v is not None}
    result = api.translate(
        open_cli_warehouse(), from_, to, languages, backend=backend, model=model, backend_options=backend_options,
        sampling=sampling, seed=seed, adapt=adapt, source_language=source_language, id_column=id_column,
        text_column=text_column, messages_column=messages_column, label_columns=label_column, judge=judge,
        label_classifier=label_classifier, label_column=check_label, quality=parse_key_values(quality, "--quality"),
        prompt_version=prompt_version, mode=mode, batch_rows=batch_rows, cache=not no_cache, progress=not quiet,
    )
    if not quiet:
        print_arrow(result.summary_table())
    out(
        f"[green]committed[/green] {result.rows:,} rows ({result.source_rows:,} source rows x {len(result.languages)} "
        f"languages) to {result.output_table} as snapshot {result.snapshot_id}: {result.kept:,} pass every check "
        f"(translation_keep), {result.errors:,} with errors, {result.skipped:,} without text; {result.requests:,} "
        f"requests, {result.sent:,} sent to the model, {result.requests - result.sent:,} from the cache; "
        f"{result.completion_tokens:,} tokens generated ({result.seconds:.1f}s)"
    )
    if result.errors:
        out(f"[yellow]{result.errors:,} row(s) failed;[/yellow] re-run the same command to fill them in (only failed requests are sent)")
