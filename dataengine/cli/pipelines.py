"""`dataengine stages | run | demo`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from dataengine.api import list_stages, plan, run as run_api, pipeline as build_pipeline
from rich.console import Console

from dataengine.cli.common import open_cli_warehouse, out, print_run, state
from dataengine.core.errors import DataEngineError


def stages(
    name: Optional[str] = typer.Argument(None, help="show only this stage"),
):
    """Every installed stage (dataengine's and plugins') with its columns and parameters."""
    infos = [s for s in list_stages() if name is None or s.name == name]
    screen = Console(highlight=False)  # wraps at the terminal's width, so it reads at 80 and at 200 columns
    if name and not infos:
        raise DataEngineError(f"no stage named {name!r}; `dataengine stages` lists them")
    for info in infos:
        head = Text.assemble((info.name, "bold cyan"), f"  v{info.version}",
                             ("  global" if info.global_stage else ""), (f"  [{info.package}]", "dim"))
        lines = [head]
        if info.description:
            lines.append(Text(info.description))
        writes = ", ".join(info.writes) if info.writes is not None else "(depends on parameters)"
        lines.append(Text.assemble(("reads  ", "dim"), ", ".join(info.reads) or "-"))
        lines.append(Text.assemble(("writes ", "dim"), writes or "-"))
        for p in info.params:
            line = Text.assemble(("  " + p["name"], "green"), f": {p['type']} = {p['default']}")
            if p["help"]:
                line.append(f"  {p['help']}", style="dim")
            lines.append(line)
        screen.print(Group(*lines))
        screen.print("")


def _inline_source(spec: str, wh) -> str | dict:
    """--from: a table of the warehouse if there is one by that name, else files (paths, globs, URLs)."""
    if "/" not in spec and "*" not in spec and "@" not in spec and wh.table_exists(spec):
        return spec
    looks_like_files = any(ch in spec for ch in "/*") or os.path.exists(spec) or "://" in spec
    return {"files": [spec]} if looks_like_files else spec  # a name that is neither: "no such table" later


def run(
    pipeline_file: Optional[Path] = typer.Argument(None, help="pipeline YAML"),
    from_: Optional[str] = typer.Option(None, "--from", help="source table (or files) for an inline pipeline"),
    stage: List[str] = typer.Option([], "--stage", help="NAME[:key=value,...], repeatable"),
    to: Optional[str] = typer.Option(None, "--to", help="output table for an inline pipeline"),
    mode: Optional[str] = typer.Option(None, help="append | overwrite (needed when --to is an existing other table)"),
    executor: Optional[str] = typer.Option(None, help="local (default) | dask | spark | an installed plugin"),
    workers: Optional[int] = typer.Option(None, help="worker processes"),
    threads: Optional[int] = typer.Option(None, help="threads per Dask worker"),
    memory_limit: Optional[str] = typer.Option(None, help="memory per worker, e.g. 4GB"),
    partitions: Optional[int] = typer.Option(None, help="partitions (shards) of a table source"),
    dask_scheduler: Optional[str] = typer.Option(None, help="tcp://host:port of a running Dask scheduler"),
    spark_master: Optional[str] = typer.Option(None, help="Spark master URL (default local[WORKERS])"),
    gpu: bool = typer.Option(False, "--gpu", help="GPU paths of stages that have one (fuzzy_dedup: CuPy); dask: also LocalCUDACluster + cuDF batches (needs RAPIDS)"),
    reduce: Optional[str] = typer.Option(None, help="global stages reduce on the driver (DuckDB) | engine (shuffle)"),
    listen: Optional[str] = typer.Option(None, help="address a local Dask cluster / the Spark driver listens on "
                                                    "(default 127.0.0.1; 0.0.0.0 opens it to the network)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan (shards, stages, executor) and stop"),
    new_run: bool = typer.Option(False, help="run again even if this exact run was committed"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars and no engine chatter"),
):
    """Run a pipeline from YAML, or inline: --from T --stage NAME[:k=v] ... --to T."""
    if pipeline_file is not None:
        if from_ or to or stage:
            raise DataEngineError("give a pipeline file or --from/--stage/--to, not both")
        from dataengine.api.pipelines import as_pipeline

        pipe = as_pipeline(pipeline_file)
        if mode:
            pipe.output.mode = mode
    else:
        if not from_ or not to:
            raise DataEngineError("an inline pipeline needs --from SOURCE and --to TABLE")
        pipe = build_pipeline(_inline_source(from_, open_cli_warehouse()), stage, to=to, mode=mode,
                              name=f"inline:{from_}->{to}")
    options = dict(workers=workers, threads=threads, memory_limit=memory_limit, shards=partitions,
                   dask_scheduler=dask_scheduler, spark_master=spark_master, gpu=gpu or None, reduce=reduce,
                   listen=listen)
    options = {k: v for k, v in options.items() if v is not None}
    wh = open_cli_warehouse()
    if dry_run:
        out(plan(wh, pipe, kind=executor, **options))
        return
    state.quiet = quiet
    print_run(run_api(wh, pipe, executor=executor, progress=not quiet, new_run=new_run, **options))


def demo(quiet: bool = typer.Option(False, "--quiet", "-q")):
    """Build a warehouse from data shipped in the package, run each capability once, show results."""
    from dataengine.api import warehouse_path
    from dataengine.cli.demo import run_demo

    run_demo(warehouse_path(state.warehouse_path), progress=not quiet)


def register(app: typer.Typer) -> None:
    for fn in (stages, run, demo):
        app.command()(fn)
