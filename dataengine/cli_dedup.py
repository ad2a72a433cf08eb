"""`dataengine dedup report TABLE`."""

from __future__ import annotations

import typer
from rich.table import Table

from dataengine.errors import DataEngineError

dedup_app = typer.Typer(no_args_is_help=True, help="Deduplication reports.")


@dedup_app.command("report")
def report(table: str, top: int = typer.Option(5, help="largest clusters to show")):
    """Duplicate rate, cluster size histogram and largest clusters with example URLs."""
    from dataengine.cli_common import _open, _out
    from filters.dedup_report import dedup_report

    reports = dedup_report(_open(), table, top=top)
    if not reports:
        raise DataEngineError(f"table {table!r} has no dedup columns (run exact_dedup, url_dedup or fuzzy_dedup)")
    for r in reports:
        _out(f"[bold]{r['prefix']}[/bold]: {r['duplicates']:,} of {r['docs']:,} documents flagged, duplicate rate {r['rate']:.1%}")
        if r.get("histogram"):
            t = Table(title=f"{r['prefix']} cluster sizes")
            for c in ("size", "clusters", "docs"):
                t.add_column(c, justify="right")
            for h in r["histogram"]:
                t.add_row(h["size"], f"{h['clusters']:,}", f"{h['docs']:,}")
            _out(t)
        if r.get("largest"):
            t = Table(title=f"{r['prefix']} largest clusters")
            for c in ("cluster", "size", "examples"):
                t.add_column(c)
            for c in r["largest"]:
                t.add_row(str(c["cluster"])[:24], f"{c['size']:,}", "\n".join(map(str, c["examples"])))
            _out(t)
