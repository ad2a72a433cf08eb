"""State and output helpers shared by the CLI modules.

Kept apart from :mod:`dataengine.cli.app` so sub-command modules see the same state whether
the CLI runs as the `dataengine` script or as `python -m dataengine.cli`.
"""

from __future__ import annotations

import pyarrow as pa
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dataengine.api import open_warehouse, warehouse_path
from dataengine.core.progress import console


class CliState:
    warehouse_path: str | None = None
    quiet: bool = False


state = CliState()


def open_cli_warehouse():
    """The warehouse named by --warehouse / $DATAENGINE_WAREHOUSE / ./warehouse."""
    return open_warehouse(warehouse_path(state.warehouse_path))


def out(text) -> None:
    """Results on stdout (tables, summaries); progress and warnings go to stderr."""
    Console(soft_wrap=True).print(text, highlight=False)


def warn(text: str) -> None:
    """One warning line on stderr, never wrapped (paths and commands stay copyable)."""
    console.print(f"[yellow]warning:[/yellow] {text}", highlight=False, soft_wrap=True)


def print_arrow(result: pa.Table, limit: int = 50) -> None:
    """The first ``limit`` rows of an Arrow table as a terminal table."""
    t = Table(show_lines=False)
    for name in result.column_names:
        t.add_column(name, overflow="fold", max_width=60)
    for row in result.slice(0, limit).to_pylist():
        t.add_row(*[cell(v) for v in row.values()])
    out(t)
    if result.num_rows > limit:
        console.print(f"({result.num_rows:,} rows, {limit} shown; use --limit or --format csv)")


def cell(value) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."


def print_run(result) -> None:
    """What a pipeline run did: per-stage counters, skipped input, the committed snapshot."""
    from dataengine.core.progress import run_summary

    if result.already_committed:
        by = " by another process while this one ran" if getattr(result, "committed_by_other", False) else ""
        console.print(
            f"run {result.run_id} was already committed{by} as snapshot {result.snapshot_id} of "
            f"{result.output_table}; nothing to do (--new-run to run it again)"
        )
        return
    out(run_summary(result))
    if result.source_skipped:
        skipped = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.source_skipped.items()))
        console.print(f"input records skipped or repaired: {skipped}")
    for line in result.file_errors[:10]:
        warn(f"unreadable input: {escape(line)}")
    if len(result.file_errors) > 10:
        warn(f"... and {len(result.file_errors) - 10} more unreadable files (all in dataengine.runs.stats)")
    errors = sum(st.get("errors", 0) for st in result.stats.values())
    resumed = f", {result.shards_resumed} resumed from an earlier attempt" if result.shards_resumed else ""
    console.print(
        f"[green]committed[/green] {result.rows_out:,} rows to {result.output_table} as snapshot "
        f"{result.snapshot_id} ({result.shards} shards{resumed}, {errors} row errors, {result.seconds:.1f}s)"
    )
    if result.failed_inputs:
        import shlex
        import sys

        command = "dataengine " + shlex.join(a for a in sys.argv[1:] if a != "--new-run") + " --new-run"
        warn(f"partial failure: {result.failed_inputs:,} input records or rows failed (counts above; samples in "
             f"dataengine.runs.stats for run {result.run_id}); after fixing the cause, redo the run with: "
             f"{escape(command)}")


def version_table(v: dict) -> Table:
    """A blend version's components as a terminal table."""
    shape = v.get("shape") or "text"
    title = f"{v['blend']}@{v['version']}  snapshot {v['snapshot_id']}  tokenizer {v['tokenizer']} ({v['tokenizer_hash']})"
    t = Table(title=title if shape == "text" else f"{title}  {shape} rows")
    columns = ["component", "phase", "weight", "max epochs", "rows", "tokens", "effective epochs"]
    if shape != "text":
        columns += ["reasoning", "invalid rows"]
    for c in columns:
        t.add_column(c, justify="left" if c in ("component", "phase", "reasoning") else "right")
    for c in v["components"]:
        eff = c.get("effective_epochs")
        cells = [
            c["component"], c["phase"], f"{c['weight']:g}", "-" if c["max_epochs"] is None else f"{c['max_epochs']:g}",
            f"{c['rows']:,}", f"{c['tokens']:,}", "-" if eff is None else f"{eff:.2f}",
        ]
        if shape != "text":
            cells += [c.get("reasoning") or "-", f"{c.get('invalid_rows') or 0:,}"]
        t.add_row(*cells)
    return t


def diversity_table(v: dict) -> Table:
    """The diversity scores recorded for a blend version (`dataengine diversity NAME@V --record`)."""
    t = Table(title=f"{v['blend']}@{v['version']} diversity (recorded)")
    for c in ("group", "n", "g_vendi", "vendi_embedding", "q"):
        t.add_column(c, justify="left" if c == "group" else "right")
    methods = []
    for r in v["diversity"]:
        if r["method"] not in methods:
            methods.append(r["method"])
        t.add_row(r["group_name"], f"{r['n']:,}", "-" if r["g_vendi"] is None else f"{r['g_vendi']:.2f}",
                  "-" if r["vendi_embedding"] is None else f"{r['vendi_embedding']:.2f}", f"{r['q']:g}")
    t.caption = "; ".join(f"gradients: {m}" for m in methods) + f"; measured {str(v['diversity'][-1]['computed_at'])[:19]}"
    return t


def parse_key_values(items: list[str], flag: str) -> dict:
    """``key=value`` options (values parsed as YAML) into a dict; a clear error for anything else."""
    import yaml

    from dataengine.core.errors import DataEngineError

    params = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise DataEngineError(f"{flag} {item!r} is not key=value")
        params[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return params
