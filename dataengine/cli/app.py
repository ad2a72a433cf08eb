"""The `dataengine` command line. Every user error ends in one line on stderr and exit 1."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from dataengine.core.errors import DataEngineError
from dataengine.cli.common import DEFAULT_WAREHOUSE, _open, _out, _print_arrow, state
from dataengine.core.progress import console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="dataengine: a lakehouse for LLM training data.",
)

@app.callback()
def _global(
    warehouse: str = typer.Option(
        DEFAULT_WAREHOUSE, "--warehouse", "-w", envvar="DATAENGINE_WAREHOUSE", help="warehouse folder"
    ),
):
    state.warehouse_path = warehouse


# -- warehouse -------------------------------------------------------------------------

@app.command()
def init(
    catalog: str = typer.Option("sqlite", help="sqlite (default, concurrent readers) | duckdb | postgres:<dsn>"),
    data_path: Optional[str] = typer.Option(None, help="where Parquet files go (default: WAREHOUSE/data)"),
):
    """Create a warehouse (idempotent)."""
    from dataengine.warehouse import init_warehouse

    cfg = init_warehouse(state.warehouse_path, catalog=catalog, data_path=data_path)
    _out(f"warehouse ready at {cfg.root} (catalog {cfg.catalog})")


@app.command()
def tables(all: bool = typer.Option(False, "--all", help="include the dataengine.* catalog tables")):
    """List tables with row and column counts."""
    rows = _open().tables(include_meta=all)
    t = Table()
    for c in ("table", "rows", "columns"):
        t.add_column(c, justify="right" if c != "table" else "left")
    for r in rows:
        t.add_row(r["table"], f"{r['rows']:,}", str(r["columns"]))
    _out(t)


@app.command()
def history(table: str):
    """Snapshots that changed TABLE (query an old one with `TABLE@ID`)."""
    _print_arrow(_open().history(table))


@app.command()
def sql(
    query: str,
    format: str = typer.Option("table", "--format", "-f", help="table | csv | json | parquet"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to this file"),
    limit: int = typer.Option(50, help="rows shown in table format"),
):
    """Run a SQL query (DuckDB dialect; `name@N` reads table `name` at snapshot N)."""
    result = _open().sql(query)
    _write_result(result, format, output, limit)


def _write_result(result, fmt: str, output: Optional[Path], limit: int) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if fmt == "table":
        if output:
            raise DataEngineError("--output needs --format csv, json or parquet")
        _print_arrow(result, limit)
    elif fmt == "csv":
        if output:
            pcsv.write_csv(result, str(output))
        else:
            import io

            buf = io.BytesIO()
            pcsv.write_csv(result, buf)
            sys.stdout.write(buf.getvalue().decode())
    elif fmt == "json":
        lines = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in result.to_pylist())
        if output:
            output.write_text(lines)
        else:
            sys.stdout.write(lines)
    elif fmt == "parquet":
        if not output:
            raise DataEngineError("--format parquet needs --output FILE")
        pq.write_table(result, str(output))
    else:
        raise DataEngineError(f"unknown format {fmt!r}: use table, csv, json or parquet")
    if output:
        console.print(f"wrote {result.num_rows:,} rows to {output}")


# -- pipelines -------------------------------------------------------------------------

@app.command()
def stages():
    """List every stage with its parameters and columns."""
    from dataengine.core.registry import all_stages
    from dataengine.core.stage import describe_params

    t = Table(show_lines=True)
    for c in ("stage", "version", "reads", "writes", "parameters"):
        t.add_column(c)
    for name, cls in all_stages().items():
        try:
            writes = ", ".join(cls().output_columns())
        except DataEngineError:  # required params: show the declared inputs only
            writes = "(depends on parameters)"
        params = "\n".join(
            f"{p['name']}: {p['type']} = {p['default']}" + (f"  ({p['help']})" if p["help"] else "")
            for p in describe_params(cls)
        )
        t.add_row(f"[bold]{name}[/bold]\n{cls.description}", cls.version, ", ".join(cls.inputs), writes, params)
    _out(t)


@app.command()
def run(
    pipeline_file: Optional[Path] = typer.Argument(None, help="pipeline YAML"),
    from_: Optional[str] = typer.Option(None, "--from", help="source table (or files) for an inline pipeline"),
    stage: List[str] = typer.Option([], "--stage", help="NAME[:key=value,...], repeatable"),
    to: Optional[str] = typer.Option(None, "--to", help="output table for an inline pipeline"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite"),
    executor: Optional[str] = typer.Option(None, help="local (default) | dask | spark"),
    workers: Optional[int] = typer.Option(None, help="worker processes"),
    threads: Optional[int] = typer.Option(None, help="threads per Dask worker"),
    memory_limit: Optional[str] = typer.Option(None, help="memory per worker, e.g. 4GB"),
    partitions: Optional[int] = typer.Option(None, help="partitions (shards) of a table source"),
    dask_scheduler: Optional[str] = typer.Option(None, help="tcp://host:port of a running Dask scheduler"),
    spark_master: Optional[str] = typer.Option(None, help="Spark master URL (default local[WORKERS])"),
    gpu: bool = typer.Option(False, "--gpu", help="GPU paths of stages that have one (fuzzy_dedup: CuPy); dask: also LocalCUDACluster + cuDF batches (needs RAPIDS)"),
    reduce: Optional[str] = typer.Option(None, help="global stages reduce on the driver (DuckDB) | engine (shuffle)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan (shards, stages, executor) and stop"),
    new_run: bool = typer.Option(False, help="run again even if this exact run was committed"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Run a pipeline from YAML, or inline: --from T --stage NAME[:k=v] ... --to T."""
    from dataengine.engine import run_pipeline
    from dataengine.core.pipeline import load_pipeline, parse_inline_stage, pipeline_from_dict

    if pipeline_file is not None:
        if from_ or to or stage:
            raise DataEngineError("give a pipeline file or --from/--stage/--to, not both")
        pipeline = load_pipeline(pipeline_file)
    else:
        if not from_ or not to:
            raise DataEngineError("an inline pipeline needs --from SOURCE and --to TABLE")
        source = _inline_source(from_)
        raw = {
            "name": f"inline:{from_}->{to}",
            "source": source,
            "stages": [parse_inline_stage(s).model_dump() for s in stage],
            "output": {"table": to},
        }
        pipeline = pipeline_from_dict(raw, origin="inline pipeline")
    if mode:
        pipeline.output.mode = mode
    if workers:
        pipeline.executor.workers = workers
    # Executor flags override the YAML's `executor:` block (validated like the YAML).
    from dataengine.engine.driver import override_executor
    from dataengine.engine.dry_run import describe_plan

    override_executor(
        pipeline, kind=executor, threads=threads, memory_limit=memory_limit, shards=partitions,
        dask_scheduler=dask_scheduler, spark_master=spark_master, gpu=gpu or None, reduce=reduce,
    )
    wh = _open()
    if dry_run:
        _out(describe_plan(pipeline, wh))
        return
    result = run_pipeline(pipeline, wh, progress=not quiet)
    _report_run(result)


def _inline_source(spec: str) -> dict:
    looks_like_files = any(ch in spec for ch in "/*") or os.path.exists(spec) or "://" in spec
    if looks_like_files:
        return {"files": [spec]}
    return {"table": spec}


def _report_run(result) -> None:
    from dataengine.core.progress import run_summary

    if result.already_committed:
        console.print(
            f"run {result.run_id} was already committed as snapshot {result.snapshot_id} of "
            f"{result.output_table}; nothing to do (--new-run to run it again)"
        )
        return
    _out(run_summary(result))
    if result.source_skipped:
        skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.source_skipped.items()))
        console.print(f"skipped input records: {skipped}")
    errors = sum(st.get("errors", 0) for st in result.stats.values())
    resumed = f", {result.shards_resumed} resumed from an earlier attempt" if result.shards_resumed else ""
    console.print(
        f"[green]committed[/green] {result.rows_out:,} rows to {result.output_table} as snapshot "
        f"{result.snapshot_id} ({result.shards} shards{resumed}, {errors} row errors, {result.seconds:.1f}s)"
    )


@app.command()
def demo(quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Build a warehouse from data shipped in the package, run a pipeline, show SQL results."""
    from dataengine.demo import run_demo

    run_demo(state.warehouse_path, progress=not quiet)


from dataengine.cli.blend import blend_app, tokenizer_app  # noqa: E402

app.add_typer(blend_app, name="blend")
app.add_typer(tokenizer_app, name="tokenizer")

from dataengine.cli.dedup import dedup_app  # noqa: E402

app.add_typer(dedup_app, name="dedup")
from dataengine.cli.train import train_command  # noqa: E402

app.command("train")(train_command)

from dataengine.cli.quality import classifier_app, quality_app  # noqa: E402

app.add_typer(classifier_app, name="classifier")
app.add_typer(quality_app, name="quality")


from dataengine.cli.ingest import ingest_app  # noqa: E402

app.add_typer(ingest_app, name="ingest")

from dataengine.cli.generate import generate_app  # noqa: E402

app.add_typer(generate_app, name="generate")


def main() -> None:
    """Entry point: user errors print one line, no traceback."""
    import duckdb
    from rich.markup import escape  # messages hold [brackets]: extras, SQL, lists

    try:
        app(standalone_mode=False)
    except DataEngineError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except duckdb.Error as exc:
        from dataengine.core.errors import one_line

        console.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        console.print("interrupted; re-run the same command to resume")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
