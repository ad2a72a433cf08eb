"""`dataengine dedup report TABLE`."""

from __future__ import annotations

import typer
from rich.table import Table

from dataengine import api
from dataengine.cli.common import open_cli_warehouse, out

dedup_app = typer.Typer(no_args_is_help=True, help="Deduplication reports.")


@dedup_app.command("report")
def report(
    table: str,
    top: int = typer.Option(5, help="largest clusters to show"),
    html: str = typer.Option(None, "--html", help="also write cluster-size charts as an HTML report"),
):
    """Duplicate rate, cluster size histogram and largest clusters with example URLs."""
    wh = open_cli_warehouse()
    reports = api.dedup_report(wh, table, top=top)
    for r in reports:
        out(f"[bold]{r['prefix']}[/bold]: {r['duplicates']:,} of {r['docs']:,} documents flagged, duplicate rate {r['rate']:.1%}")
        if r.get("histogram"):
            t = Table(title=f"{r['prefix']} cluster sizes")
            for c in ("size", "clusters", "docs"):
                t.add_column(c, justify="right")
            for h in r["histogram"]:
                t.add_row(h["size"], f"{h['clusters']:,}", f"{h['docs']:,}")
            out(t)
        if r.get("largest"):
            t = Table(title=f"{r['prefix']} largest clusters")
            for c in ("cluster", "size", "examples"):
                t.add_column(c)
            for c in r["largest"]:
                t.add_row(str(c["cluster"])[:24], f"{c['size']:,}", "\n".join(map(str, c["examples"])))
            out(t)
    if html:
        out(f"report written to {api.dedup_report_file(wh, table, html, top=top)}")
