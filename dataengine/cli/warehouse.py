"""`dataengine init | tables | history | sql`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from dataengine.api import create_warehouse, warehouse_path, write_sql
from dataengine.api import query as query_sql
from dataengine.cli.common import open_cli_warehouse, out, print_arrow, state
from dataengine.core.errors import DataEngineError
from dataengine.core.progress import console

FORMATS = ("table", "csv", "json", "jsonl", "parquet")


def init(
    catalog: str = typer.Option("sqlite", help="sqlite (default, concurrent readers) | duckdb | postgres:<dsn>"),
    data_path: Optional[str] = typer.Option(None, help="where Parquet files go (default: WAREHOUSE/data)"),
):
    """Create a warehouse (idempotent)."""
    cfg = create_warehouse(warehouse_path(state.warehouse_path), catalog=catalog, data_path=data_path)
    out(f"warehouse ready at {cfg.root} (catalog {cfg.catalog})")


def tables(all: bool = typer.Option(False, "--all", help="include the dataengine.* catalog tables")):
    """List tables with row and column counts."""
    rows = open_cli_warehouse().tables(include_meta=all)
    t = Table()
    for c in ("table", "rows", "columns"):
        t.add_column(c, justify="right" if c != "table" else "left")
    for r in rows:
        t.add_row(r["table"], f"{r['rows']:,}", str(r["columns"]))
    out(t)


def history(table: str):
    """Snapshots that changed TABLE (query an old one with `TABLE@ID`)."""
    print_arrow(open_cli_warehouse().history(table))


def sql(
    query: str,
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json (an array) | jsonl | parquet"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to this file"),
    limit: int = typer.Option(50, help="rows shown in table format"),
    sandbox: bool = typer.Option(False, "--sandbox", help="no file access outside the warehouse (read_csv, read_text, ...)"),
    write: bool = typer.Option(False, "--write", help="a deliberate change: ONE snapshot with --message, recorded"),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="commit message of a --write"),
):
    """Run a SQL query (DuckDB dialect; `name@N` reads table `name` at snapshot N).

    Reads only, with the lake read-only and the configuration locked; changes go through
    --write -m MESSAGE (one snapshot, kept with its message in dataengine.sql_writes).
    """
    if write:
        snapshot, result = write_sql(open_cli_warehouse(), query, message or "", sandbox=sandbox)
        out(f"[green]committed[/green] snapshot {snapshot}: {message}")
        if result.num_columns:
            print_arrow(result, limit)
        return
    if message:
        raise DataEngineError("--message is for --write")
    if format not in FORMATS:
        raise DataEngineError(f"unknown format {format!r}: use {', '.join(FORMATS)}")
    if format == "table" and output:
        raise DataEngineError("--output needs --format csv, json, jsonl or parquet")
    if format == "parquet" and not output:
        raise DataEngineError("--format parquet needs --output FILE")
    write_result(query_sql(open_cli_warehouse(), query, sandbox=sandbox), format, output, limit)


def write_result(result, fmt: str, output: Optional[Path], limit: int) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt == "table":
        print_arrow(result, limit)
        return
    if fmt == "parquet":
        pq.write_table(result, str(output))
    elif fmt == "csv":
        if output:
            pcsv.write_csv(result, str(output))
        else:
            import io

            buf = io.BytesIO()
            pcsv.write_csv(result, buf)
            sys.stdout.write(buf.getvalue().decode())
    else:
        rows = result.to_pylist()
        if fmt == "json":
            text = json.dumps(rows, default=str, ensure_ascii=False, indent=1) + "\n"
        else:
            text = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in rows)
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text)
    if output:
        console.print(f"wrote {result.num_rows:,} rows to {output}")


def register(app: typer.Typer) -> None:
    for fn in (init, tables, history, sql):
        app.command()(fn)
